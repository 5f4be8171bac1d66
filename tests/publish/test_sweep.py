"""The sweep always makes progress and names what it cannot resolve: the handler against the
emulator, a webhook receiver verifying every delivery, memory and Redis stores.

Each test here reproduces a way an owed announcement could wait behind entries the sweep could
not resolve, or an entry could enter the outbox that nothing would ever take out.
"""

from __future__ import annotations

import base64
import logging
import time

import pytest
import redis

from axn_bind import app
from axn_bind.idempotency.redis_store import OUTBOX_KEY
from axn_bind.publish.outbox import HELD_NAMED, SWEEP_BATCH
from tests.conftest import call, post
from tools.receivers.webhook import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"sweep-test-secret-32-bytes-xxxxx").decode()
SWEEP = {"action": "sweep"}


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store_url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")


@pytest.fixture
def rx(env, store_url):
    with WebhookReceiver(SECRET) as receiver:
        env(
            AXN_IDEMPOTENCY_URL=store_url,
            AXN_PUBLISH_TO=receiver.url,
            AXN_WEBHOOK_SECRET=SECRET,
            AXN_PUBLISH_TIMEOUT_MS="2000",
            AXN_SWEEP_GRACE_SECONDS="0",
        )
        yield receiver


def order(n: int, **extra) -> dict:
    return {"PhoneNoA": f"1390000{n:04d}", "TtlSeconds": 3600, "OutOrderId": f"SW-{n}", **extra}


def owed() -> int:
    return len(app.service().store.outbox_due(0, 10_000))


def test_an_owed_binding_is_announced_behind_more_held_entries_than_one_sweep_reads(
    rx, emulator, caplog
):
    """More bindings held by unknown outcomes than one outbox read returns, then a binding whose
    announcement failed: the sweep announces it, and names the held ones."""
    held = SWEEP_BATCH + 10
    emulator.set_max_extensions(100)  # room in the pool for every order (reset after the test)
    emulator.add_fault("bind_then_drop", count=held)  # bound upstream, the answer lost
    for n in range(held):
        status, _, body = post(order(n))
        assert (status, body["Code"]) == (502, "UpstreamConnectionLost")
    rx.fail(503, count=3)  # every attempt of the newest binding's announcement
    status, _, body = post(order(held))
    assert status == 200 and body["Announced"] is False
    assert rx.events == []
    with rx.lock:  # the receiver is back (a fault left by an attempt the deadline skipped too)
        rx.faults.clear()

    caplog.set_level(logging.WARNING, logger="axn_bind")
    report = call(SWEEP)

    [event] = rx.events
    assert event["subject"] == f"SW-{held}"
    assert (report["Announced"], report["Held"], report["Remaining"]) == (1, held, 0)
    assert report["Code"] == "PartialFailure"  # held bindings need an operator
    assert report["HeldOldestSeconds"] >= 0
    named = report["HeldRecords"]
    assert len(named) == HELD_NAMED
    assert all(r["Record"].startswith("axn:idem:") and "@" in r["AttemptId"] for r in named)
    assert f"{held} binding(s) held by an unknown outcome" in report["Message"]
    assert "QuerySubscriptionDetail" in report["Message"]
    lines = [r.getMessage() for r in caplog.records]
    assert sum('"event":"binding_held"' in line for line in lines) == HELD_NAMED
    assert any(f'"event":"bindings_held","held":{held}' in line for line in lines)

    again = call(SWEEP)  # the held ones stay named; nothing is announced twice
    assert (again["Announced"], again["Held"]) == (0, held)
    assert len(rx.events) == 1
    assert len(emulator.bindings()) == held + 1


def test_a_refused_retry_adds_nothing_to_the_outbox(rx, emulator):
    status, _, _ = post(order(1))
    assert status == 200 and len(rx.events) == 1
    assert owed() == 0
    status, _, body = post(order(1, PhoneNoA="13900009999"))  # the same order, other data
    assert (status, body["Code"]) == (409, "IdempotencyKeyReused")
    assert owed() == 0


def test_a_binding_whose_instance_died_mid_call_is_named_as_held(rx, emulator):
    """An IN_PROGRESS record past its lease: its instance was killed during the call."""
    store = app.service().store
    key = "axn:idem:" + "d" * 64
    begin = store.begin(key, "fp", lease_seconds=0.05, ttl_seconds=3600, take_over_unknown=False)
    assert begin.started
    store.outbox_add(key)
    running = "axn:idem:" + "e" * 64  # a call still within its lease: not held, not dropped
    store.begin(running, "fp", lease_seconds=60, ttl_seconds=3600, take_over_unknown=False)
    store.outbox_add(running)
    time.sleep(0.1)

    report = call(SWEEP)

    assert (report["Held"], report["InFlight"], report["Dropped"]) == (1, 1, 0)
    assert report["HeldRecords"] == [{"Record": key, "AttemptId": None}]
    assert owed() == 2  # both stay owed: each is announced or named until it is resolved


def test_a_record_that_expired_before_its_announcement_is_counted_and_logged(rx, emulator, caplog):
    store = app.service().store
    key = "axn:idem:" + "f" * 64
    store.begin(key, "fp", lease_seconds=0.5, ttl_seconds=1, take_over_unknown=False)
    store.outbox_add(key)
    time.sleep(1.2)
    caplog.set_level(logging.WARNING, logger="axn_bind")

    report = call(SWEEP)

    assert (report["Expired"], report["Dropped"], report["Code"]) == (1, 0, "PartialFailure")
    assert "1 record(s) expired before their outcome was announced" in report["Message"]
    assert any(
        '"event":"outbox_record_expired"' in r.getMessage() and key in r.getMessage()
        for r in caplog.records
    )
    assert owed() == 0


@pytest.mark.redis
def test_a_store_refused_as_not_durable_is_not_written_to(env, emulator, redis_processes):
    server = redis_processes.start("--save", "", "--appendonly", "no")
    with WebhookReceiver(SECRET) as receiver:
        env(
            AXN_IDEMPOTENCY_URL=server.url(),
            AXN_STORE_DURABILITY="enforce",
            AXN_PUBLISH_TO=receiver.url,
            AXN_WEBHOOK_SECRET=SECRET,
        )
        status, _, body = post(order(1))
    assert (status, body["Code"]) == (500, "StoreNotDurable")
    client = redis.Redis.from_url(server.url())
    try:
        assert client.exists(OUTBOX_KEY) == 0
        assert client.dbsize() == 0
    finally:
        client.close()
    assert emulator.bindings() == []
