"""The order flow with each target configured in turn: bindings from HTTP, a direct invocation
and a queue batch each announced exactly once, a refusal announced as failed, and two outages of
the target (one recovered by the client's retry or the platform's redelivery, one by the sweep)
that lose nothing and bind nothing twice. The receivers verify every delivery as the real
service would; AMQP goes to the real local RabbitMQ."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from axn_bind.errors import TransientFailureError
from tests.conftest import call, post
from tests.e2e.test_batch import mns_batch, text
from tools.dypls_emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

SECRET = "whsec_" + base64.b64encode(b"order-flow-test-secret-32-bytes!").decode()
KEYS = {DEFAULT_ACCESS_KEY_ID: (DEFAULT_ACCESS_KEY_SECRET, None)}
SWEEP = {"action": "sweep"}


@dataclass
class Rig:
    url: str
    receiver: Any  # has .events and .fail(status, count=…), or None for AMQP
    read: Any  # () -> the events received so far, in order

    def outage(self) -> None:
        self.receiver.fail(503, count=50)

    def recover(self) -> None:
        self.receiver.faults.clear()


@contextlib.contextmanager
def rig(kind: str) -> Iterator[Rig]:
    if kind == "webhook":
        from tools.receivers.webhook import WebhookReceiver

        with WebhookReceiver(SECRET) as rx:
            yield Rig(rx.url, rx, lambda: list(rx.events))
    elif kind == "eventbridge":
        from tools.receivers.eventbridge import EventBridgeReceiver

        with EventBridgeReceiver(KEYS) as rx:
            yield Rig(rx.target_url(), rx, lambda: list(rx.events))
    elif kind == "mns":
        from tools.receivers.mns import MnsReceiver

        with MnsReceiver(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET) as rx:
            yield Rig(rx.url("queue", "axn-events"), rx, lambda: list(rx.events))
    elif kind in ("fc", "fc2"):
        from tools.receivers.fc import FcReceiver

        with FcReceiver(KEYS) as rx:
            name = "orders-events" if kind == "fc" else "orders/orders-events"
            yield Rig(f"{kind}://{name}?endpoint={rx.url}", rx, lambda: list(rx.events))
    else:
        yield from _amqp()


def _amqp() -> Iterator[Rig]:
    from tests.publish.test_amqp import Broker

    broker = Broker()  # skips with how to start RabbitMQ, or fails under CI=true
    channel = broker.channel
    name = f"axn-flow-{uuid.uuid4().hex[:8]}"
    channel.exchange_declare(name, "direct", auto_delete=False)
    channel.queue_declare(name, arguments={"x-expires": 600_000})
    channel.queue_bind(name, name, routing_key="axn")
    got: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        while True:
            method, _, body = channel.basic_get(name, auto_ack=True)
            if method is None:
                return list(got)
            got.append(json.loads(body))

    try:
        yield Rig(
            f"amqp://guest:guest@127.0.0.1:5672/%2F?exchange={name}&routing_key=axn", None, read
        )
    finally:
        channel.queue_delete(name)
        channel.exchange_delete(name)
        broker.conn.close()


def order(n: int, **extra: Any) -> dict[str, Any]:
    return {"PhoneNoA": f"139000002{n:02d}", "TtlSeconds": 3600, "OutOrderId": f"OF-{n}", **extra}


KINDS = ["webhook", "eventbridge", "mns", "fc", "fc2", "amqp"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_binding_is_announced_exactly_once_through_outages(kind, env, emulator):
    with rig(kind) as r:
        env(
            AXN_PUBLISH_TO=r.url,
            AXN_WEBHOOK_SECRET=SECRET,
            AXN_PUBLISH_TIMEOUT_MS="3000",
            AXN_SWEEP_GRACE_SECONDS="0",
        )
        assert post(order(1))[0] == 200  # HTTP
        assert post(order(1))[1]["Idempotent-Replayed"] == "true"  # the client retries
        assert call(order(2))["Code"] == "OK"  # direct
        batch = mns_batch(text(order(3)), text(order(4, PhoneNoA="12345")), text(order(5)))
        assert [r["Result"] for r in call(batch)["Records"]] == ["bound", "rejected", "bound"]
        if r.receiver is not None:
            r.outage()  # the target is down for an HTTP bind and a queue batch
            assert post(order(6))[2]["Announced"] is False
            with pytest.raises(TransientFailureError):
                call(mns_batch(text(order(7))))
            r.recover()
            assert call(mns_batch(text(order(7))))["Records"][0]["Replayed"] is True  # redelivered
            assert call(SWEEP)["Announced"] == 1  # order 6, held back by the outage
        events = r.read()

    bound = {b["OutOrderId"]: b["SubsId"] for b in emulator.bindings()}
    expected = {f"OF-{n}" for n in (1, 2, 3, 5)} | ({"OF-6", "OF-7"} if r.receiver else set())
    assert set(bound) == expected  # and never two bindings for one order
    assert len(emulator.bindings()) == len(expected)
    created = [e for e in events if e["type"] == "axn.binding.created"]
    failed = [e for e in events if e["type"] == "axn.binding.failed"]
    by_order = {e["data"]["OutOrderId"]: e for e in created}
    assert set(by_order) == expected
    assert all(by_order[o]["data"]["SubsId"] == bound[o] for o in expected)
    assert [e["data"]["OutOrderId"] for e in failed] == ["OF-4"]
    assert len({e["id"] for e in events}) == len(expected) + 1  # one id per outcome
    assert len(created) == len(expected)  # no duplicates reached the receiver
    dumped = json.dumps(events)
    assert not any(f"139000002{n:02d}" in dumped for n in range(1, 8))  # PII scan
