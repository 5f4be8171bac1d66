"""The EventBridge target (PutEvents on a custom bus, signed by hand) against the reference's
vectors and a local receiver that checks headers, signature and body with code of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket

import pytest

from axn_bind.config import Credentials
from axn_bind.errors import ConfigurationError, PublishError
from axn_bind.publish import event as ev
from axn_bind.publish import open_target
from axn_bind.publish.event import Event
from axn_bind.publish.eventbridge import (
    EventBridgeTarget,
    put_events_body,
    signed_headers,
    string_to_sign,
)
from tests.conftest import post
from tests.privacy import MOBILE as PHONE  # a mobile number, never digits inside a hash
from tests.publish.conftest import Sleeps
from tools.dypls_emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_STS_ACCESS_KEY_ID,
    DEFAULT_STS_ACCESS_KEY_SECRET,
    DEFAULT_STS_SECURITY_TOKEN,
)
from tools.receivers import eventbridge as receiver_module
from tools.receivers.eventbridge import EventBridgeReceiver

# The reference's vectors E1 and E2.
VECTOR_DATE = "Sat, 18 Apr 2020 05:30:41 GMT"
VECTOR_NONCE = "f63659d410ac483b99daea8fde610001"
VECTOR_AK = "LTAI5tTESTACCESSKEYID"
VECTOR_SECRET = "TestAccessKeySecret0123456789abc"
VECTOR_E1 = "acs:LTAI5tTESTACCESSKEYID:8+mx3a6qgRyCFFe82evyZvu6KH0="
VECTOR_STS_AK = "STS.NTESTTEMPKEYID"
VECTOR_STS_TOKEN = "CAIS.fake-sts-token+/=="
VECTOR_E2 = "acs:STS.NTESTTEMPKEYID:c+RgtuOzb99Vs3yv+8lX4Pgi1eM="

AK, SECRET = "LTAI5tLOCALTESTKEY01", "local-test-secret-0123456789abcdef"
STS_AK, STS_SECRET, STS_TOKEN = "STS.NLOCALTEMPKEY01", "local-sts-secret-0123456789", "CAIS.tok+/=="
KNOWN = {AK: (SECRET, None), STS_AK: (STS_SECRET, STS_TOKEN)}

EVENT = ev.created(
    source=ev.source_of("axn-bind", "cn-hangzhou", "1234567890123456"),
    when=1_900_000_000.0,
    pool_key="FC100000000000001",
    binding={"SecretNo": "17000000001", "Extension": "100", "SubsId": "1000000800000001"},
    request={"PhoneNoA": "13912345678", "OutOrderId": "DD-1", "Expiration": "2030-01-01 12:00:00"},
    upstream_request_id="R-1",
)


@pytest.fixture
def creds(monkeypatch):
    """The function's credentials: a permanent key unless told otherwise."""

    def use(key_id: str = AK, secret: str = SECRET, token: str | None = None) -> None:
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
        if token is None:
            monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
        else:
            monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", token)

    use()
    return use


@pytest.fixture
def rx():
    with EventBridgeReceiver(KNOWN, bus="orders") as receiver:
        yield receiver


def target(rx: EventBridgeReceiver, **kw) -> EventBridgeTarget:
    kw.setdefault("sleep", Sleeps())
    return EventBridgeTarget(rx.target_url(), **kw)


# -- the reference's vectors ---------------------------------------------------------------------


def test_vector_e1_permanent_key():
    headers = signed_headers(
        host="1234567890123456.eventbridge.cn-hangzhou.aliyuncs.com",
        credentials=Credentials(VECTOR_AK, VECTOR_SECRET),
        date=VECTOR_DATE,
        nonce=VECTOR_NONCE,
    )
    assert headers["authorization"] == VECTOR_E1
    assert string_to_sign("POST", "/openapi/putEvents", headers) == (
        "POST\n\napplication/cloudevents-batch+json; charset=utf-8\n"
        "Sat, 18 Apr 2020 05:30:41 GMT\n"
        "x-acs-signature-method:HMAC-SHA1\n"
        "x-acs-signature-nonce:f63659d410ac483b99daea8fde610001\n"
        "x-acs-signature-version:1.0\n"
        "/openapi/putEvents"
    )
    assert "x-acs-security-token" not in headers and "x-acs-accesskey-id" not in headers
    assert headers["x-eventbridge-version"] and headers["accept"] == "application/json"


def test_vector_e2_sts_headers_are_signed():
    headers = signed_headers(
        host="1234567890123456.eventbridge.cn-hangzhou.aliyuncs.com",
        credentials=Credentials(VECTOR_STS_AK, VECTOR_SECRET, VECTOR_STS_TOKEN),
        date=VECTOR_DATE,
        nonce=VECTOR_NONCE,
    )
    assert headers["x-acs-accesskey-id"] == VECTOR_STS_AK
    assert headers["x-acs-security-token"] == VECTOR_STS_TOKEN
    assert headers["authorization"] == VECTOR_E2


@pytest.mark.parametrize(
    ("extra", "key_id", "expected"),
    [({}, VECTOR_AK, VECTOR_E1),
     ({"x-acs-accesskey-id": VECTOR_STS_AK, "x-acs-security-token": VECTOR_STS_TOKEN},
      VECTOR_STS_AK, VECTOR_E2)],
)  # fmt: skip
def test_the_receiver_verifies_the_vectors_with_its_own_code(extra, key_id, expected):
    headers = {
        "content-type": "application/cloudevents-batch+json; charset=utf-8",
        "date": VECTOR_DATE,
        "x-acs-signature-nonce": VECTOR_NONCE,
        "x-acs-signature-method": "HMAC-SHA1",
        "x-acs-signature-version": "1.0",
        "x-eventbridge-version": "2015-06-06",
        **extra,
    }
    text = receiver_module._string_to_sign("POST", "/openapi/putEvents", headers)
    mac = hmac.new(VECTOR_SECRET.encode(), text.encode(), hashlib.sha1).digest()
    assert f"acs:{key_id}:{base64.b64encode(mac).decode()}" == expected


def test_a_query_is_signed_sorted_after_the_path():
    text = string_to_sign("GET", "/openapi/x", {"date": "d"}, {"b": "2", "a": "1"})
    assert text == "GET\n\n\nd\n/openapi/x?a=1&b=2"


# -- delivery over HTTP --------------------------------------------------------------------------


def test_a_delivery_is_the_event_with_the_bus_extension_and_verifies(rx, creds):
    target(rx).send(EVENT, timeout=5)
    [received] = rx.events
    assert received == {**json.loads(EVENT.text), "aliyuneventbusname": "orders"}
    [delivery] = rx.deliveries
    assert delivery["verified"] and delivery["status"] == 200
    assert json.loads(delivery["body"]) == [received]  # a JSON array of one CloudEvent
    assert delivery["body"].encode() == put_events_body(EVENT, "orders")
    [headers] = rx.headers
    assert headers["content-type"] == "application/cloudevents-batch+json; charset=utf-8"
    assert headers["accept"] == "application/json"
    assert headers["x-acs-signature-method"] == "HMAC-SHA1"
    assert headers["x-acs-signature-version"] == "1.0"
    assert headers["x-eventbridge-version"] == "2015-06-06"
    assert headers["authorization"].startswith(f"acs:{AK}:")
    assert headers["date"].endswith(" GMT")
    assert "x-acs-security-token" not in headers


def test_role_credentials_send_the_signed_sts_headers(rx, creds):
    creds(STS_AK, STS_SECRET, STS_TOKEN)
    target(rx).send(EVENT, timeout=5)
    [headers] = rx.headers
    assert headers["x-acs-accesskey-id"] == STS_AK
    assert headers["x-acs-security-token"] == STS_TOKEN
    assert [d["verified"] for d in rx.deliveries] == [True] and len(rx.events) == 1


def test_credentials_are_read_at_each_send(rx, creds):
    publisher = target(rx)
    publisher.send(EVENT, timeout=5)
    creds(STS_AK, STS_SECRET, STS_TOKEN)  # FC rotated the role's credentials
    publisher.send(EVENT, timeout=5)
    keys = [h["authorization"].split(":")[1] for h in rx.headers]
    assert keys == [AK, STS_AK]
    assert all(d["verified"] for d in rx.deliveries)


def test_the_receiver_refuses_a_body_naming_another_bus(rx, creds):
    """The receiver's checks can fail: a body changed after signing to name another bus."""
    publisher = target(rx)
    original = publisher.transport.send

    def tampering(url, headers, body, **kw):
        return original(url, headers, body.replace(b"orders", b"others"), **kw)

    publisher.transport.send = tampering
    with pytest.raises(PublishError) as raised:
        publisher.send(EVENT, timeout=5)
    assert not raised.value.retryable and "HTTP 400 EventBusNotExist" in raised.value.message
    assert rx.events == [] and rx.deliveries[0]["reason"] == "entry 0: bus 'others'"


# -- what is retried and what is not ------------------------------------------------------------


def test_a_wrong_secret_is_refused_with_403_not_retried_and_nothing_secret_is_shown(rx, creds):
    creds(STS_AK, "not-the-secret", STS_TOKEN)
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    error = raised.value
    assert not error.retryable
    assert "HTTP 403 SignatureDoesNotMatch" in error.message
    assert len(rx.deliveries) == 1
    # The receiver's answer quoted its string to sign, token included; none of it is repeated.
    assert STS_TOKEN in rx.deliveries[0]["answer"]["message"]
    signature = rx.headers[0]["authorization"].rsplit(":", 1)[1]
    for secret in ("not-the-secret", STS_TOKEN, signature, "string to sign"):
        assert secret not in error.message


@pytest.mark.parametrize(
    "code", ["AccessDenied", "InvalidAccessKeyId", "SecurityTokenInvalid", "ServiceAccessDenied"]
)
def test_403_codes_are_not_retried(rx, creds, code):
    rx.fail(403, code=code)
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    assert not raised.value.retryable and f"HTTP 403 {code}" in raised.value.message
    assert len(rx.deliveries) == 1


def test_other_4xx_are_refused_for_good(rx, creds):
    rx.fail(400, code="InvalidArgument")
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    assert not raised.value.retryable and len(rx.deliveries) == 1


def test_429_and_5xx_are_retried_with_backoff_honouring_retry_after(rx, creds):
    sleeps = Sleeps()
    rx.fail(429, code="TooManyRequests", retry_after="2")
    rx.fail(503)
    target(rx, backoff=0.4, sleep=sleeps).send(EVENT, timeout=30)
    assert [d["status"] for d in rx.deliveries] == [429, 503, 200]
    assert sleeps.waits[0] == 2.0  # the receiver's Retry-After
    assert 0.4 <= sleeps.waits[1] <= 0.8  # 0.4 s × 2 × jitter in [0.5, 1]
    assert len(rx.events) == 1
    assert rx.reused_nonces == 0 and len(set(rx.nonces)) == 3  # every attempt signed afresh


def test_still_failing_after_the_attempts_is_retryable(rx, creds):
    rx.fail(500, count=3)
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    assert raised.value.retryable
    assert "not delivered after 3 attempt(s): EventBridge answered HTTP 500" in (
        raised.value.message
    )
    assert raised.value.message.startswith("eventbridge://orders: ")
    assert len(rx.deliveries) == 3 and rx.events == []


def test_a_retry_never_waits_past_the_time_given(rx, creds):
    sleeps = Sleeps()
    rx.fail(503, retry_after="30")
    with pytest.raises(PublishError) as raised:
        target(rx, sleep=sleeps).send(EVENT, timeout=2)
    assert raised.value.retryable and sleeps.waits == [] and len(rx.deliveries) == 1


def test_a_refused_connection_is_retryable(creds):
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"eventbridge://orders?endpoint=http://127.0.0.1:{port}"
    with pytest.raises(PublishError) as raised:
        EventBridgeTarget(url, sleep=Sleeps()).send(EVENT, timeout=5)
    assert raised.value.retryable and "no answer (connection refused)" in raised.value.message


def test_an_answer_that_does_not_come_in_time_is_retryable(rx, creds):
    rx.delay(1.0)
    with pytest.raises(PublishError) as raised:
        target(rx, attempts=1).send(EVENT, timeout=0.3)
    assert raised.value.retryable and "no answer" in raised.value.message


# -- the partial failure that arrives as HTTP 200 -----------------------------------------------


def test_a_retryable_failed_entry_is_sent_again(rx, creds):
    rx.fail_entries("TooManyRequests", "flow control")
    target(rx).send(EVENT, timeout=5)
    assert [(d["status"], d["failed"]) for d in rx.deliveries] == [(200, 1), (200, 0)]
    assert len(rx.events) == 1  # only the second request's entry was accepted


def test_a_failed_entry_that_keeps_failing_is_a_retryable_error_naming_its_code(rx, creds):
    rx.fail_entries("InternalError", "busy, call 13912345678", count=3)
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    error = raised.value
    assert error.retryable and len(rx.deliveries) == 3 and rx.events == []
    assert "FailedEntryCount 1, entry InternalError" in error.message
    assert "13912345678" not in error.message and "139****5678" in error.message


@pytest.mark.parametrize("code", ["EventBusNotExist", "InvalidArgument", "SomethingNew", ""])
def test_a_failed_entry_with_another_code_is_refused_for_good(rx, creds, code):
    rx.fail_entries(code, "refused")
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    assert not raised.value.retryable
    assert "EventBridge refused the event (FailedEntryCount 1" in raised.value.message
    assert len(rx.deliveries) == 1 and rx.events == []


def test_a_failure_count_without_this_events_entry_is_not_taken_as_delivered(rx, creds):
    rx.answer_raw(json.dumps({"RequestId": "R", "FailedEntryCount": 1, "EntryList": []}).encode())
    target(rx).send(EVENT, timeout=5)  # the second attempt is accepted
    assert [d["status"] for d in rx.deliveries] == [200, 200] and len(rx.events) == 1


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"{}", b'{"FailedEntryCount": "0"}', b"[]"])
def test_a_200_that_is_not_a_put_events_result_is_not_taken_as_delivered(rx, creds, body):
    rx.answer_raw(body, count=3)
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    assert raised.value.retryable and len(rx.deliveries) == 3


def test_a_success_is_read_entry_by_entry_even_when_the_count_is_zero(rx, creds):
    answer = {
        "RequestId": "R",
        "FailedEntryCount": 0,
        "EntryList": [{"EventId": EVENT.id, "ErrorCode": "InvalidArgument", "ErrorMessage": "x"}],
    }
    rx.answer_raw(json.dumps(answer).encode())
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    assert not raised.value.retryable and "entry InvalidArgument" in raised.value.message


# -- configuration -------------------------------------------------------------------------------


def test_the_endpoint_comes_from_fc_region_and_account():
    publisher = EventBridgeTarget(
        "eventbridge://Orders-Bus-1",
        env={"FC_REGION": "cn-hangzhou", "FC_ACCOUNT_ID": "1234567890123456"},
    )
    assert publisher.url == (
        "https://1234567890123456.eventbridge.cn-hangzhou.aliyuncs.com/openapi/putEvents"
    )
    assert publisher.name == "eventbridge://Orders-Bus-1" and publisher.bus == "Orders-Bus-1"


def test_open_target_reads_fc_region_and_account_from_the_environment(monkeypatch):
    monkeypatch.setenv("FC_REGION", "cn-shanghai")
    monkeypatch.setenv("FC_ACCOUNT_ID", "1111222233334444")
    publisher = open_target("eventbridge://orders")
    assert isinstance(publisher, EventBridgeTarget)
    assert publisher.host == "1111222233334444.eventbridge.cn-shanghai.aliyuncs.com"


def test_without_fc_region_or_account_the_setting_says_what_to_set(monkeypatch):
    monkeypatch.delenv("FC_REGION", raising=False)
    monkeypatch.delenv("FC_ACCOUNT_ID", raising=False)
    with pytest.raises(ConfigurationError) as raised:
        open_target("eventbridge://orders")
    message = raised.value.message
    assert message.startswith("AXN_PUBLISH_TO:")
    assert "FC_REGION" in message and "FC_ACCOUNT_ID" in message and "endpoint=" in message


def test_an_https_endpoint_anywhere_and_http_only_to_loopback():
    vpc = "https://1234567890123456.eventbridge.cn-hangzhou-vpc.aliyuncs.com"
    assert EventBridgeTarget(f"eventbridge://orders?endpoint={vpc}").url == (
        vpc + "/openapi/putEvents"
    )
    assert EventBridgeTarget("eventbridge://orders?endpoint=http://localhost:9").url == (
        "http://localhost:9/openapi/putEvents"
    )
    with pytest.raises(ConfigurationError) as raised:
        EventBridgeTarget("eventbridge://orders?endpoint=http://eb.example.com")
    assert raised.value.message.startswith("AXN_PUBLISH_TO:") and "https://" in (
        raised.value.message
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [("eventbridge://", "bus name"),
     ("eventbridge://orders_bus", "bus name"),
     ("eventbridge://-orders", "bus name"),
     ("eventbridge://orders:443", "bus name"),
     ("eventbridge://" + "b" * 128, "bus name"),
     ("eventbridge://default", "reserved"),
     ("eventbridge://eventbridge-reserved-x", "reserved"),
     ("eventbridge://orders/path", "without a path"),
     ("eventbridge://orders?region=cn-hangzhou", "one query parameter"),
     ("eventbridge://orders?endpoint=ftp://127.0.0.1", "https://host[:port]"),
     ("eventbridge://orders?endpoint=https://h/openapi", "scheme://host[:port] only"),
     ("eventbridge://orders?endpoint=https://h?x=1", "scheme://host[:port] only")],
)  # fmt: skip
def test_a_bad_url_says_what_to_fix(url, said):
    with pytest.raises(ConfigurationError) as raised:
        EventBridgeTarget(url, env={"FC_REGION": "cn-hangzhou", "FC_ACCOUNT_ID": "1"})
    assert raised.value.message.startswith("AXN_PUBLISH_TO:")
    assert said in raised.value.message


@pytest.mark.parametrize(
    "url",
    ["eventbridge://LTAI5tKEY:hunter2secret@orders",
     "eventbridge://orders?endpoint=https://LTAI5tKEY:hunter2secret@eb.example.com",
     "eventbridge://orders?endpoint=https://eb.example.com&AccessKeySecret=hunter2secret"],
)  # fmt: skip
def test_credentials_in_the_url_are_refused_and_never_echoed(url):
    with pytest.raises(ConfigurationError) as raised:
        EventBridgeTarget(url, env={})
    assert raised.value.message.startswith("AXN_PUBLISH_TO:")
    assert "hunter2secret" not in raised.value.message
    assert "LTAI5tKEY" not in raised.value.message


def test_the_name_carries_no_query():
    publisher = open_target("eventbridge://orders?endpoint=http://127.0.0.1:8")
    assert publisher.name == "eventbridge://orders"


def test_no_credentials_is_refused_for_good_without_a_request(rx, monkeypatch):
    for name in ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "SECURITY_TOKEN"):
        monkeypatch.delenv(f"ALIBABA_CLOUD_{name}", raising=False)
    with pytest.raises(PublishError) as raised:
        target(rx).send(EVENT, timeout=5)
    assert not raised.value.retryable and "ALIBABA_CLOUD_ACCESS_KEY_ID" in raised.value.message
    assert rx.deliveries == []


def test_an_event_over_64_kb_is_refused_without_a_request(rx, creds):
    body = {**json.loads(EVENT.text), "data": {"Note": "x" * (64 * 1024)}}
    big = Event(EVENT.id, EVENT.type, json.dumps(body))
    with pytest.raises(PublishError) as raised:
        target(rx).send(big, timeout=5)
    assert not raised.value.retryable and "at most 65536" in raised.value.message
    assert rx.deliveries == []


# -- through the handler -------------------------------------------------------------------------


@pytest.fixture
def announced(env):
    """The function (memory store) announcing to a receiver that knows the emulator's keys."""
    known = {
        DEFAULT_ACCESS_KEY_ID: (DEFAULT_ACCESS_KEY_SECRET, None),
        DEFAULT_STS_ACCESS_KEY_ID: (DEFAULT_STS_ACCESS_KEY_SECRET, DEFAULT_STS_SECURITY_TOKEN),
    }
    with EventBridgeReceiver(known, bus="axn-orders") as receiver:
        env(
            AXN_IDEMPOTENCY_URL="memory://",
            AXN_PUBLISH_TO=receiver.target_url(),
            AXN_PUBLISH_TIMEOUT_MS="3000",
            AXN_SWEEP_GRACE_SECONDS="0",
        )
        yield receiver


def order(n: int) -> dict:
    return {"PhoneNoA": f"139000002{n:02d}", "TtlSeconds": 3600, "OutOrderId": f"EB-{n}"}


def assert_no_customer_number(rx: EventBridgeReceiver) -> None:
    for delivery, headers in zip(rx.deliveries, rx.headers, strict=True):
        for number in PHONE.findall(delivery["body"] + json.dumps(headers)):
            assert number.startswith("17"), f"a customer's number was published: {number}"


@pytest.mark.parametrize("role", [False, True], ids=["access-key", "sts"])
def test_an_http_binding_is_announced_once_on_the_bus(announced, emulator, env, role):
    if role:
        env(
            ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULT_STS_ACCESS_KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULT_STS_ACCESS_KEY_SECRET,
            ALIBABA_CLOUD_SECURITY_TOKEN=DEFAULT_STS_SECURITY_TOKEN,
        )
    status, _, body = post(order(1))
    assert status == 200 and "Announced" not in body
    status, headers, again = post(order(1))  # the client retries: replayed, not announced again
    assert headers["Idempotent-Replayed"] == "true" and again == body
    [event] = announced.events
    assert event["type"] == "axn.binding.created" and event["subject"] == "EB-1"
    assert event["aliyuneventbusname"] == "axn-orders"
    assert event["data"]["SubsId"] == body["SecretBindDTO"]["SubsId"]
    assert event["data"]["PhoneNoA"] == "139****0201"
    assert [d["verified"] for d in announced.deliveries] == [True]
    assert ("x-acs-security-token" in announced.headers[0]) is role
    assert len(emulator.bindings()) == 1
    assert_no_customer_number(announced)


def test_a_refused_entry_leaves_the_outcome_owed_and_the_retry_republishes_it(
    announced, emulator, caplog
):
    announced.fail_entries("EventBusNotExist", "no such bus")
    with caplog.at_level(logging.INFO, logger="axn_bind"):
        status, _, body = post(order(2))
    assert status == 200 and body["Announced"] is False  # the binding stands, not yet announced
    assert announced.events == [] and len(announced.deliveries) == 1  # refused: not retried
    failed = [
        json.loads(r.getMessage()) for r in caplog.records if "publish_failed" in r.getMessage()
    ]
    assert failed[0]["target"] == "eventbridge://axn-orders" and failed[0]["retryable"] is False
    assert "EventBusNotExist" in failed[0]["reason"]
    status, _, again = post(order(2))  # the retry replays and republishes what is owed
    assert "Announced" not in again and again["SecretBindDTO"] == body["SecretBindDTO"]
    [event] = announced.events
    assert {json.loads(d["body"])[0]["id"] for d in announced.deliveries} == {event["id"]}
    assert len(emulator.bindings()) == 1
    assert_no_customer_number(announced)


def test_a_signature_refusal_is_logged_without_anything_secret(env, emulator, caplog):
    """A bus that does not know the role's secret: the binding stands, unannounced, and the
    log line says why without the token the bus quoted back, the secret or the signature."""
    known = {
        DEFAULT_STS_ACCESS_KEY_ID: (
            "a-secret-the-function-does-not-have",
            DEFAULT_STS_SECURITY_TOKEN,
        )
    }
    with EventBridgeReceiver(known, bus="axn-orders") as receiver:
        env(
            AXN_IDEMPOTENCY_URL="memory://",
            AXN_PUBLISH_TO=receiver.target_url(),
            AXN_PUBLISH_TIMEOUT_MS="3000",
            ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULT_STS_ACCESS_KEY_ID,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULT_STS_ACCESS_KEY_SECRET,
            ALIBABA_CLOUD_SECURITY_TOKEN=DEFAULT_STS_SECURITY_TOKEN,
        )
        with caplog.at_level(logging.DEBUG, logger="axn_bind"):
            status, _, body = post(order(3))
    assert status == 200 and body["Announced"] is False
    [delivery] = receiver.deliveries
    assert delivery["code"] == "SignatureDoesNotMatch"
    assert DEFAULT_STS_SECURITY_TOKEN in delivery["answer"]["message"]  # quoted back
    failed = [r.getMessage() for r in caplog.records if "publish_failed" in r.getMessage()]
    assert len(failed) == 1 and "HTTP 403 SignatureDoesNotMatch" in failed[0]
    signature = receiver.headers[0]["authorization"].rsplit(":", 1)[1]
    text = caplog.text + json.dumps(body)
    for secret in (DEFAULT_STS_ACCESS_KEY_SECRET, DEFAULT_STS_SECURITY_TOKEN, signature):
        assert secret not in text
