"""The webhook target against a local receiver that verifies with the independent
``standardwebhooks`` package."""

from __future__ import annotations

import base64
import json

import pytest

from axn_bind.errors import ConfigurationError, PublishError
from axn_bind.publish import event as ev
from axn_bind.publish import open_target
from axn_bind.publish.webhook import WebhookTarget, retry_after, sign, webhook_key
from tests.publish.conftest import Sleeps
from tools.receivers.webhook import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
EVENT = ev.created(
    source=ev.source_of("axn-bind", "cn-hangzhou"),
    when=1_900_000_000.0,
    pool_key="FC100000000000001",
    binding={"SecretNo": "17000000001", "Extension": "100", "SubsId": "1000000800000001"},
    request={"PhoneNoA": "13912345678", "OutOrderId": "DD-1", "Expiration": "2030-01-01 12:00:00"},
    upstream_request_id="R-1",
)


def test_the_library_vector_of_standard_webhooks():
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_delivery_verifies_with_the_independent_library():
    with WebhookReceiver(SECRET) as rx:
        open_target(rx.url, webhook_secret=SECRET).send(EVENT, timeout=5)
    [received] = rx.events
    assert received == json.loads(EVENT.text)
    [headers] = rx.headers
    assert headers["webhook-id"] == EVENT.id
    assert headers["content-type"].startswith("application/cloudevents+json")
    assert rx.deliveries[0]["body"] == EVENT.text  # the body is the event's JSON text


def test_a_wrong_secret_is_refused_by_the_receiver_and_not_retried():
    other = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode()
    with WebhookReceiver(SECRET) as rx, pytest.raises(PublishError) as raised:
        WebhookTarget(rx.url, other, sleep=Sleeps()).send(EVENT, timeout=5)
    assert not raised.value.retryable and "HTTP 401" in raised.value.message
    assert [d["verified"] for d in rx.deliveries] == [False]


def test_429_and_5xx_are_retried_honouring_retry_after():
    sleeps = Sleeps()
    with WebhookReceiver(SECRET) as rx:
        rx.fail(429, retry_after="2")
        rx.fail(503)
        WebhookTarget(rx.url, SECRET, attempts=3, backoff=0.4, sleep=sleeps).send(EVENT, timeout=30)
    assert [d["status"] for d in rx.deliveries] == [429, 503, 204]
    assert sleeps.waits[0] == 2.0  # the receiver's Retry-After
    assert 0.4 <= sleeps.waits[1] <= 0.8  # backoff with jitter: 0.4 s × 2 × [0.5, 1]
    assert {d["id"] for d in rx.deliveries} == {EVENT.id}  # one id across retries
    assert len(rx.events) == 1


def test_410_stops_at_once():
    with WebhookReceiver(SECRET) as rx:
        rx.fail(410)
        with pytest.raises(PublishError) as raised:
            WebhookTarget(rx.url, SECRET, sleep=Sleeps()).send(EVENT, timeout=5)
    assert not raised.value.retryable and "410" in raised.value.message
    assert len(rx.deliveries) == 1


def test_still_failing_after_the_attempts_is_a_retryable_error_naming_the_target():
    with WebhookReceiver(SECRET) as rx:
        rx.fail(502, count=3)
        target = WebhookTarget(
            rx.url.replace("http://", "http://user:pw@") + "?token=t", SECRET, sleep=Sleeps()
        )
        with pytest.raises(PublishError) as raised:
            target.send(EVENT, timeout=5)
    assert raised.value.retryable
    assert "not delivered after 3 attempt(s): HTTP 502" in raised.value.message
    assert raised.value.message.startswith(rx.url.split("?")[0])
    assert "pw" not in raised.value.message and "token" not in raised.value.message


def test_a_receiver_that_does_not_answer_in_time_is_retryable():
    with WebhookReceiver(SECRET) as rx:
        rx.fail(204, delay=1.0)
        with pytest.raises(PublishError) as raised:
            WebhookTarget(rx.url, SECRET, attempts=1).send(EVENT, timeout=0.3)
    assert raised.value.retryable and "no answer" in raised.value.message


@pytest.mark.parametrize(
    ("secret", "said"),
    [(None, "AXN_WEBHOOK_SECRET is empty"), ("", "AXN_WEBHOOK_SECRET is empty"),
     ("whsec_short", "at least 16 random bytes"), ("whsec_not base64!!", "at least 16")],
)  # fmt: skip
def test_a_bad_secret_names_the_setting_and_never_echoes_it(secret, said):
    with pytest.raises(ConfigurationError) as raised:
        webhook_key(secret)
    assert said in raised.value.message
    if secret:
        assert secret not in raised.value.message


def test_plain_http_only_to_loopback():
    with pytest.raises(ConfigurationError) as raised:
        open_target("http://orders.example.com/hook", webhook_secret=SECRET)
    assert "https://" in raised.value.message
    assert open_target("https://orders.example.com/hook", webhook_secret=SECRET).name == (
        "https://orders.example.com/hook"
    )


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after("3", now=0) == 3.0
    assert retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0) == 6.0
    assert retry_after("soon", now=0) is None and retry_after(None, now=0) is None


def test_a_password_with_a_slash_is_a_configuration_error_that_shows_none_of_it():
    with pytest.raises(ConfigurationError) as info:
        WebhookTarget("https://user:Sx7/rest@example.com/hook", SECRET)
    assert "AXN_PUBLISH_TO" in info.value.message and "%2F" in info.value.message
    assert "Sx7" not in info.value.message and "rest" not in info.value.message


def test_an_ipv6_webhook_is_named_with_its_brackets():
    assert WebhookTarget("http://[::1]:8080/h", SECRET).name == "http://[::1]:8080/h"
