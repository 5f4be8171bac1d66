"""The bind path under failures, with an injected clock and a scripted transport.

Each test states what Dyplsapi did and how long it took, then checks what the caller is told,
how many requests went out, and what the idempotency record holds afterwards.
"""

from __future__ import annotations

import json
import logging

import pytest

from axn_bind.budget import Budget
from axn_bind.config import Settings
from axn_bind.dypls import DyplsClient, RetryPolicy
from axn_bind.dypls.transport import NoAnswer
from axn_bind.idempotency import MemoryStore, State
from axn_bind.idempotency.keys import IdempotencyKey, record_key
from axn_bind.service import BindService
from tests.fakes import DROPPED, REFUSED, FakeClock, FakeTransport, Step, answer, ok, throttled
from tools.dypls_emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_POOL_KEY
from tools.fc_local import FcContext, FunctionMeta

ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ACCESS_KEY_SECRET,
    "DYPLS_ENDPOINT": "http://127.0.0.1:9",
    "AXN_POOL_KEY": DEFAULT_POOL_KEY,
    "DYPLS_CONNECT_TIMEOUT": "1",
    "DYPLS_READ_TIMEOUT": "3",
    "AXN_DEADLINE_MARGIN_MS": "500",
}


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        monkeypatch.setenv(name, ENV[name])
    monkeypatch.delenv("ALIBABA_CLOUD_SECURITY_TOKEN", raising=False)


class Rig:
    """A BindService with a fake clock, a scripted transport and an in-memory store."""

    def __init__(self, **env: str) -> None:
        self.clock = FakeClock()
        self.settings = Settings.from_env({**ENV, **env})
        self.transport = FakeTransport(self.clock)
        self.store = MemoryStore(clock=self.clock)
        client = DyplsClient(self.settings, self.transport, sleep=self.clock.sleep)  # type: ignore[arg-type]
        self.service = BindService(
            self.settings, client, self.store, clock=self.clock, wall_clock=self.clock
        )

    def bind(self, payload: dict, *, timeout: float = 30, **kw):
        context = FcContext(function=FunctionMeta(timeout=timeout))  # type: ignore[arg-type]
        return self.service.bind(
            payload,
            context=context,
            budget=self.service.budget(context),
            request_id="FC-1",
            **kw,
        )

    def record(self, order_id: str):
        return self.store.get(
            record_key("axn-bind", DEFAULT_POOL_KEY, IdempotencyKey("order", order_id))
        )


def order(n: int = 1, **extra) -> dict:
    return {"PhoneNoA": "13900000001", "TtlSeconds": 3600, "OutOrderId": f"DD-{n}", **extra}


# -- ambiguous answers (Why 1, 5) --------------------------------------------------------------


@pytest.mark.parametrize(
    "ambiguous",
    [
        answer(200, b""),
        answer(200, {"RequestId": "R-9", "SecretBindDTO": {"SecretNo": "1", "SubsId": "2"}}),
        answer(202, {"Code": "OK", "RequestId": "R-9"}),
        answer(400, {"Code": "SignatureNonceUsed", "Message": "used"}),
    ],
)
def test_an_answer_that_may_have_bound_keeps_the_key_and_a_retry_is_refused(ambiguous):
    rig = Rig()
    rig.transport.script = [ambiguous]
    first = rig.bind(order())
    assert first.result == "failed" and first.status == 502
    assert rig.record("DD-1").state is State.UNKNOWN
    again = rig.bind(order())
    assert (again.status, again.code) == (409, "OutcomeUnknown")
    assert len(rig.transport.sent) == 1  # never a second request for the order


# -- the time budget (Why 2, 3) --------------------------------------------------------------


def test_the_exchange_must_end_before_the_deadline_less_the_record_write():
    rig = Rig(DYPLS_CONNECT_TIMEOUT="1", DYPLS_READ_TIMEOUT="3")
    start = rig.clock.now
    rig.bind(order(), timeout=30)
    (sent,) = rig.transport.sent
    assert sent["end"] == pytest.approx(start + 4)  # connect + read: the whole exchange
    assert sent["read_timeout"] == 3


def test_a_call_that_cannot_finish_is_not_started_and_the_key_is_released():
    rig = Rig(DYPLS_CONNECT_TIMEOUT="1", DYPLS_READ_TIMEOUT="3", AXN_DEADLINE_MARGIN_MS="500")
    # 4.4 s of function time: less than 0.5 margin + 1 + 3 + the store write
    outcome = rig.bind(order(), timeout=4.4)
    assert (outcome.status, outcome.code) == (504, "DeadlineExceeded")
    assert "DYPLS_READ_TIMEOUT" in outcome.body["Message"]
    assert rig.transport.sent == []
    assert rig.record("DD-1") is None  # released: the redelivery may bind
    assert rig.bind(order(), timeout=30).result == "bound"


def test_the_time_kept_back_for_the_record_write_is_the_stores():
    rig = Rig(DYPLS_CONNECT_TIMEOUT="1", DYPLS_READ_TIMEOUT="3", AXN_DEADLINE_MARGIN_MS="0")
    rig.store.write_seconds = 2.0
    assert rig.bind(order(), timeout=5.9).code == "DeadlineExceeded"  # 4 + 2 > 5.9
    assert rig.bind(order(2), timeout=6.1).result == "bound"
    (sent,) = rig.transport.sent
    assert sent["end"] <= rig.clock.now - 0.01 + 6.1 - 2.0


def test_an_exchange_never_ends_later_than_the_deadline_less_the_record_write():
    clock = FakeClock()
    budget = Budget(6.0, call_seconds=4.0, record_seconds=2.0, clock=clock)
    assert budget.exchange_end() == clock.now + 4.0  # a whole exchange fits
    clock.advance(1.5)  # e.g. the store was slow to answer begin
    assert budget.exchange_end() == clock.now - 1.5 + 6.0 - 2.0  # cut to leave the write time


def test_a_retry_is_not_started_when_the_wait_and_a_whole_call_do_not_fit():
    rig = Rig(DYPLS_MAX_ATTEMPTS="4", DYPLS_BACKOFF_BASE_MS="1000", DYPLS_BACKOFF_MAX_MS="1000")
    rig.transport.script = [Step(throttled(), takes=3) for _ in range(3)]
    # 9.5 s after the margin; a call needs 4 s + 0.05 s. After the first (3 s) and a wait of at
    # most 1 s, 5.5 s or more are left: one retry. After it, 3 s at most are left: no more.
    outcome = rig.bind(order(), timeout=10)
    assert outcome.status == 429
    assert len(rig.transport.sent) == 2


def test_a_wait_counts_against_the_time_left():
    budget = Budget(10.0, call_seconds=4.0, record_seconds=0.05, clock=FakeClock())
    assert budget.can_start_call(after=5.9)  # 4.1 s would be left: a call and its record fit
    assert not budget.can_start_call(after=6.0)  # 4.0 s would be left: they do not


def test_time_spent_earlier_in_the_invocation_stops_the_next_call():
    rig = Rig(DYPLS_CONNECT_TIMEOUT="1", DYPLS_READ_TIMEOUT="3", AXN_DEADLINE_MARGIN_MS="0")
    context = FcContext(function=FunctionMeta(timeout=10))  # type: ignore[arg-type]
    budget = rig.service.budget(context)
    rig.clock.advance(6.0)  # e.g. earlier records of a batch: 4 s are left, 4.05 s are needed
    outcome = rig.service.bind(order(), context=context, budget=budget, request_id="FC-1")
    assert (outcome.status, outcome.code) == (504, "DeadlineExceeded")
    assert "too little of the function's time was left" in outcome.body["Message"]
    assert rig.transport.sent == []


def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter_below_it():
    top = RetryPolicy(4, backoff_base=0.2, backoff_max=1.0, rand=lambda low, high: high)
    assert [top.delay(n, None) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.0]
    bottom = RetryPolicy(4, backoff_base=0.2, backoff_max=1.0, rand=lambda low, high: low)
    assert [bottom.delay(n, None) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]


def test_the_gateway_retry_hint_is_followed_and_capped():
    rig = Rig(DYPLS_MAX_ATTEMPTS="3", DYPLS_BACKOFF_MAX_MS="2000")
    rig.transport.script = [throttled(700), throttled(60_000)]
    assert rig.bind(order()).result == "bound"
    assert rig.clock.slept == [0.7, 2.0]  # the hint in ms, then capped by DYPLS_BACKOFF_MAX_MS


def test_failures_before_sending_are_retried_and_release_the_key():
    rig = Rig(DYPLS_MAX_ATTEMPTS="2")
    rig.transport.script = [REFUSED, REFUSED]
    outcome = rig.bind(order())
    assert (outcome.status, outcome.code) == (503, "UpstreamUnavailable")
    assert len(rig.transport.sent) == 2
    assert rig.record("DD-1") is None


# -- the lease (mutant: a 1 s lease) -----------------------------------------------------------


def test_a_duplicate_during_a_slow_call_is_told_to_wait_not_run():
    rig = Rig()
    seen = {}

    def duplicate_arrives():
        rig.clock.advance(2.5)  # well into the call
        seen["dup"] = rig.bind(order())

    rig.transport.script = [Step(ok(), takes=0.5, during=duplicate_arrives)]
    first = rig.bind(order())
    assert first.result == "bound"
    dup = seen["dup"]
    assert (dup.status, dup.code) == (409, "IdempotencyInProgress")
    assert 1 <= int(dup.headers["Retry-After"]) <= 4  # at most one exchange, not the lease
    assert len(rig.transport.sent) == 1


# -- defects (Why 4) ---------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_a_defect_after_the_key_was_taken_keeps_the_record_unknown():
    rig = Rig()

    def defect():
        raise Boom("broken after sending")

    rig.transport.script = [Step(ok(), during=defect)]
    outcome = rig.bind(order())
    assert (outcome.status, outcome.code, outcome.result) == (500, "InternalError", "failed")
    assert rig.record("DD-1").state is State.UNKNOWN  # not a leaked IN_PROGRESS lease
    assert rig.bind(order()).code == "OutcomeUnknown"


def test_an_interrupt_after_the_key_was_taken_keeps_the_record_unknown_and_goes_on():
    rig = Rig()

    def interrupt():
        raise KeyboardInterrupt

    rig.transport.script = [Step(ok(), during=interrupt)]
    with pytest.raises(KeyboardInterrupt):
        rig.bind(order())
    assert rig.record("DD-1").state is State.UNKNOWN


def test_an_expiration_that_overflows_is_a_validation_error():
    rig = Rig()
    outcome = rig.bind({"PhoneNoA": "13900000001", "Expiration": "9999-12-31T23:00:00-02:00"})
    assert (outcome.status, outcome.code) == (400, "InvalidParameter")
    assert outcome.body["Errors"][0]["Field"] == "Expiration"
    assert rig.transport.sent == []


# -- finishing (Why 7: results of complete and release) ----------------------------------------


def test_a_lost_lease_is_logged_with_the_record(caplog):
    rig = Rig()
    key = record_key("axn-bind", DEFAULT_POOL_KEY, IdempotencyKey("order", "DD-1"))
    rig.transport.script = [Step(ok(), during=lambda: rig.store.clear(key))]
    with caplog.at_level(logging.ERROR, logger="axn_bind"):
        outcome = rig.bind(order())
    assert outcome.result == "bound"  # the answer stands
    lost = [json.loads(r.getMessage()) for r in caplog.records if "record_lost" in r.getMessage()]
    assert len(lost) == 1 and lost[0]["record"] == key and lost[0]["record_as"] == "keep"


def test_a_failed_release_is_logged(caplog):
    rig = Rig(DYPLS_MAX_ATTEMPTS="1")
    key = record_key("axn-bind", DEFAULT_POOL_KEY, IdempotencyKey("order", "DD-1"))
    rig.transport.script = [Step(REFUSED, during=lambda: rig.store.clear(key))]
    with caplog.at_level(logging.ERROR, logger="axn_bind"):
        rig.bind(order())
    assert any('"record_as":"release"' in r.getMessage() for r in caplog.records)


# -- what is recorded --------------------------------------------------------------------------


def test_a_connection_dropped_after_sending_is_unknown_and_names_the_record_to_clear():
    rig = Rig()
    rig.transport.script = [DROPPED]
    assert rig.bind(order()).code == "UpstreamConnectionLost"
    refused = rig.bind(order())
    assert refused.code == "OutcomeUnknown"
    key = record_key("axn-bind", DEFAULT_POOL_KEY, IdempotencyKey("order", "DD-1"))
    assert key in refused.body["Message"] and "OutOrderId 'DD-1'" in refused.body["Message"]


def test_reexecute_binds_again_and_reports_the_possible_orphan():
    rig = Rig(AXN_UNKNOWN_OUTCOME="reexecute")
    rig.transport.script = [answer(200, {"Code": "isp.SYSTEM_ERROR", "RequestId": "R-ORPHAN"})]
    rig.bind(order())
    second = rig.bind(order())
    assert second.result == "bound"
    assert second.body["PossibleOrphanRequestId"] == "R-ORPHAN"
    assert len(rig.transport.sent) == 2


@pytest.mark.parametrize("lost", [DROPPED, NoAnswer("timed out", timed_out=True)])
def test_an_attempt_without_a_request_id_is_named_wherever_its_orphan_is_reported(lost, caplog):
    """No RequestId came back: the signature nonce and signing time name the attempt in its
    answer, in the record, in the refusal, in the re-execution's warning and in its answer."""
    rig = Rig()
    rig.transport.script = [lost]
    first = rig.bind(order())
    sent = rig.transport.sent[0]["headers"]
    attempt = f"{sent['x-acs-signature-nonce']}@{sent['x-acs-date']}"
    assert first.body["AttemptId"] == attempt
    assert attempt in rig.record("DD-1").response  # kept with the unknown outcome
    refused = rig.bind(order())
    assert refused.code == "OutcomeUnknown" and f"attempt {attempt}" in refused.body["Message"]

    rig.service.settings = Settings.from_env({**ENV, "AXN_UNKNOWN_OUTCOME": "reexecute"})
    with caplog.at_level(logging.WARNING, logger="axn_bind"):
        again = rig.bind(order())
    assert again.result == "bound"
    assert again.body["PossibleOrphanAttemptId"] == attempt
    [warning] = [
        json.loads(r.getMessage())
        for r in caplog.records
        if "possible_orphan_binding" in r.getMessage()
    ]
    assert warning["previous_attempt_id"] == attempt


def test_the_ttl_seconds_fingerprint_ignores_when_the_request_was_made():
    rig = Rig()
    assert rig.bind(order()).result == "bound"
    rig.clock.advance(5)
    from datetime import datetime, timedelta

    from axn_bind.models import SHANGHAI, build_request
    from axn_bind.service import fingerprint

    t0 = datetime(2030, 1, 1, tzinfo=SHANGHAI)
    early = build_request(order(), default_pool=DEFAULT_POOL_KEY, now=t0)
    late = build_request(order(), default_pool=DEFAULT_POOL_KEY, now=t0 + timedelta(seconds=5))
    assert early.expiration_text() != late.expiration_text()
    assert fingerprint(early) == fingerprint(late)
