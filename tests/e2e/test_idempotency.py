"""Exactly one binding per key, end to end: handler → idempotency store → emulator.

Run against both stores (in-memory, and the real Redis at AXN_TEST_REDIS_URL).
"""

from __future__ import annotations

import json
import logging
import threading

import pytest

from tests.conftest import call, post
from tests.e2e.conftest import bind_count
from tools.dypls_emulator import DEFAULT_POOL_KEY
from tools.fc_local import http_event

REQ = {"PhoneNoA": "13900000001", "TtlSeconds": 3600}


def raw_post(body, headers=None):
    return call(http_event("POST", body, headers=headers or {}))


def test_same_key_is_bound_once_and_replayed_byte_for_byte(store, emulator):
    first = raw_post(REQ, {"Idempotency-Key": "k-1"})
    second = raw_post(REQ, {"idempotency-key": "k-1"})
    assert first["statusCode"] == second["statusCode"] == 200
    assert second["body"] == first["body"]
    assert second["headers"]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first["headers"]
    assert bind_count(emulator) == 1
    assert len(emulator.bindings()) == 1


def test_out_order_id_is_the_key_without_a_header(store, emulator):
    req = {**REQ, "OutOrderId": "DD-1"}
    a = post(req)
    b = post(req)
    assert a[2] == b[2]
    assert b[1]["Idempotent-Replayed"] == "true"
    assert bind_count(emulator) == 1


def test_requests_without_any_key_are_not_deduplicated(store, emulator):
    post(REQ)
    post({**REQ, "PhoneNoA": "13900000002"})
    assert bind_count(emulator) == 2


def test_ttl_seconds_is_fingerprinted_as_given(store, emulator):
    req = {**REQ, "OutOrderId": "DD-ttl"}
    post(req)
    status, headers, _ = post(req)  # Expiration computed again, one second later: same request
    assert status == 200
    assert headers["Idempotent-Replayed"] == "true"


def test_same_key_with_different_data_is_refused(store, emulator):
    post(REQ, headers={"Idempotency-Key": "k-2"})
    status, _, body = post({**REQ, "PhoneNoA": "13900000009"}, headers={"Idempotency-Key": "k-2"})
    assert (status, body["Code"]) == (409, "IdempotencyKeyReused")
    assert bind_count(emulator) == 1


def test_a_reused_key_is_named_by_what_the_caller_sent(store, emulator):
    """The 409 names the header, the OutOrderId or the message: never a key the caller did
    not send."""
    post(REQ, headers={"Idempotency-Key": "k-named"})
    _, _, body = post({**REQ, "PhoneNoA": "13900000009"}, headers={"Idempotency-Key": "k-named"})
    assert body["Message"].startswith("This Idempotency-Key was already used")
    order = {**REQ, "OutOrderId": "DD-named"}
    post(order)
    _, _, body = post({**order, "PhoneNoA": "13900000009"})
    assert body["Message"].startswith(
        "OutOrderId 'DD-named' (in this pool) is already bound with other data"
    )
    call(mns_batch("13900000031"))
    [record] = call(mns_batch("13900000032"))["Records"]
    assert record["Message"].startswith("This message (its identity) was already used")
    assert "idempotency key" not in " ".join([body["Message"], record["Message"]]).lower()


def test_different_pools_do_not_share_keys(store, emulator):
    from tools.dypls_emulator import STRICT_POOL_KEY

    post({**REQ, "OutOrderId": "DD-pool"})
    status, headers, _ = post({**REQ, "OutOrderId": "DD-pool", "PoolKey": STRICT_POOL_KEY})
    assert status == 200
    assert "Idempotent-Replayed" not in headers
    assert bind_count(emulator) == 2


def test_permanent_upstream_error_is_recorded_and_replayed(store, emulator):
    emulator.add_fault("business", code="isv.NO_NOT_EXIST", message="no such number")
    first = raw_post(REQ, {"Idempotency-Key": "k-3"})
    second = raw_post(REQ, {"Idempotency-Key": "k-3"})
    assert first["statusCode"] == second["statusCode"] == 400
    assert second["body"] == first["body"]
    assert bind_count(emulator) == 1


def test_transient_failure_that_reached_nobody_releases_the_key(store, emulator, env):
    env(DYPLS_MAX_ATTEMPTS="2")
    emulator.add_fault("throttle", count=2)
    status, _, _ = post(REQ, headers={"Idempotency-Key": "k-4"})
    assert status == 429
    status, headers, _ = post(REQ, headers={"Idempotency-Key": "k-4"})
    assert status == 200
    assert "Idempotent-Replayed" not in headers
    assert len(emulator.bindings()) == 1


def test_unknown_outcome_is_refused_by_default(store, emulator):
    emulator.add_fault("bind_then_drop")
    status, _, first = post(REQ, headers={"Idempotency-Key": "k-5r"})
    assert (status, first["Code"]) == (502, "UpstreamConnectionLost")
    status, _, second = post(REQ, headers={"Idempotency-Key": "k-5r"})
    assert (status, second["Code"]) == (409, "OutcomeUnknown")
    assert "this Idempotency-Key" in second["Message"]
    assert "axn:idem:" in second["Message"]  # the record, as tools.idem --record takes it
    assert len(emulator.bindings()) == 1  # never a second binding without an operator


def test_unknown_outcome_is_re_executed_when_configured_and_reported(store, emulator, env, caplog):
    env(AXN_UNKNOWN_OUTCOME="reexecute", AXN_IDEMPOTENCY_URL=store)
    emulator.add_fault("bind_then_drop")
    status, _, first = post(REQ, headers={"Idempotency-Key": "k-5"})
    assert (status, first["Code"]) == (502, "UpstreamConnectionLost")
    with caplog.at_level(logging.WARNING, logger="axn_bind"):
        status, _, second = post(REQ, headers={"Idempotency-Key": "k-5"})
    assert status == 200
    assert "PossibleOrphanRequestId" in second
    assert len(emulator.bindings()) == 2  # the documented cost of availability first
    warnings = [
        r.getMessage() for r in caplog.records if "possible_orphan_binding" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert '"previous_state":"UNKNOWN"' in warnings[0]
    # The re-executed answer is now the record: a third call replays it.
    status, headers, third = post(REQ, headers={"Idempotency-Key": "k-5"})
    assert headers["Idempotent-Replayed"] == "true"
    assert third == second
    assert len(emulator.bindings()) == 2


def test_unknown_outcome_is_refused_until_cleared_when_configured(store, emulator, env):
    env(AXN_UNKNOWN_OUTCOME="refuse", AXN_IDEMPOTENCY_URL=store)
    emulator.add_fault("isp_error", bind=True)
    status, _, first = post({**REQ, "OutOrderId": "DD-u"})
    assert (status, first["Code"]) == (502, "isp.SYSTEM_ERROR")
    status, _, second = post({**REQ, "OutOrderId": "DD-u"})
    assert (status, second["Code"]) == (409, "OutcomeUnknown")
    assert first["RequestId"] in second["Message"]
    assert bind_count(emulator) == 1
    if store.startswith("redis"):  # an operator clears the key with the CLI
        from tools.idem import main as idem

        assert (
            idem(["--url", store, "--pool", DEFAULT_POOL_KEY, "--order-id", "DD-u", "clear"]) == 0
        )
        status, _, third = post({**REQ, "OutOrderId": "DD-u"})
        assert (status, third["Code"]) == (200, "OK")
        assert bind_count(emulator) == 2


def test_a_duplicate_while_in_progress_gets_409_with_retry_after(store, emulator):
    emulator.add_fault("delay", seconds=1.0)
    results = {}

    def first():
        results["first"] = post(REQ, headers={"Idempotency-Key": "k-6"})

    thread = threading.Thread(target=first)
    thread.start()
    for _ in range(100):  # wait until the first call holds the key
        if emulator.requests() or emulator.faults() == []:
            break
        threading.Event().wait(0.01)
    status, headers, body = post(REQ, headers={"Idempotency-Key": "k-6"})
    thread.join()
    assert (status, body["Code"]) == (409, "IdempotencyInProgress")
    assert int(headers["Retry-After"]) >= 1
    assert results["first"][0] == 200
    assert bind_count(emulator) == 1


def test_key_reuse_is_refused_while_in_progress_and_after_unknown(store, emulator):
    emulator.add_fault("bind_then_drop")
    post(REQ, headers={"Idempotency-Key": "k-7"})  # UNKNOWN now
    status, _, body = post({**REQ, "PhoneNoA": "13900000007"}, headers={"Idempotency-Key": "k-7"})
    assert (status, body["Code"]) == (409, "IdempotencyKeyReused")
    assert bind_count(emulator) == 1


def test_store_outage_fails_closed(env, emulator):
    env(AXN_IDEMPOTENCY_URL="redis://:s3cret@127.0.0.1:1/0")
    status, _, body = post({**REQ, "OutOrderId": "DD-o"})
    assert (status, body["Code"]) == (503, "IdempotencyStoreUnavailable")
    assert "s3cret" not in json.dumps(body)
    assert bind_count(emulator) == 0


def test_bad_idempotency_key_is_400(store, emulator):
    status, _, body = post(REQ, headers={"Idempotency-Key": "x" * 300})
    assert (status, body["Code"]) == (400, "InvalidParameter")
    assert body["Errors"][0]["Field"] == "Idempotency-Key"
    assert bind_count(emulator) == 0


def test_bad_store_url_is_a_configuration_error(env):
    env(AXN_IDEMPOTENCY_URL="mysql://user:pw@host/db")
    status, _, body = post(REQ)
    assert status == 500
    assert "AXN_IDEMPOTENCY_URL" in body["Message"]
    assert "pw@" not in body["Message"]


# --- events --------------------------------------------------------------------------------


def mns_batch(*phones: str) -> list[dict]:
    return [
        {
            "specversion": "1.0",
            "id": f"ce-{i}",
            "source": "MNS-axn",
            "type": "mns:Queue:SendMessage",
            "data": {
                "messageId": f"M{i}",
                "messageBody": json.dumps({"PhoneNoA": p, "TtlSeconds": 3600}),
            },
        }
        for i, p in enumerate(phones)
    ]


def test_redelivered_batch_replays_what_was_bound(store, emulator, env):
    from axn_bind.errors import TransientFailureError

    env(DYPLS_MAX_ATTEMPTS="1", AXN_IDEMPOTENCY_URL=store)
    batch = mns_batch("13900000011", "13900000012", "13900000013")
    emulator.add_fault("throttle")  # record 0 is throttled: the batch raises to be redelivered
    with pytest.raises(TransientFailureError, match=r"mns:M0 \(Throttling.User\)"):
        call(batch)
    assert sorted(b["PhoneNoA"] for b in emulator.bindings()) == ["13900000012", "13900000013"]
    report = call(batch)  # the redelivery
    assert [r["Result"] for r in report["Records"]] == ["bound"] * 3
    assert [r.get("Replayed", False) for r in report["Records"]] == [False, True, True]
    assert len(emulator.bindings()) == 3
    assert bind_count(emulator) == 4


def test_same_message_id_with_different_data_is_a_rejected_record(store, emulator):
    call(mns_batch("13900000021"))
    report = call(mns_batch("13900000022"))  # same message id M0, other content
    [record] = report["Records"]
    assert (record["Result"], record["Code"]) == ("rejected", "IdempotencyKeyReused")
    assert len(emulator.bindings()) == 1


def test_batch_records_without_any_key_are_not_bound_twice_on_redelivery(store, emulator, env):
    from axn_bind.errors import TransientFailureError

    env(DYPLS_MAX_ATTEMPTS="1", AXN_IDEMPOTENCY_URL=store, AXN_UNKNOWN_OUTCOME="reexecute")
    batch = [
        {"PhoneNoA": "13900000031", "TtlSeconds": 3600},  # no OutOrderId, no message identity
        {"PhoneNoA": "13900000032", "TtlSeconds": 3600},
    ]
    emulator.add_fault("bind_then_drop")  # record 0: unknown outcome (a binding exists)
    emulator.add_fault("throttle")  # record 1: throttled; the batch raises for a redelivery
    with pytest.raises(TransientFailureError):
        call(batch)
    report = call(batch)  # the redelivery
    assert [r["Result"] for r in report["Records"]] == ["bound", "bound"]
    assert "PossibleOrphanRequestId" in report["Records"][0]  # the documented re-execution
    again = call(batch)  # a second redelivery binds nothing more
    assert [r.get("Replayed") for r in again["Records"]] == [True, True]
    phones = sorted(b["PhoneNoA"] for b in emulator.bindings())
    assert phones == ["13900000031", "13900000031", "13900000032"]


def test_a_single_direct_call_without_a_key_is_not_deduplicated(store, emulator):
    call(REQ)
    call(REQ)
    assert bind_count(emulator) == 2


def test_key_reuse_is_refused_while_the_first_call_is_in_progress(store, emulator):
    emulator.add_fault("delay", seconds=1.0)
    results = {}
    thread = threading.Thread(
        target=lambda: results.update(first=post(REQ, headers={"Idempotency-Key": "k-8"}))
    )
    thread.start()
    for _ in range(200):  # until the emulator has taken the delayed call (the key is held)
        if not emulator.faults():
            break
        threading.Event().wait(0.01)
    other = {**REQ, "PhoneNoA": "13900000008"}
    status, _, body = post(other, headers={"Idempotency-Key": "k-8"})
    thread.join()
    assert (status, body["Code"]) == (409, "IdempotencyKeyReused")
    assert results["first"][0] == 200
    assert bind_count(emulator) == 1


@pytest.mark.redis
def test_a_key_less_batch_record_left_unknown_is_cleared_by_the_record_its_log_names(
    redis_url, env, emulator, caplog
):
    """A direct batch record has no key of its own (it is keyed by its content); the operator
    finds its record in the bind log line and clears it, and the redelivery binds it."""
    import re

    from axn_bind.errors import TransientFailureError
    from tools.idem import main as idem

    env(AXN_IDEMPOTENCY_URL=redis_url)
    batch = [{"PhoneNoA": "13900000041", "TtlSeconds": 3600}]
    emulator.add_fault("isp_error", bind=True)
    with caplog.at_level(logging.INFO, logger="axn_bind"):
        with pytest.raises(TransientFailureError):
            call(batch)
        with pytest.raises(TransientFailureError) as refused:
            call(batch)  # redelivered: refused, not bound again
    assert "OutcomeUnknown" in str(refused.value)
    assert len(emulator.bindings()) == 1
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if '"event":"bind"' in r.getMessage()
    ]
    assert [line["code"] for line in lines] == ["isp.SYSTEM_ERROR", "OutcomeUnknown"]
    assert lines[0]["record"] == lines[1]["record"]
    record = lines[1]["record"]
    assert re.fullmatch(r"axn:idem:[0-9a-f]{64}", record), record
    assert idem(["--url", redis_url, "--record", record, "clear"]) == 0
    report = call(batch)  # after the operator's check: bound now
    assert report["Records"][0]["Result"] == "bound"
    assert len(emulator.bindings()) == 2
