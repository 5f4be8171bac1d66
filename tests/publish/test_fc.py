"""Another Function Compute function as a target: FC 3.0 (``fc://``, the project's V3 signer) and
FC 2.0 (``fc2://``, the aliyun-fc2 SDK), invoked asynchronously with a de-duplication task id,
against a local FC stand-in that verifies every request with code of its own (the official SDK's
V3 function for 3.0, an implementation of the ``FC <AK>:<sig>`` scheme for 2.0)."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket

import pytest
import requests
from alibabacloud_tea_openapi.utils import Utils as SdkUtils
from darabonba.request import DaraRequest

from axn_bind.config import Credentials
from axn_bind.errors import ConfigurationError, PublishError
from axn_bind.publish import event as ev
from axn_bind.publish import open_target
from axn_bind.publish.fc import MAX_ASYNC_BODY, FcTarget, task_id
from axn_bind.publish.fc2 import Fc2Target
from axn_bind.signing import sign_v3, utc_timestamp
from tests.conftest import post
from tests.privacy import MOBILE as PHONE  # a mobile number, never digits inside a hash
from tests.publish.conftest import Sleeps
from tools.dypls_emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from tools.receivers.fc import FcReceiver, fc2_authorization

AK = Credentials("LTAI5tFcTestKeyId", "fc-test-secret/with+chars=")
STS = Credentials("STS.NFcTestTempKeyId", "fc-sts-secret-0123456789", "CAIS+fc/token==&more~")
KEYS = {
    AK.access_key_id: (AK.access_key_secret, None),
    STS.access_key_id: (STS.access_key_secret, STS.security_token),
    DEFAULT_ACCESS_KEY_ID: (DEFAULT_ACCESS_KEY_SECRET, None),
}
SECRETS = (AK.access_key_secret, STS.access_key_secret, STS.security_token)
EVENT = ev.created(
    source=ev.source_of("axn-bind", "cn-hangzhou", "1234567890123456"),
    when=1_900_000_000.0,
    pool_key="FC100000000000001",
    binding={"SecretNo": "17000000001", "Extension": "100", "SubsId": "1000000800000001"},
    request={"PhoneNoA": "13912345678", "OutOrderId": "DD-1", "Expiration": "2030-01-01 12:00:00"},
    upstream_request_id="R-1",
)
KINDS = ["fc", "fc2"]


def use(monkeypatch: pytest.MonkeyPatch, creds: Credentials) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", creds.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", creds.access_key_secret)
    if creds.security_token:
        monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", creds.security_token)
    else:
        monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> Credentials:
    use(monkeypatch, STS)
    return STS


@pytest.fixture
def rx():
    with FcReceiver(KEYS) as receiver:
        yield receiver


def url_of(kind: str, endpoint: str, qualifier: str | None = None) -> str:
    names = "orders-events" if kind == "fc" else "order_flow/orders-events"
    query = (f"qualifier={qualifier}&" if qualifier else "") + f"endpoint={endpoint}"
    return f"{kind}://{names}?{query}"


def target(kind: str, endpoint: str, qualifier: str | None = None, **options):
    cls = FcTarget if kind == "fc" else Fc2Target
    options.setdefault("sleep", Sleeps())
    return cls(url_of(kind, endpoint, qualifier), **options)


# --------------------------------------------------------------------------- signature vectors

# Published V3 vector (RunInstances): the default canonical URI "/" is unchanged by ``path``.
V3_DOC = {
    "method": "POST",
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "action": "RunInstances",
    "version": "2014-05-26",
    "date": "2023-10-26T10:22:32Z",
    "nonce": "3156853299f313e23d1673dc12e1703d",
    "params": {
        "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
        "RegionId": "cn-shanghai",
    },
    "credentials": Credentials("YourAccessKeyId", "YourAccessKeySecret"),
}
V3_DOC_SIGNATURE = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"


@pytest.mark.parametrize("path", [None, "/"])
def test_the_published_v3_vector_still_signs_with_the_default_path(path):
    extra = {} if path is None else {"path": path}
    signed = sign_v3(**V3_DOC, **extra)
    assert signed.headers["authorization"].endswith(f"Signature={V3_DOC_SIGNATURE}")


# FC 3.0 InvokeFunction, signed with fixed inputs; the figures were produced by the official
# SDK's get_authorization and are recomputed with it below.
FC3_HOST = "1234567890123456.cn-hangzhou.fc.aliyuncs.com"
FC3_PATH = "/2023-03-30/functions/orders-events/invocations"
FC3_BODY = b'{"specversion":"1.0","id":"3f2b8c1e-0000-4000-8000-000000000001"}'
FC3_DATE, FC3_NONCE = "2030-01-01T04:00:00Z", "c0ffee00-0000-4000-8000-000000000002"
VECTOR_AK = Credentials("LTAI5tTESTACCESSKEYID", "TestAccessKeySecret0123456789abc")
VECTOR_STS = Credentials(
    "STS.NTESTTEMPKEYID", "TestAccessKeySecret0123456789abc", "CAIS.fake-sts-token+/=="
)
FC3_VECTORS = [
    (VECTOR_AK, {}, "0ef2327b6f52808ec777043191a5fe27743c3bd8701f80a73e563c12e83aae2c"),
    (
        VECTOR_AK,
        {"qualifier": "prod"},
        "7599a8e5a00278167c56dc7893ee5fb88c3f885a6a3fa2ea6d241fc8c17151a6",
    ),
    (VECTOR_STS, {}, "d927b3b29eb43c763825de24a668169d1628295b15f1b9e2ade8a91a5024bb5f"),
    (
        VECTOR_STS,
        {"qualifier": "prod"},
        "73fc2586196e37aa299dbf4765f8e0ab0b19fab89788e783bf0e671402b6dfa7",
    ),
]


def fc3_sign(creds: Credentials, params: dict[str, str], path: str = FC3_PATH):
    return sign_v3(
        method="POST",
        host=FC3_HOST,
        action="InvokeFunction",
        params=params,
        credentials=creds,
        date=FC3_DATE,
        nonce=FC3_NONCE,
        version="2023-03-30",
        body=FC3_BODY,
        content_type="application/octet-stream",
        path=path,
    )


@pytest.mark.parametrize(
    ("creds", "params", "signature"), FC3_VECTORS, ids=["ak", "ak-q", "sts", "sts-q"]
)
def test_fc3_invocation_vectors_agree_with_the_official_sdk(creds, params, signature):
    signed = fc3_sign(creds, params)
    assert signed.headers["authorization"].endswith(f",Signature={signature}")
    request = DaraRequest()
    request.method, request.pathname, request.query = "POST", FC3_PATH, dict(params)
    request.headers = {k: v for k, v in signed.headers.items() if k != "authorization"}
    payload = hashlib.sha256(FC3_BODY).hexdigest()
    sdk = SdkUtils.get_authorization(
        request, "ACS3-HMAC-SHA256", payload, creds.access_key_id, creds.access_key_secret
    )
    assert sdk == signed.headers["authorization"]
    expected_signed = ["content-type", "host", "x-acs-action", "x-acs-content-sha256", "x-acs-date"]
    expected_signed += ["x-acs-security-token"] if creds.security_token else []
    expected_signed += ["x-acs-signature-nonce", "x-acs-version"]
    assert f"SignedHeaders={';'.join(expected_signed)}," in sdk


def test_the_path_is_what_v3_signs_for_fc():
    assert (
        fc3_sign(VECTOR_AK, {}, "/").headers["authorization"]
        != (fc3_sign(VECTOR_AK, {}).headers["authorization"])
    )


# FC 2.0: fixed inputs, the figures from the aliyun-fc2 SDK's own Auth.sign_request.
FC2_HEADERS = {
    "host": FC3_HOST,
    "date": "Tue, 01 Jan 2030 04:00:00 GMT",
    "content-type": "application/json",
    "content-length": "0",
    "user-agent": "x",
    "x-fc-invocation-type": "Async",
    "x-fc-stateful-async-invocation-id": "axn-3f2b8c1e-0000-4000-8000-000000000001",
}
FC2_PATH = "/2016-08-15/services/order-flow/functions/orders-events/invocations"
FC2_QUALIFIED = "/2016-08-15/services/order-flow.prod/functions/orders-events/invocations"
FC2_VECTORS = [
    (VECTOR_AK, FC2_PATH, "7B6n08nhG5MIrCuCGsazNWsoRYmNFea3+shd5BhScW4="),
    (VECTOR_AK, FC2_QUALIFIED, "+O6z3CPaakOCG4IslYEygftAuox1M3An42MsP0+04Hg="),
    (VECTOR_STS, FC2_PATH, "9Jmus5G4YNoijHXomOBBGq3n0K4intEa99qIWJQtzA8="),
    (VECTOR_STS, FC2_QUALIFIED, "A0R5Q13CwN358voo299dMx/SfItOKYMc24sk4r7iS4c="),
]


@pytest.mark.parametrize(
    ("creds", "path", "signature"), FC2_VECTORS, ids=["ak", "ak-q", "sts", "sts-q"]
)
def test_fc2_vectors_agree_between_the_sdk_and_the_receiver(creds, path, signature):
    from fc2.auth import Auth

    headers = dict(FC2_HEADERS)
    if creds.security_token:
        headers["x-fc-security-token"] = creds.security_token
    expected = f"FC {creds.access_key_id}:{signature}"
    auth = Auth(creds.access_key_id, creds.access_key_secret, creds.security_token or "")
    assert auth.sign_request("POST", path, headers) == expected
    receiver_side = fc2_authorization(
        creds.access_key_id, creds.access_key_secret, "POST", path, headers
    )
    assert receiver_side == expected
    headers["x-fc-invocation-type"] = "Sync"  # every x-fc-* header is signed
    assert auth.sign_request("POST", path, headers) != expected


def test_the_task_id_is_derived_from_the_event_id():
    assert task_id(EVENT.id) == f"axn-{EVENT.id}"
    assert task_id(EVENT.id) == task_id(EVENT.id)
    odd = task_id("an id with spaces/and slashes")
    assert re.fullmatch(r"axn-[0-9a-f-]{36}", odd) and odd == task_id(
        "an id with spaces/and slashes"
    )
    assert task_id("x" * 200) != task_id("x" * 201) and len(task_id("x" * 200)) <= 128


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "cls", "name", "qualifier"),
    [
        ("fc://orders-events?endpoint=http://127.0.0.1:9", FcTarget, "fc://orders-events", None),
        ("fc://Orders_1?qualifier=prod&endpoint=http://[::1]:9", FcTarget, "fc://Orders_1", "prod"),
        (
            "fc2://order_flow/Orders?endpoint=http://localhost:9",
            Fc2Target,
            "fc2://order_flow/Orders",
            None,
        ),
        (
            "fc2://svc/fn?qualifier=3&endpoint=https://fc.example.com",
            Fc2Target,
            "fc2://svc/fn",
            "3",
        ),
    ],
)
def test_target_urls(url, cls, name, qualifier):
    opened = open_target(url)
    assert type(opened) is cls
    assert (opened.name, opened.qualifier) == (name, qualifier)


def test_the_endpoint_comes_from_fc_region_and_account(monkeypatch):
    monkeypatch.setenv("FC_REGION", "cn-shanghai")
    monkeypatch.setenv("FC_ACCOUNT_ID", "1234567890123456")
    assert FcTarget("fc://f").url == (
        "https://1234567890123456.cn-shanghai.fc.aliyuncs.com/2023-03-30/functions/f/invocations"
    )
    assert FcTarget("fc://f?qualifier=prod").url.endswith("/functions/f/invocations?qualifier=prod")
    assert Fc2Target("fc2://s/f").endpoint == "https://1234567890123456.cn-shanghai.fc.aliyuncs.com"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("fc://", "fc://<function>"),
        ("fc://a/b?endpoint=http://127.0.0.1:9", "fc://<function>"),
        ("fc2://only-service?endpoint=http://127.0.0.1:9", "fc2://<service>/<function>"),
        ("fc2://a/b/c?endpoint=http://127.0.0.1:9", "fc2://<service>/<function>"),
        ("fc://9lives?endpoint=http://127.0.0.1:9", "starts with a letter or _"),
        ("fc://f:8080?endpoint=http://127.0.0.1:9", "starts with a letter or _"),
        (f"fc://{STS.access_key_id}:{STS.access_key_secret}@f", "remove the user:password"),
        (f"fc2://key:{AK.access_key_secret}@s/f", "remove the user:password"),
        ("fc://f?region=cn-hangzhou", "unknown option ?region="),
        ("fc://f?qualifier=a&qualifier=b&endpoint=http://127.0.0.1:9", "twice"),
        ("fc://f?qualifier=no.dots&endpoint=http://127.0.0.1:9", "?qualifier="),
        ("fc://f?endpoint=http://10.0.0.8:9", "only for a loopback host"),
        ("fc://f?endpoint=ftp://127.0.0.1", "https:// URL"),
        (f"fc://f?endpoint=https://u:{AK.access_key_secret}@fc.example.com", "credentials"),
        ("fc://f?endpoint=https://fc.example.com/path", "must not carry a path"),
        ("fc://f", "FC_REGION and FC_ACCOUNT_ID"),
        ("fc2://s/f", "FC_REGION and FC_ACCOUNT_ID"),
    ],
)
def test_bad_urls_say_what_to_fix_without_echoing_a_credential(url, says, monkeypatch):
    monkeypatch.delenv("FC_REGION", raising=False)
    monkeypatch.delenv("FC_ACCOUNT_ID", raising=False)
    with pytest.raises(ConfigurationError) as raised:
        open_target(url)
    message = raised.value.message
    assert message.startswith("AXN_PUBLISH_TO:") and says in message, message
    assert not any(secret in message for secret in SECRETS)


# --------------------------------------------------------------------------- delivery


@pytest.mark.parametrize("use_sts", [False, True], ids=["ak", "sts"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_event_is_invoked_async_with_its_task_id(rx, monkeypatch, kind, use_sts):
    use(monkeypatch, STS if use_sts else AK)
    target(kind, rx.url).send(EVENT, timeout=5)
    [invocation] = rx.invocations
    assert (invocation["status"], invocation["verified"]) == (202, True), invocation["reason"]
    assert invocation["body"] == EVENT.text  # the event's JSON text, as it is
    assert rx.events == [json.loads(EVENT.text)]
    headers = invocation["headers"]
    assert headers["x-fc-invocation-type"] == "Async"
    assert invocation["task_id"] == f"axn-{EVENT.id}"
    if kind == "fc":
        assert invocation["api"] == "3.0" and invocation["function"] == "orders-events"
        assert headers["x-fc-async-task-id"] == f"axn-{EVENT.id}"
        assert headers["content-type"] == "application/octet-stream"
        assert headers["x-acs-action"] == "InvokeFunction"
        assert headers["x-acs-version"] == "2023-03-30"
        assert ("x-acs-security-token" in headers) is use_sts
    else:
        assert invocation["api"] == "2.0"
        assert (invocation["service"], invocation["function"]) == ("order_flow", "orders-events")
        assert headers["x-fc-stateful-async-invocation-id"] == f"axn-{EVENT.id}"
        assert headers["authorization"].startswith("FC ")
        assert ("x-fc-security-token" in headers) is use_sts


@pytest.mark.parametrize("kind", KINDS)
def test_the_qualifier_reaches_fc(rx, creds, kind):
    target(kind, rx.url, "prod").send(EVENT, timeout=5)
    [invocation] = rx.invocations
    assert invocation["status"] == 202 and invocation["qualifier"] == "prod"
    if kind == "fc":
        assert invocation["query"] == {"qualifier": "prod"}
    else:
        assert "/services/order_flow.prod/" in invocation["path"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_republished_event_is_taken_once_and_409_counts_as_delivered(rx, creds, kind, caplog):
    caplog.set_level(logging.INFO, logger="axn_bind")
    first = target(kind, rx.url)
    first.send(EVENT, timeout=5)
    target(kind, rx.url).send(EVENT, timeout=5)  # a republish, by another instance
    assert rx.statuses == [202, 409]
    assert len(rx.events) == 1
    assert "publish_already_accepted" in caplog.text


@pytest.mark.parametrize("kind", KINDS)
def test_a_lost_answer_is_retried_safely_under_the_same_task_id(rx, creds, kind):
    rx.fail(202, delay=1.0, accept=True)  # FC took it, but the answer comes too late
    sleeps = Sleeps()
    target(kind, rx.url, attempt_timeout=0.3, sleep=sleeps).send(EVENT, timeout=5)
    assert len(sleeps.waits) == 1  # one retry
    assert [i["task_id"] for i in rx.invocations] == [f"axn-{EVENT.id}"] * 2
    assert rx.invocations[-1]["status"] == 409
    assert len(rx.events) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_an_error_answered_after_fc_took_the_event_is_settled_by_the_retry(rx, creds, kind):
    rx.fail(503, accept=True)  # FC queued the event, then answered 503
    target(kind, rx.url).send(EVENT, timeout=5)
    assert rx.statuses == [503, 409]  # the retry finds the task id taken: delivered, once
    assert len(rx.events) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_429_and_5xx_are_retried_honouring_retry_after(rx, creds, kind):
    rx.fail(429, code="ResourceThrottled", retry_after="2")
    rx.fail(503, code="ServiceUnavailable")
    sleeps = Sleeps()
    target(kind, rx.url, attempts=3, backoff=0.4, sleep=sleeps).send(EVENT, timeout=30)
    assert rx.statuses == [429, 503, 202]
    assert sleeps.waits[0] == 2.0  # FC's Retry-After
    assert 0.4 <= sleeps.waits[1] <= 0.8  # backoff with jitter: 0.4 s × 2 × [0.5, 1]
    assert len(rx.events) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_retries_are_bounded_and_leave_the_event_owed(rx, creds, kind):
    rx.fail(500, count=5)
    with pytest.raises(PublishError) as raised:
        target(kind, rx.url, attempts=3, backoff=0.01).send(EVENT, timeout=5)
    assert raised.value.retryable
    assert "not delivered after 3 attempt(s): HTTP 500" in raised.value.message
    assert rx.statuses == [500, 500, 500] and rx.events == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_retry_after_past_the_time_given_stops_at_once(rx, creds, kind):
    rx.fail(503, retry_after="30")
    sleeps = Sleeps()
    with pytest.raises(PublishError) as raised:
        target(kind, rx.url, sleep=sleeps).send(EVENT, timeout=2)
    assert raised.value.retryable and sleeps.waits == [] and rx.statuses == [503]


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (404, "FunctionNotFound", "create the function"),
        (403, "AccessDenied", "fc:InvokeFunction"),
        (400, "InvalidArgument", None),
        (410, None, None),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_refusals_are_final_and_named(rx, creds, kind, status, code, hint):
    rx.fail(status, code=code)
    with pytest.raises(PublishError) as raised:
        target(kind, rx.url).send(EVENT, timeout=5)
    error = raised.value
    assert not error.retryable and len(rx.invocations) == 1
    assert f"FC refused the invocation with HTTP {status}" in error.message
    assert error.message.startswith(error.target) and error.target == target(kind, rx.url).name
    if hint:
        assert code in error.message and hint in error.message
    assert "RequestId" in error.message


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried(rx, monkeypatch, kind):
    use(monkeypatch, Credentials(STS.access_key_id, "not-the-secret", STS.security_token))
    with pytest.raises(PublishError) as raised:
        target(kind, rx.url).send(EVENT, timeout=5)
    assert not raised.value.retryable and "SignatureNotMatch" in raised.value.message
    assert [i["reason"] for i in rx.invocations] == ["signature mismatch"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_token_is_refused(rx, monkeypatch, kind):
    use(monkeypatch, Credentials(STS.access_key_id, STS.access_key_secret, "CAIS-other"))
    with pytest.raises(PublishError):
        target(kind, rx.url).send(EVENT, timeout=5)
    assert [i["reason"] for i in rx.invocations] == ["security token missing or wrong"]


@pytest.mark.parametrize("kind", KINDS)
def test_no_answer_is_retried(creds, kind):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(PublishError) as raised:
        target(kind, f"http://127.0.0.1:{port}", sleep=sleeps).send(EVENT, timeout=5)
    assert raised.value.retryable and "no answer (connection refused)" in raised.value.message
    assert len(sleeps.waits) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_over_the_async_limit_is_refused_unsent(rx, creds, kind):
    big = ev.Event(EVENT.id, EVENT.type, json.dumps({"pad": "x" * MAX_ASYNC_BODY}))
    with pytest.raises(PublishError) as raised:
        target(kind, rx.url).send(big, timeout=5)
    assert not raised.value.retryable and "128 KB" in raised.value.message
    assert rx.invocations == []


@pytest.mark.parametrize("kind", KINDS)
def test_missing_credentials_are_named_not_sent(rx, monkeypatch, kind):
    for name in ("ID", "SECRET", "SECURITY_TOKEN"):
        monkeypatch.delenv(f"ALIBABA_CLOUD_ACCESS_KEY_{name}", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
    with pytest.raises(PublishError) as raised:
        target(kind, rx.url).send(EVENT, timeout=5)
    assert not raised.value.retryable and "ALIBABA_CLOUD_ACCESS_KEY_ID" in raised.value.message
    assert rx.invocations == []


def test_credentials_are_read_at_each_send(rx, monkeypatch):
    fc = target("fc", rx.url)
    use(monkeypatch, AK)
    fc.send(EVENT, timeout=5)
    use(monkeypatch, STS)  # FC rotated the role's credentials
    fc.send(ev.Event("other-1", EVENT.type, EVENT.text.replace(EVENT.id, "other-1")), timeout=5)
    keys = [
        i["headers"]["authorization"].split("Credential=")[1].split(",")[0] for i in rx.invocations
    ]
    assert keys == [AK.access_key_id, STS.access_key_id]


# --------------------------------------------------------------------------- the receiver


def test_the_receiver_refuses_what_fc_would_refuse(rx):
    def invoke(task: str | None, body: bytes, kind: str = "Async") -> requests.Response:
        path = "/2023-03-30/functions/f/invocations"
        signed = sign_v3(
            method="POST",
            host=rx.url.split("//")[1],
            action="InvokeFunction",
            params={},
            credentials=AK,
            date=utc_timestamp(),
            nonce=hashlib.md5(body + (task or "").encode() + kind.encode()).hexdigest(),  # noqa: S324 - a nonce
            version="2023-03-30",
            body=body,
            content_type="application/octet-stream",
            path=path,
        )
        headers = {**signed.headers, "x-fc-invocation-type": kind}
        if task is not None:
            headers["x-fc-async-task-id"] = task
        return requests.post(rx.url + path, data=body, headers=headers, timeout=5)

    good = EVENT.text.encode()
    assert invoke(None, good).status_code == 400  # no task id
    assert invoke("3f2b-starts-with-a-digit", good).status_code == 400
    assert invoke("axn-1", good, kind="Sync").status_code == 400
    assert invoke("axn-1", b'{"not": "an event"}').status_code == 400
    assert invoke("axn-1", good).status_code == 202
    assert invoke("axn-1", good + b" ").status_code == 409  # the same task id again
    assert [i["reason"] for i in rx.invocations[:4]] == [
        "the async task id is missing or malformed",
        "the async task id is missing or malformed",
        "x-fc-invocation-type is not Async",
        "the body is not a CloudEvents 1.0 event",
    ]


def test_the_receiver_answers_404_for_a_function_it_does_not_have(creds):
    with FcReceiver(KEYS, functions={"orders-events"}) as rx:
        target("fc", rx.url).send(EVENT, timeout=5)
        with pytest.raises(PublishError) as raised:
            FcTarget(f"fc://other?endpoint={rx.url}").send(EVENT, timeout=5)
    assert "FunctionNotFound" in raised.value.message and rx.statuses == [202, 404]


# --------------------------------------------------------------------------- no secrets


@pytest.mark.parametrize("kind", KINDS)
def test_names_errors_and_logs_never_show_credentials(rx, creds, kind, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and urllib3's included
    messages = []
    rx.fail(503, count=3)
    rx.fail(403, code="AccessDenied")
    for _ in range(2):
        with pytest.raises(PublishError) as raised:
            target(kind, rx.url, backoff=0.01).send(EVENT, timeout=5)
        messages.append(raised.value.message)
    signatures = [i["headers"]["authorization"] for i in rx.invocations]
    assert len(signatures) == 4
    shown = "\n".join([*messages, caplog.text, target(kind, rx.url).name])
    for secret in (*SECRETS, *signatures, *(s.rsplit(":", 1)[-1] for s in signatures)):
        assert secret not in shown


def test_the_fc2_sdk_s_own_log_records_are_dropped(creds, caplog):
    from fc2.auth import Auth

    from axn_bind.publish.fc2 import _QuietSdk

    Fc2Target("fc2://s/f?endpoint=http://127.0.0.1:9")  # opening one loads the SDK
    caplog.set_level(logging.DEBUG)
    auth = Auth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    headers = {"date": "x", "x-fc-security-token": STS.security_token}
    auth.sign_request("POST", "/p", headers)  # the SDK logs its string to sign at DEBUG
    assert STS.security_token not in caplog.text
    [quiet] = [f for f in logging.getLogger().filters if isinstance(f, _QuietSdk)]
    logging.getLogger().removeFilter(quiet)
    try:  # without the filter the token would be in the log: the filter is what keeps it out
        auth.sign_request("POST", "/p", headers)
        assert STS.security_token in caplog.text
    finally:
        logging.getLogger().addFilter(quiet)


# --------------------------------------------------------------------------- through the handler


@pytest.mark.parametrize("kind", KINDS)
def test_an_http_binding_is_announced_to_the_function_once(env, emulator, kind):
    with FcReceiver(KEYS) as receiver:
        env(
            AXN_IDEMPOTENCY_URL="memory://",
            AXN_PUBLISH_TO=url_of(kind, receiver.url),
            AXN_PUBLISH_TIMEOUT_MS="2000",
        )
        order = {"PhoneNoA": "13900000171", "TtlSeconds": 3600, "OutOrderId": f"FC-{kind}"}
        status, _, body = post(order)
        assert status == 200 and "Announced" not in body
        status, headers, again = post(order)  # a client retry: replayed, not announced again
        assert headers["Idempotent-Replayed"] == "true" and again == body
    [event] = receiver.events
    assert event["type"] == "axn.binding.created" and event["subject"] == f"FC-{kind}"
    assert event["data"]["SubsId"] == body["SecretBindDTO"]["SubsId"]
    assert event["data"]["PhoneNoA"] == "139****0171"
    assert [i["status"] for i in receiver.invocations] == [202]
    assert len(emulator.bindings()) == 1
    for invocation in receiver.invocations:
        text = invocation["body"] + json.dumps(invocation["headers"])
        for number in PHONE.findall(text):
            assert number.startswith("17"), f"a customer's number was published: {number}"
