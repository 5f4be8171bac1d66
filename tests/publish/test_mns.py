"""The MNS target (queue SendMessage, topic PublishMessage, API 2015-06-06) against a local MNS
endpoint that checks the signature with an implementation of its own, and through the handler."""

from __future__ import annotations

import base64
import json
import re
import socket

import pytest

from axn_bind.errors import ConfigurationError, PublishError
from axn_bind.publish import event as ev
from axn_bind.publish import open_target
from axn_bind.publish.event import Event
from axn_bind.publish.mns import MnsTarget, authorization, message_xml, string_to_sign
from tests.conftest import post
from tests.privacy import MOBILE as PHONE  # a mobile number, never digits inside a hash
from tests.publish.conftest import Sleeps
from tools.dypls_emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from tools.receivers.mns import MnsReceiver

AK = "LTAI5tMNSTESTKEYID0001"
SECRET = "MnsTestSecret0123456789abcdefXYZ"
TOKEN = "CAIS-sts-token-for-tests-0123456789"
CREDS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}
STS = {**CREDS, "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS." + AK, "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN}
EVENT = ev.created(
    source=ev.source_of("axn-bind", "cn-hangzhou", "1234567890123456"),
    when=1_900_000_000.0,
    pool_key="FC100000000000001",
    binding={"SecretNo": "17000000001", "Extension": "100", "SubsId": "1000000800000001"},
    request={
        "PhoneNoA": "13912345678",
        "OutOrderId": "DD-1<&>",
        "Expiration": "2030-01-01 12:00:00",
    },
    upstream_request_id="R-1",
)


def target(url: str, env: dict[str, str] | None = None, **kw) -> MnsTarget:
    return MnsTarget(url, env=CREDS if env is None else env, sleep=kw.pop("sleep", Sleeps()), **kw)


def big_event(size: int) -> Event:
    """An event whose JSON text is ``size`` bytes."""
    head = '{"specversion":"1.0","id":"big-1","type":"axn.binding.created","data":"'
    text = head + "x" * (size - len(head) - 2) + '"}'
    assert len(text.encode()) == size
    return Event("big-1", "axn.binding.created", text)


# -- the signature: both documented vectors --------------------------------------------------------


def test_the_documented_get_vector():
    headers = {"date": "Thu, 09 Jul 2015 03:01:34 GMT", "x-mns-version": "2015-06-06"}
    assert string_to_sign("GET", "/MyQueue", headers) == (
        "GET\n\n\nThu, 09 Jul 2015 03:01:34 GMT\nx-mns-version:2015-06-06\n/MyQueue"
    )
    value = authorization("TestAccessID", "TestAccessSecret", "GET", "/MyQueue", headers)
    assert value == "MNS TestAccessID:uwx3yeWoILzgmvesW0BQSgfM7b8="


def test_the_send_message_vector_with_a_user_request_id():
    headers = {
        "Content-Type": "text/xml;charset=utf-8",
        "Date": "Tue, 08 Dec 2015 06:13:40 GMT",
        "x-mns-version": "2015-06-06",
        "X-MNS-User-Request-Id": "req-0001",  # any case: x-mns-* are lower-cased and sorted
    }
    value = authorization(
        "LTAI5tTESTACCESSKEYID",
        "TestAccessKeySecret0123456789abc",
        "POST",
        "/queues/order-binding-q/messages",
        headers,
    )
    assert value == "MNS LTAI5tTESTACCESSKEYID:9W3XbQO2oXqZ+zEEyr9ltud6VA0="


def test_the_receiver_checks_signatures_by_the_same_vectors():
    rx = MnsReceiver("LTAI5tTESTACCESSKEYID", "TestAccessKeySecret0123456789abc")
    try:
        headers = {
            "content-type": "text/xml;charset=utf-8",
            "date": "Tue, 08 Dec 2015 06:13:40 GMT",
            "x-mns-user-request-id": "req-0001",
            "x-mns-version": "2015-06-06",
            "security-token": "not signed",
        }
        path = "/queues/order-binding-q/messages"
        assert rx.expected_signature("POST", path, headers) == "9W3XbQO2oXqZ+zEEyr9ltud6VA0="
    finally:
        rx.server.server_close()


def test_the_security_token_is_not_signed():
    headers = {"content-type": "text/xml;charset=utf-8", "date": "Tue, 08 Dec 2015 06:13:40 GMT"}
    plain = string_to_sign("POST", "/topics/t/messages", headers)
    assert string_to_sign("POST", "/topics/t/messages", {**headers, "security-token": "x"}) == plain


def test_the_message_xml_escapes_the_body():
    assert message_xml('{"a":"<b> & c\r"}') == (
        b'<?xml version="1.0" encoding="utf-8"?><Message xmlns="http://mns.aliyuncs.com/doc/v1/">'
        b'<MessageBody>{"a":"&lt;b&gt; &amp; c&#13;"}</MessageBody></Message>'
    )


# -- delivery over HTTP ---------------------------------------------------------------------------


def test_a_queue_message_is_base64_signed_and_checked_by_the_receiver():
    with MnsReceiver(AK, SECRET) as rx:
        mns = target(rx.url("queue", "axn-events"))
        mns.send(EVENT, timeout=5)
    assert rx.events == [json.loads(EVENT.text)]
    [message] = rx.messages
    assert (message["kind"], message["name"]) == ("queue", "axn-events")
    assert message["body"] == base64.b64encode(EVENT.text.encode()).decode()
    [request] = rx.requests
    headers = request["headers"]
    assert request["path"] == "/queues/axn-events/messages" and request["status"] == 201
    assert headers["content-type"] == "text/xml;charset=utf-8"
    assert headers["x-mns-version"] == "2015-06-06"
    assert re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", headers["date"])
    assert headers["authorization"].startswith(f"MNS {AK}:")
    assert "security-token" not in headers and "content-md5" not in headers
    assert request["body"].startswith('<?xml version="1.0" encoding="utf-8"?><Message xmlns=')
    assert mns.name == "mns://queue/axn-events"


def test_a_topic_message_is_the_json_text_itself_xml_escaped():
    with MnsReceiver(AK, SECRET) as rx:
        target(rx.url("topic", "axn-events")).send(EVENT, timeout=5)
    [message] = rx.messages
    assert message["kind"] == "topic" and message["body"] == EVENT.text
    assert rx.events == [json.loads(EVENT.text)]
    assert "DD-1&lt;&amp;&gt;" in rx.requests[0]["body"]  # escaped on the wire
    assert rx.requests[0]["path"] == "/topics/axn-events/messages"


def test_a_queue_body_goes_raw_with_base64_false():
    with MnsReceiver(AK, SECRET, decode_queues=False) as rx:
        target(rx.url("queue", "axn-events", base64="false")).send(EVENT, timeout=5)
    assert rx.messages[0]["body"] == EVENT.text
    assert rx.events == [json.loads(EVENT.text)]


def test_sts_credentials_send_the_token_unsigned():
    with MnsReceiver("STS." + AK, SECRET, security_token=TOKEN) as rx:
        target(rx.url("topic", "axn-events"), env=STS).send(EVENT, timeout=5)
    assert rx.requests[0]["headers"]["security-token"] == TOKEN
    assert len(rx.events) == 1


def test_a_wrong_secret_is_refused_and_not_retried_and_no_secret_is_shown():
    with MnsReceiver(AK, SECRET) as rx:
        mns = target(
            rx.url("queue", "axn-events"),
            env={**CREDS, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x" * 32},
        )
        with pytest.raises(PublishError) as raised:
            mns.send(EVENT, timeout=5)
    error = raised.value
    assert not error.retryable and "HTTP 403 SignatureDoesNotMatch" in error.message
    assert [r["code"] for r in rx.requests] == ["SignatureDoesNotMatch"]
    signature = rx.requests[0]["headers"]["authorization"].split(":")[1]
    for secret in ("x" * 32, SECRET, signature):
        assert secret not in error.message and secret not in repr(error)


def test_a_missing_queue_is_refused_with_what_to_fix():
    with MnsReceiver(AK, SECRET, queues=()) as rx, pytest.raises(PublishError) as raised:
        target(rx.url("queue", "axn-events")).send(EVENT, timeout=5)
    assert not raised.value.retryable
    assert "HTTP 404 QueueNotExist; create the queue" in raised.value.message
    assert raised.value.message.startswith("mns://queue/axn-events: ")
    assert len(rx.requests) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [(404, "TopicNotExist"), (403, "AccessDenied"), (403, "InvalidAccessKeyId"),
     (400, "InvalidArgument"), (400, "MalformedXML"), (400, "InvalidDegist")],
)  # fmt: skip
def test_the_documented_refusals_are_not_retried(status, code):
    with MnsReceiver(AK, SECRET) as rx:
        rx.fail(status, code)
        with pytest.raises(PublishError) as raised:
            target(rx.url("topic", "axn-events")).send(EVENT, timeout=5)
    assert not raised.value.retryable
    assert f"HTTP {status} {code}" in raised.value.message and "RequestId" in raised.value.message
    assert len(rx.requests) == 1 and rx.events == []


def test_5xx_and_qps_limit_are_retried_with_backoff():
    sleeps = Sleeps()
    with MnsReceiver(AK, SECRET) as rx:
        rx.fail(503)
        rx.fail(400, "QpsLimitExceeded")  # a 400 that is not a refusal
        target(rx.url("queue", "axn-events"), backoff=0.4, sleep=sleeps).send(EVENT, timeout=30)
    assert [r["status"] for r in rx.requests] == [503, 400, 201]
    assert 0.2 <= sleeps.waits[0] <= 0.4  # 0.4 s × [0.5, 1]
    assert 0.4 <= sleeps.waits[1] <= 0.8  # doubled
    assert len(rx.events) == 1


def test_429_honours_retry_after():
    sleeps = Sleeps()
    with MnsReceiver(AK, SECRET) as rx:
        rx.fail(429, "TooManyRequests", retry_after="2")
        target(rx.url("queue", "axn-events"), sleep=sleeps).send(EVENT, timeout=30)
    assert sleeps.waits == [2.0]
    assert [r["status"] for r in rx.requests] == [429, 201]


def test_time_expired_is_signed_again_at_once():
    sleeps = Sleeps()
    with MnsReceiver(AK, SECRET) as rx:
        rx.fail(408, "TimeExpired")
        target(rx.url("queue", "axn-events"), sleep=sleeps).send(EVENT, timeout=5)
    assert [r["code"] for r in rx.requests] == ["TimeExpired", None]
    assert sleeps.waits == []  # no backoff
    assert len(rx.events) == 1


def test_a_clock_off_by_an_hour_is_corrected_from_the_server_date():
    sleeps = Sleeps()
    with MnsReceiver(AK, SECRET) as rx:
        rx.skew = 3600.0
        mns = target(rx.url("topic", "axn-events"), sleep=sleeps)
        mns.send(EVENT, timeout=5)
        mns.send(EVENT, timeout=5)  # the next event is dated by MNS's clock from the start
    assert [r["status"] for r in rx.requests] == [408, 201, 201]
    assert sleeps.waits == [] and 3590 <= mns.skew <= 3610
    assert [e["id"] for e in rx.events] == [EVENT.id, EVENT.id]  # MNS does not de-duplicate


def test_still_failing_after_the_attempts_is_retryable_and_names_the_target():
    with MnsReceiver("STS." + AK, SECRET, security_token=TOKEN) as rx:
        rx.fail(500, count=3)
        with pytest.raises(PublishError) as raised:
            target(rx.url("queue", "axn-events"), env=STS).send(EVENT, timeout=5)
    error = raised.value
    assert error.retryable and error.target == "mns://queue/axn-events"
    assert "not delivered after 3 attempt(s): HTTP 500 InternalError" in error.message
    assert TOKEN not in error.message and SECRET not in error.message
    assert len(rx.requests) == 3


def test_retries_stop_when_the_time_is_spent():
    with MnsReceiver(AK, SECRET) as rx:
        rx.fail(503, count=3)
        mns = target(rx.url("queue", "axn-events"), backoff=10.0)
        with pytest.raises(PublishError) as raised:
            mns.send(EVENT, timeout=1.0)
    assert raised.value.retryable and "after 1 attempt(s)" in raised.value.message
    assert len(rx.requests) == 1 and mns.sleep.waits == []


def test_a_slow_answer_is_a_retryable_timeout():
    with MnsReceiver(AK, SECRET) as rx:
        rx.fail(201, delay=1.0)
        with pytest.raises(PublishError) as raised:
            target(rx.url("queue", "axn-events"), attempts=1).send(EVENT, timeout=0.3)
    assert raised.value.retryable and "no answer (timed out)" in raised.value.message


def test_a_refused_connection_is_retried_then_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    mns = target(f"mns://queue/q1?endpoint=http://127.0.0.1:{port}", sleep=sleeps)
    with pytest.raises(PublishError) as raised:
        mns.send(EVENT, timeout=5)
    assert raised.value.retryable and "after 3 attempt(s): no answer" in raised.value.message
    assert len(sleeps.waits) == 2


def test_an_answer_that_is_not_mns_is_retryable_later():
    with MnsReceiver(AK, SECRET) as rx:
        rx.fail(200)
        with pytest.raises(PublishError) as raised:
            target(rx.url("queue", "axn-events")).send(EVENT, timeout=5)
    assert raised.value.retryable and "without a MessageId" in raised.value.message
    assert len(rx.requests) == 1


def test_missing_credentials_are_not_retryable_and_name_the_variables():
    with pytest.raises(PublishError) as raised:
        target("mns://queue/q1?endpoint=http://127.0.0.1:9", env={}).send(EVENT, timeout=1)
    assert not raised.value.retryable
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in raised.value.message


# -- the 64 KB limit ------------------------------------------------------------------------------


def test_64_kb_is_the_most_a_message_body_may_hold():
    fits, too_big = big_event(65536), big_event(65537)
    base64_too_big = big_event(49200)  # 65600 bytes once in Base64
    with MnsReceiver(AK, SECRET, decode_queues=False) as rx:
        target(rx.url("topic", "axn-events")).send(fits, timeout=5)
        target(rx.url("queue", "axn-events", base64="false")).send(fits, timeout=5)
        for url, event in [
            (rx.url("topic", "axn-events"), too_big),
            (rx.url("queue", "axn-events"), base64_too_big),
        ]:
            with pytest.raises(PublishError) as raised:
                target(url).send(event, timeout=5)
            assert not raised.value.retryable and "at most 65536 (64 KB)" in raised.value.message
    assert len(rx.messages) == 2 and len(rx.requests) == 2  # nothing too big was sent


def test_a_raw_body_xml_cannot_carry_is_refused_before_sending():
    event = Event("e-1", "axn.binding.created", '{"id":"e-1","x":"\ufffe"}')
    with pytest.raises(PublishError) as raised:
        target("mns://topic/t1?endpoint=http://127.0.0.1:9").send(event, timeout=1)
    assert not raised.value.retryable and "?base64=true" in raised.value.message


# -- the URL --------------------------------------------------------------------------------------

FC_ENV = {**CREDS, "FC_REGION": "cn-hangzhou", "FC_ACCOUNT_ID": "1234567890123456"}


def test_the_endpoint_comes_from_the_region_and_account():
    mns = MnsTarget("mns://queue/axn-events", env=FC_ENV)
    assert (
        mns.url
        == "https://1234567890123456.mns.cn-hangzhou.aliyuncs.com/queues/axn-events/messages"
    )
    assert mns.base64 is True and mns.name == "mns://queue/axn-events"
    topic = MnsTarget("mns://topic/axn-events?base64=true", env=FC_ENV)
    assert topic.url.endswith("/topics/axn-events/messages") and topic.base64 is True
    assert MnsTarget("mns://topic/t", env=FC_ENV).base64 is False


def test_open_target_knows_the_scheme(monkeypatch):
    monkeypatch.setenv("FC_REGION", "cn-shanghai")
    monkeypatch.setenv("FC_ACCOUNT_ID", "42")
    mns = open_target("mns://topic/orders")
    assert isinstance(mns, MnsTarget) and mns.endpoint == "https://42.mns.cn-shanghai.aliyuncs.com"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mns://bucket/x", "mns://queue/<name> or mns://topic/<name>"),
        ("mns://queue/", "must start with a letter"),
        ("mns://queue/1abc", "must start with a letter"),
        ("mns://queue/a_b", "letters, digits and hyphens"),
        ("mns://queue/a/b", "mns://queue/<name>"),
        ("mns://queue:80/a", "mns://queue/<name>"),
        ("mns://AKID:hunter2@queue/a", "remove the user:password part"),
        ("mns://queue/a?token=hunter2", "unknown option ?token="),
        ("mns://queue/a?base64=maybe", "must be true or false"),
        ("mns://queue/a?base64=true&base64=false", "gives ?base64= twice"),
        ("mns://queue/a?endpoint=http://mns.example.com", "https:// for mns.example.com"),
        ("mns://queue/a?endpoint=https://u:hunter2@127.0.0.1", "must not carry credentials"),
        ("mns://queue/a?endpoint=https://h.example.com/x", "must not carry a path"),
        ("mns://queue/a?endpoint=ftp://h", "must be an https:// URL"),
    ],
)
def test_a_bad_url_says_what_to_fix_and_never_echoes_a_credential(url, said):
    with pytest.raises(ConfigurationError) as raised:
        MnsTarget(url, env=FC_ENV)
    message = raised.value.message
    assert message.startswith("AXN_PUBLISH_TO:") and said in message
    assert "hunter2" not in message and "AKID" not in message


@pytest.mark.parametrize("missing", ["FC_REGION", "FC_ACCOUNT_ID"])
def test_without_region_or_account_the_endpoint_must_be_given(missing):
    env = {k: v for k, v in FC_ENV.items() if k != missing}
    with pytest.raises(ConfigurationError) as raised:
        MnsTarget("mns://queue/a", env=env)
    assert "FC_REGION and FC_ACCOUNT_ID" in raised.value.message
    assert MnsTarget("mns://queue/a?endpoint=https://x.example.com", env=env).url == (
        "https://x.example.com/queues/a/messages"
    )


def test_the_name_drops_the_query_so_tokens_never_show():
    mns = MnsTarget("mns://queue/a?endpoint=http://127.0.0.1:1&base64=false", env=FC_ENV)
    assert mns.name == "mns://queue/a"


# -- through the handler --------------------------------------------------------------------------


@pytest.fixture(params=["queue", "topic"])
def rx(request, env, monkeypatch):
    """The function announcing to a local MNS queue or topic."""
    with MnsReceiver(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET) as receiver:
        env(AXN_PUBLISH_TO=receiver.url(request.param, "axn-events"), AXN_PUBLISH_TIMEOUT_MS="3000")
        yield receiver


def test_an_http_binding_is_announced_once_to_mns(rx, emulator):
    order = {"PhoneNoA": "13900000201", "TtlSeconds": 3600, "OutOrderId": "MNS-1"}
    status, _, body = post(order)
    assert status == 200 and "Announced" not in body
    status, headers, _ = post(order)  # the client retries: replayed, not announced again
    assert status == 200 and headers["Idempotent-Replayed"] == "true"
    [event] = rx.events
    assert event["type"] == "axn.binding.created" and event["subject"] == "MNS-1"
    assert event["data"]["SubsId"] == body["SecretBindDTO"]["SubsId"]
    assert event["data"]["PhoneNoA"] == "139****0201"
    assert len(rx.messages) == 1 and len(emulator.bindings()) == 1
    for request in rx.requests:
        text = json.dumps(request) + json.dumps(rx.messages) + json.dumps(rx.events)
        for number in PHONE.findall(text):
            assert number.startswith("17"), f"a customer's number was published: {number}"


def test_an_mns_outage_leaves_the_binding_owed_and_the_retry_announces_it(rx, emulator):
    order = {"PhoneNoA": "13900000202", "TtlSeconds": 3600, "OutOrderId": "MNS-2"}
    rx.fail(404, "QueueNotExist")  # refused for good this time: no retries
    status, _, body = post(order)
    assert status == 200 and body["Announced"] is False and rx.events == []
    status, _, again = post(order)  # replayed and republished under the same id
    assert "Announced" not in again and again["SecretBindDTO"] == body["SecretBindDTO"]
    [event] = rx.events
    assert event["subject"] == "MNS-2" and len(emulator.bindings()) == 1
