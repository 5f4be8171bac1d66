"""Announcing outcomes end to end: the handler against the emulator, a webhook receiver that
verifies every delivery with ``standardwebhooks``, and a JSON-lines file; memory and Redis."""

from __future__ import annotations

import base64
import json

import pytest

from axn_bind.errors import TransientFailureError
from tests.conftest import call, post
from tests.privacy import MOBILE as PHONE  # a mobile number, never digits inside a hash
from tools.receivers.webhook import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"announce-test-secret-32-bytes-xx").decode()
SWEEP_TIMER = {
    "triggerTime": "2030-01-01T00:00:00Z",
    "triggerName": "sweep",
    "payload": '{"action":"sweep"}',
}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store_url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


@pytest.fixture
def rx(env, store_url, tmp_path):
    """The function announcing to a webhook receiver and a file."""
    with WebhookReceiver(SECRET) as receiver:
        receiver.file = tmp_path / "events.jsonl"
        env(
            AXN_IDEMPOTENCY_URL=store_url,
            AXN_PUBLISH_TO=f"{receiver.url},file://{receiver.file}",
            AXN_WEBHOOK_SECRET=SECRET,
            AXN_PUBLISH_TIMEOUT_MS="2000",
            AXN_SWEEP_GRACE_SECONDS="0",
        )
        yield receiver


def order(n: int, **extra) -> dict:
    return {"PhoneNoA": f"139000001{n:02d}", "TtlSeconds": 3600, "OutOrderId": f"AN-{n}", **extra}


def file_events(rx) -> list[dict]:
    if not rx.file.exists():
        return []
    return [json.loads(line) for line in rx.file.read_text().splitlines()]


def assert_no_customer_number(rx) -> None:
    for delivery, headers in zip(rx.deliveries, rx.headers, strict=True):
        text = delivery["body"] + json.dumps(headers)
        for number in PHONE.findall(text):
            assert number.startswith("17"), f"a customer's number was published: {number}"


def test_an_http_binding_is_announced_once_with_a_stable_id(rx, emulator):
    status, _, body = post(order(1))
    assert status == 200 and "Announced" not in body
    status, headers, again = post(order(1))  # the client retries: replayed, not announced again
    assert headers["Idempotent-Replayed"] == "true" and again == body
    [event] = rx.events
    assert event["type"] == "axn.binding.created" and event["subject"] == "AN-1"
    assert event["data"]["SubsId"] == body["SecretBindDTO"]["SubsId"]
    assert event["data"]["PhoneNoA"] == "139****0101"
    assert file_events(rx) == [event]  # every target got the same event
    assert len(emulator.bindings()) == 1 and rx.duplicates == 0
    assert_no_customer_number(rx)


def test_an_outage_loses_nothing_and_the_retry_republishes_without_binding_again(rx, emulator):
    rx.fail(503, count=3)  # every attempt of the first delivery
    status, _, body = post(order(2))
    assert status == 200 and body["Announced"] is False  # the binding stands, not yet announced
    assert rx.events == [] and len(file_events(rx)) == 1  # the file target had it
    status, _, again = post(order(2))  # the retry replays and republishes what is owed
    assert "Announced" not in again
    assert again["SecretBindDTO"] == body["SecretBindDTO"]
    [event] = rx.events
    assert {d["id"] for d in rx.deliveries} == {event["id"]}  # one id for every attempt
    assert len(file_events(rx)) == 1  # not sent again where it had arrived
    assert len(emulator.bindings()) == 1


def test_the_sweep_delivers_what_an_outage_held_back(rx, emulator):
    rx.fail(502, count=3)
    post(order(3))
    assert rx.events == []
    report = call(SWEEP_TIMER)
    assert (report["Code"], report["Announced"], report["Failed"]) == ("OK", 1, 0)
    [event] = rx.events
    assert event["data"]["OutOrderId"] == "AN-3"
    report = call({"action": "sweep"})  # nothing is owed any more
    assert report["Checked"] == 0 and len(rx.events) == 1
    assert len(emulator.bindings()) == 1


def test_a_sweep_during_the_outage_reports_what_is_still_owed(rx, emulator):
    rx.fail(503, count=6)  # the first delivery and the sweep's
    post(order(4))
    report = call(SWEEP_TIMER)
    assert (report["Code"], report["Failed"]) == ("PartialFailure", 1)
    assert call(SWEEP_TIMER)["Announced"] == 1  # the receiver is back
    assert len(rx.events) == 1


def test_a_batch_announces_each_binding_and_each_refusal(rx, emulator):
    from tests.e2e.test_batch import mns_batch, text

    batch = mns_batch(text(order(5)), text(order(6, PhoneNoA="12345")), text(order(7)))
    report = call(batch)
    assert [r["Result"] for r in report["Records"]] == ["bound", "rejected", "bound"]
    kinds = sorted((e["type"], e["data"]["OutOrderId"]) for e in rx.events)
    assert kinds == [
        ("axn.binding.created", "AN-5"),
        ("axn.binding.created", "AN-7"),
        ("axn.binding.failed", "AN-6"),
    ]
    failed = next(e for e in rx.events if e["type"] == "axn.binding.failed")
    assert failed["data"]["Code"] == "InvalidParameter"
    assert_no_customer_number(rx)


def test_a_batch_whose_announcement_failed_is_redelivered_and_republished(rx, emulator):
    from tests.e2e.test_batch import mns_batch, text

    batch = mns_batch(text(order(8)), text(order(9)))
    rx.fail(503, count=3)  # the first record's announcement fails
    with pytest.raises(TransientFailureError) as raised:
        call(batch)
    assert "1 outcome(s) not yet announced: mns:M0 (bound)" in str(raised.value)
    report = call(batch)  # the platform redelivers: replays, republishes, binds nothing new
    assert [r.get("Replayed") for r in report["Records"]] == [True, True]
    assert sorted(e["data"]["OutOrderId"] for e in rx.events) == ["AN-8", "AN-9"]
    assert len(emulator.bindings()) == 2 and rx.duplicates == 0


def test_a_direct_refusal_is_announced_an_http_one_is_not(rx, emulator):
    post(order(10, PhoneNoA="12345"))
    assert rx.events == []  # the HTTP caller was told; the order flow hears of bindings only
    answer = call(order(11, PhoneNoA="12345"))
    assert answer["Code"] == "InvalidParameter"
    [event] = rx.events
    assert event["type"] == "axn.binding.failed" and event["subject"] == "AN-11"
    again = call(order(11, PhoneNoA="12345"))  # the same refusal again: the same event id
    assert again["Code"] == "InvalidParameter"
    assert len({e["id"] for e in rx.events}) == 1


def test_a_target_that_is_not_one_is_a_configuration_error_naming_the_setting(env, emulator):
    env(AXN_PUBLISH_TO="ftp://example.com/x")
    status, _, body = post(order(12))
    assert status == 500 and "AXN_PUBLISH_TO" in body["Message"]
    assert not emulator.bindings()
