"""Every HTTP target against a receiver that misbehaves on purpose (tools/receivers/faults.py):
an answer dripped a byte at a time ends when the time given ends, and an answer of 800 MiB (or
chunked without end, or a gzip bomb) costs a few KiB of memory, not the function's 256 MB.

The limits asserted are generous (1 s given, 3 s allowed; a few MiB of Python memory): they
prove the deadline and the cap are enforced, not how fast this machine is. Unbounded, the drip
would take 32 s and the flood 800 MiB (1.6 GiB at the peak).
"""

from __future__ import annotations

import base64
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from axn_bind.config import Credentials
from axn_bind.errors import PublishError
from axn_bind.publish.eventbridge import EventBridgeTarget
from axn_bind.publish.fc import FcTarget
from axn_bind.publish.fc2 import Fc2Target
from axn_bind.publish.mns import MnsTarget
from axn_bind.publish.webhook import WebhookTarget
from tests.conftest import call, post
from tests.publish.conftest import sample_event
from tools.receivers.eventbridge import EventBridgeReceiver
from tools.receivers.faults import MiB, gzip_bomb
from tools.receivers.fc import FcReceiver
from tools.receivers.mns import MnsReceiver
from tools.receivers.webhook import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"bounded-test-secret-0123456789ab").decode()
KEY = Credentials("LTAI5tBoundedTestKey01", "bounded-test-secret-0123456789")
ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY.access_key_id,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": KEY.access_key_secret,
}
EVENT = sample_event("BD-1", "1234567890123456")
GIVEN = 1.0  # the time each send is given
ALLOWED = 3.0  # the time it may take: the deadline plus a generous slack
MEMORY = 4 * MiB  # the Python memory it may take at the peak
TARGETS = ["webhook", "eventbridge", "mns", "fc", "fc2"]


def no_sleep(seconds: float) -> None:
    pass


Make = Callable[[], Any]


def endpoint(kind: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Make]:
    """A receiver of ``kind`` (not started) and a function making a target that sends to it."""
    options: dict[str, Any] = {"sleep": no_sleep, "backoff": 0.01}  # every attempt within 1 s
    if kind == "webhook":
        rx: Any = WebhookReceiver(SECRET)
        return rx, lambda: WebhookTarget(rx.url, SECRET, **options)
    if kind == "eventbridge":
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)
        rx = EventBridgeReceiver({KEY.access_key_id: (KEY.access_key_secret, None)})
        return rx, lambda: EventBridgeTarget(rx.target_url(), **options)
    if kind == "mns":
        rx = MnsReceiver(KEY.access_key_id, KEY.access_key_secret)
        return rx, lambda: MnsTarget(rx.url("queue", "axn-events"), env=ENV, **options)
    rx = FcReceiver({KEY.access_key_id: (KEY.access_key_secret, None)})
    if kind == "fc":
        return rx, lambda: FcTarget(f"fc://orders-events?endpoint={rx.url}", env=ENV, **options)
    return rx, lambda: Fc2Target(f"fc2://orders/events?endpoint={rx.url}", env=ENV, **options)


@pytest.fixture(params=TARGETS)
def target(request, monkeypatch) -> Iterator[tuple[Any, Any, str]]:
    """(receiver, target, kind) for each HTTP target, the receiver running."""
    gzip_bomb()  # made once, before anything is measured
    rx, make = endpoint(request.param, monkeypatch)
    with rx:
        yield rx, make(), request.param


def measured(send: Callable[[], Any]) -> tuple[Any, float, int]:
    """What ``send()`` returned or the PublishError it raised, its seconds, and the peak of the
    Python memory allocated meanwhile, in bytes."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome = send()
    except PublishError as error:
        outcome = error
    finally:
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, seconds, peak


@pytest.mark.parametrize("kind", ["drip", "drip-status"])
def test_a_dripping_answer_ends_when_the_time_given_ends(target, kind):
    rx, publisher, _ = target
    drip = rx.misbehave(kind, interval=0.5)  # 32 s to drip (drip-status: 50 s)
    outcome, seconds, peak = measured(lambda: publisher.send(EVENT, timeout=GIVEN))
    assert isinstance(outcome, PublishError) and outcome.retryable
    assert outcome.message.endswith(": no answer (timed out)")
    assert seconds < ALLOWED and peak < MEMORY
    assert drip.ended.wait(3) and drip.outcome == "client went away"
    assert drip.seconds < ALLOWED + 1  # the receiver saw the client go, at its next byte or two


@pytest.mark.parametrize("kind", ["flood", "flood-chunked"])
def test_a_huge_answer_is_cut_at_64_kib_and_costs_no_memory(target, kind):
    rx, publisher, _ = target
    floods = [rx.misbehave(kind) for _ in range(publisher.attempts)]
    outcome, seconds, peak = measured(lambda: publisher.send(EVENT, timeout=GIVEN))
    assert isinstance(outcome, PublishError) and outcome.retryable
    assert outcome.message.endswith(
        f"not delivered after {publisher.attempts} attempt(s): no answer (answer cut at 64 KiB)"
    )
    assert seconds < ALLOWED and peak < MEMORY
    for flood in floods:  # every attempt hung up long before the 800 MiB were written
        assert flood.ended.wait(3) and flood.outcome == "client went away"
        assert flood.written < 64 * MiB


# What each target makes of a 200 whose body is 10 KB of gzip it did not ask for: the webhook
# and FC look only at the status; EventBridge and MNS cannot read it and send again.
BOMB_OUTCOME = {
    "webhook": None,
    "eventbridge": "not delivered after 3 attempt(s)",
    "mns": "an answer MNS does not give (HTTP 200 without a MessageId)",
    "fc": None,
    "fc2": None,
}


def test_a_gzip_bomb_is_not_inflated(target):
    rx, publisher, kind = target
    bombs = [rx.misbehave("gzip-bomb") for _ in range(publisher.attempts)]
    outcome, seconds, peak = measured(lambda: publisher.send(EVENT, timeout=GIVEN))
    expected = BOMB_OUTCOME[kind]
    if expected is None:
        assert outcome is None  # delivered
    else:
        assert isinstance(outcome, PublishError) and outcome.retryable
        assert expected in outcome.message
    assert seconds < ALLOWED and peak < MEMORY
    assert bombs[0].ended.wait(3) and bombs[0].outcome == "complete"
    assert bombs[0].written < 16 * 1024  # 10 KB, not 4 GiB


def test_after_a_cut_answer_the_next_attempt_delivers_on_a_fresh_connection():
    with WebhookReceiver(SECRET) as rx:
        flood = rx.misbehave("flood")
        WebhookTarget(rx.url, SECRET, sleep=no_sleep).send(EVENT, timeout=5)
    assert [d["status"] for d in rx.deliveries] == [204, 204]  # the first answer never arrived
    assert flood.outcome == "client went away" and len(rx.events) == 2  # sent twice, one id
    assert rx.duplicates == 1


def test_credentials_in_a_webhook_url_are_sent_as_basic_authorization():
    with WebhookReceiver(SECRET) as rx:
        url = rx.url.replace("http://", "http://ops:p%40ss@")
        WebhookTarget(url, SECRET, sleep=no_sleep).send(EVENT, timeout=5)
    [headers] = rx.headers
    assert headers["authorization"] == "Basic " + base64.b64encode(b"ops:p@ss").decode()
    assert rx.deliveries[0]["verified"]


# -- through the function's handler ---------------------------------------------------------


@pytest.fixture
def announcing(env):
    """The function announcing to a webhook receiver, with a publish time of one second."""
    with WebhookReceiver(SECRET) as receiver:
        env(
            AXN_IDEMPOTENCY_URL="memory://",
            AXN_PUBLISH_TO=receiver.url,
            AXN_WEBHOOK_SECRET=SECRET,
            AXN_PUBLISH_TIMEOUT_MS="1000",
            AXN_SWEEP_GRACE_SECONDS="0",
        )
        yield receiver


def order(n: int) -> dict[str, Any]:
    return {"PhoneNoA": f"139000002{n:02d}", "TtlSeconds": 3600, "OutOrderId": f"BD-{n}"}


def test_the_handler_answers_in_time_when_the_receiver_drips_and_the_sweep_too(announcing):
    rx = announcing
    for _ in range(3):
        rx.misbehave("drip", interval=0.5)
    started = time.monotonic()
    status, _, body = post(order(1))
    assert time.monotonic() - started < ALLOWED
    assert status == 200 and body["Announced"] is False  # bound; the event is owed
    for _ in range(3):
        rx.misbehave("flood")
    report, seconds, peak = measured(lambda: call({"action": "sweep"}))
    assert (report["Checked"], report["Failed"]) == (1, 1)
    assert seconds < ALLOWED and peak < MEMORY
    rx.misbehaviours.clear()  # the receiver behaves again
    assert call({"action": "sweep"})["Announced"] == 1
    assert {e["data"]["OutOrderId"] for e in rx.events} == {"BD-1"}
