"""One binding per order, whatever the upstream, the store or the code does: a property test.

Hypothesis draws a delivery path (HTTP, direct, a queue batch), a number of redeliveries, and for
each delivery a fault: an answer that may have bound (an empty 200, JSON without ``Code``, a 202,
``SignatureNonceUsed``), a 5xx or ``isp.*`` after binding, a connection dropped before or after
binding, an answer that is late or drips in byte by byte, throttling, a defect after the upstream
call returned, or a store that fails to record the outcome. The real handler runs every delivery
against the emulator over loopback HTTP, as a redelivering platform would (a batch is delivered
again while the handler raises).

After each example:

- the emulator holds at most one binding for the order (``refuse``), or at most one more than the
  ``possible_orphan_binding`` warnings logged (``reexecute``, the documented cost);
- every answer that says bound names that binding's SubsId;
- a batch handler either raised (the platform redelivers) or reported every record, none of
  them ``failed``;
- no customer's phone number appears in any answer.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axn_bind import app
from axn_bind.errors import TransientFailureError
from axn_bind.idempotency import StoreUnavailableError
from axn_bind.service import BindService
from tests.conftest import call, post

pytestmark = pytest.mark.usefixtures("env")

DTO = '{"SecretNo":"17000000000","SubsId":"S-X","Extension":"1"}'

# Upstream faults: (emulator fault kind, options). Each applies to one BindAxnExtension request.
UPSTREAM = {
    "empty 200, bound": ("raw", {"status": 200, "body": "", "bind": True}),
    "empty 200, not bound": ("raw", {"status": 200, "body": ""}),
    "200 without Code": (
        "raw",
        {"body": '{"RequestId":"R","SecretBindDTO":' + DTO + "}", "bind": True},
    ),
    "202 OK": ("raw", {"status": 202, "body": '{"Code":"OK","RequestId":"R"}', "bind": True}),
    "SignatureNonceUsed": ("gateway", {"status": 400, "code": "SignatureNonceUsed", "bind": True}),
    "isp error, bound": ("isp_error", {"bind": True}),
    "isp error, not bound": ("isp_error", {}),
    "503, bound": ("http_5xx", {"status": 503, "bind": True}),
    "dropped after binding": ("bind_then_drop", {}),
    "dropped before": ("drop_before", {}),
    "late answer": ("delay", {"seconds": 0.5}),
    "dripping answer": ("drip", {"interval": 0.05}),
    "throttled": ("throttle", {"retry_after": 0.01}),
    "bind conflict": ("business", {"code": "isv.BIND_CONFLICT"}),
}
# Faults of this project's own code and store, injected at their seams.
LOCAL = ("defect after the call", "store fails to record")
FAULTS = (None, *UPSTREAM, *LOCAL)


@dataclass
class Injected:
    """The local faults armed for the next delivery."""

    defect: bool = False
    store_failure: bool = False


@pytest.fixture
def injected(monkeypatch) -> Injected:
    armed = Injected()
    real_call = BindService._call

    def call_then_defect(self, *args: Any, **kwargs: Any):
        outcome = real_call(self, *args, **kwargs)
        if armed.defect:  # the upstream call has returned (and may have bound)
            armed.defect = False
            raise RuntimeError("a defect after the upstream call")
        return outcome

    monkeypatch.setattr(BindService, "_call", call_then_defect)

    def failing(name: str):
        def finish(self, *args: Any, **kwargs: Any):
            if armed.store_failure:
                armed.store_failure = False
                raise StoreUnavailableError("the store did not answer")
            return getattr(type(self).__mro__[1], name)(self, *args, **kwargs)

        return finish

    from axn_bind.idempotency import MemoryStore

    class FlakyStore(MemoryStore):
        complete = failing("complete")
        mark_unknown = failing("mark_unknown")
        release = failing("release")

    monkeypatch.setattr("axn_bind.idempotency.MemoryStore", FlakyStore)
    return armed


def order(order_id: str, n: int = 1) -> dict[str, Any]:
    return {"PhoneNoA": f"139000000{n:02d}", "TtlSeconds": 3600, "OutOrderId": order_id}


def mns_batch(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "specversion": "1.0",
            "id": f"ce-{i}",
            "source": "MNS-axn-bind",
            "type": "mns:Queue:SendMessage",
            "data": {"messageId": f"M-{body['OutOrderId']}", "messageBody": json.dumps(body)},
        }
        for i, body in enumerate(bodies)
    ]


def arm(fault: str | None, emulator, injected: Injected) -> None:
    if fault in UPSTREAM:
        kind, options = UPSTREAM[fault]
        emulator.add_fault(kind, **options)
    elif fault == "defect after the call":
        injected.defect = True
    elif fault == "store fails to record":
        injected.store_failure = True


def deliver(path: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One delivery; the bodies answered for each order (empty when the handler raised)."""
    if path == "http":
        status, _headers, body = post(orders[0])
        return [{**body, "_status": status}]
    if path == "direct":
        return [call(orders[0])]
    try:
        report = call(mns_batch(orders))
    except TransientFailureError:
        return []  # the platform delivers the whole batch again
    records = report["Records"]
    assert [r["Id"] for r in records] == [f"mns:M-{o['OutOrderId']}" for o in orders]
    assert all(r["Result"] in ("bound", "rejected") for r in records), records
    return records


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(["http", "direct", "batch"]),
    mode=st.sampled_from(["refuse", "reexecute"]),
    faults=st.lists(st.sampled_from(FAULTS), min_size=1, max_size=5),
)
def test_no_fault_sequence_binds_an_order_twice(
    env, emulator, injected, caplog, path, mode, faults
):
    env(
        AXN_UNKNOWN_OUTCOME=mode,
        DYPLS_CONNECT_TIMEOUT="0.3",
        DYPLS_READ_TIMEOUT="0.3",
        DYPLS_MAX_ATTEMPTS="3",
        AXN_DEADLINE_MARGIN_MS="0",
    )
    emulator.reset()
    injected.defect = injected.store_failure = False
    caplog.clear()
    run = uuid.uuid4().hex[:8]
    target = f"EO-{run}"
    orders = [order(target)] + ([order(f"EO-{run}-b", 2)] if path == "batch" else [])

    answers: list[dict[str, Any]] = []
    with caplog.at_level(logging.WARNING, logger="axn_bind"):
        for fault in [*faults, None]:  # a last clean delivery, as a patient platform makes
            emulator.clear_faults()
            arm(fault, emulator, injected)
            answers += deliver(path, orders)
    emulator.clear_faults()
    assert emulator.wait_idle()  # a late answer's binding counts too

    orphans_warned = sum("possible_orphan_binding" in r.getMessage() for r in caplog.records)
    allowed = 1 if mode == "refuse" else 1 + orphans_warned
    made = emulator.bindings()
    subs = set()
    for o in orders:
        bindings = [b for b in made if b["OutOrderId"] == o["OutOrderId"]]
        assert len(bindings) <= allowed, (faults, o["OutOrderId"], bindings)
        subs |= {b["SubsId"] for b in bindings}
    for answer in answers:
        dto = answer.get("SecretBindDTO")
        if answer.get("Code") == "OK":  # an answer that says bound names a real binding
            assert dto["SubsId"] in subs, (faults, answer, subs)
        text = json.dumps(answer, ensure_ascii=False)
        assert not any(o["PhoneNoA"] in text for o in orders), answer


def test_the_property_covers_every_fault(emulator):
    """Every upstream fault above is one the emulator accepts (a typo would test nothing)."""
    for kind, options in UPSTREAM.values():
        emulator.add_fault(kind, **options)
    assert len(emulator.faults()) == len(UPSTREAM)
    emulator.clear_faults()
    app.reset()
