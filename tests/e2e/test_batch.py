"""Batch semantics against the emulator. Each record is bound on its own. Permanent failures are
reported, transient ones make the handler raise once the whole batch has been processed. The
batch keeps to the function's time budget, and AXN_FIELD_MAP builds requests from foreign
messages."""

from __future__ import annotations

import base64
import json

import pytest

from axn_bind.errors import TransientFailureError
from tests.conftest import call as call_handler
from tests.conftest import post
from tests.e2e.conftest import bind_calls
from tests.privacy import MOBILE as PHONE  # a mobile number, never digits inside a hash
from tools.dypls_emulator import DEFAULT_POOL_KEY
from tools.fc_local import FcContext, FunctionMeta

pytestmark = pytest.mark.usefixtures("env")


def req(n: int, **extra) -> dict:
    return {"PhoneNoA": f"139000000{n:02d}", "TtlSeconds": 3600, **extra}


def text(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def b64(value) -> str:
    return base64.b64encode(text(value).encode()).decode()


def mns_batch(*bodies) -> list[dict]:
    """An EventBridge MNS queue batch; message i has messageId M<i>."""
    return [
        {
            "specversion": "1.0",
            "id": f"ce-{i}",
            "source": "MNS-axn-bind",
            "type": "mns:Queue:SendMessage",
            "data": {"messageId": f"M{i}", "messageBody": body},
        }
        for i, body in enumerate(bodies)
    ]


def kafka_batch(*values) -> list[dict]:
    return [
        {
            "specversion": "1.0",
            "id": f"k-{i}",
            "source": "acs:alikafka",
            "type": "alikafka:Topic:Message",
            "data": {"topic": "orders", "partition": 0, "offset": i, "value": value},
        }
        for i, value in enumerate(values)
    ]


def call(event, context: FcContext | None = None):
    """The handler with ``event`` as FC would deliver it: JSON values become their bytes."""
    if not isinstance(event, bytes):
        event = json.dumps(event, ensure_ascii=False).encode()
    return call_handler(event, context)


def results(report: dict) -> list[tuple[str | None, str, str]]:
    return [(r["Id"], r["Result"], r["Code"]) for r in report["Records"]]


def bound_phones(emulator) -> list[str]:
    return sorted(str(b["PhoneNoA"]) for b in emulator.bindings())


def raised(event, context: FcContext | None = None) -> str:
    with pytest.raises(TransientFailureError) as info:
        call(event, context)
    message = str(info.value)
    assert not PHONE.search(message), message  # never a phone number in what FC logs
    return message


# --- mixed batches and the raise / no-raise rule -------------------------------------------------


def test_mixed_batch_binds_good_records_and_reports_the_bad_ones_without_raising(emulator):
    event = mns_batch(
        text(req(1)),
        text({"TtlSeconds": 3600}),  # no PhoneNoA
        text(req(3, PoolKey="FC199999999999999")),  # isv.POOLKEY_NOT_EXISTS from Dyplsapi
        "TEST",  # neither JSON nor Base64 of JSON
        b64(req(5)),
        text(req(6) | {"PhoneNoA": "12345"}),
        text(req(7) | {"PhoneNob": "13900000099"}),  # a misspelt field
    )
    report = call(event)
    assert results(report) == [
        ("mns:M0", "bound", "OK"),
        ("mns:M1", "rejected", "InvalidParameter"),
        ("mns:M2", "rejected", "isv.POOLKEY_NOT_EXISTS"),
        ("mns:M3", "rejected", "MalformedRequest"),
        ("mns:M4", "bound", "OK"),
        ("mns:M5", "rejected", "InvalidParameter"),
        ("mns:M6", "rejected", "InvalidParameter"),
    ]
    assert report["Code"] == "PartialFailure"
    assert report["Message"] == "7 record(s): 2 bound, 5 rejected, 0 failed"
    assert report["Source"] == "cloudevents"
    assert bound_phones(emulator) == ["13900000001", "13900000005"]
    by_subs = {b["SubsId"]: b for b in emulator.bindings()}
    for record in report["Records"]:
        if record["Result"] == "bound":
            dto = record["SecretBindDTO"]
            assert by_subs[dto["SubsId"]]["SecretNo"] == dto["SecretNo"]
            assert record["RequestId"]  # Dyplsapi's own request id is kept
        else:
            assert "SecretBindDTO" not in record
            assert record["Message"]
    errors = {r["Id"]: r.get("Errors") for r in report["Records"]}
    assert [e["Field"] for e in errors["mns:M1"]] == ["PhoneNoA"]
    assert [e["Field"] for e in errors["mns:M5"]] == ["PhoneNoA"]
    assert [e["Field"] for e in errors["mns:M6"]] == ["PhoneNob"]
    assert len(bind_calls(emulator)) == 3  # invalid records never reached Dyplsapi


@pytest.mark.parametrize("code", ["isv.BIND_CONFLICT", "isv.MOBILE_NUMBER_ILLEGAL"])
def test_permanent_upstream_codes_are_reported_not_raised(emulator, code):
    emulator.add_fault("business", code=code)
    report = call(mns_batch(text(req(1)), text(req(2))))
    assert results(report) == [("mns:M0", "rejected", code), ("mns:M1", "bound", "OK")]
    assert bound_phones(emulator) == ["13900000002"]


def test_an_empty_pool_asks_for_redelivery_and_the_redelivery_binds(emulator):
    emulator.add_fault("business", code="isv.NO_AVAILABLE_NUMBER")
    event = mns_batch(text(req(1)), text(req(2)))
    message = raised(event)
    assert "1 of 2 record(s) need redelivery: mns:M0 (isv.NO_AVAILABLE_NUMBER)" in message
    report = call(event)  # the platform redelivers: M0 binds now, M1 is replayed
    assert [(r["Id"], r["Result"], r.get("Replayed")) for r in report["Records"]] == [
        ("mns:M0", "bound", None),
        ("mns:M1", "bound", True),
    ]
    assert bound_phones(emulator) == ["13900000001", "13900000002"]


def test_a_batch_where_everything_is_rejected_still_returns(emulator):
    report = call(mns_batch("TEST", text({}), text(req(3, PoolKey="FC199999999999999"))))
    assert [r["Result"] for r in report["Records"]] == ["rejected"] * 3
    assert report["Message"] == "3 record(s): 0 bound, 3 rejected, 0 failed"
    assert not emulator.bindings()


def test_unknown_outcome_raises_after_the_rest_of_the_batch_is_bound(emulator):
    emulator.add_fault("isp_error")  # the first call made: the record M1
    message = raised(mns_batch(text({}), text(req(1)), text(req(2)), b64(req(3)), "TEST"))
    assert "1 of 5 record(s) need redelivery" in message
    assert "mns:M1 (isp.SYSTEM_ERROR)" in message
    assert "2 bound, 2 rejected for good" in message
    for other in ("mns:M0", "mns:M2", "mns:M3", "mns:M4"):
        assert other not in message
    assert bound_phones(emulator) == ["13900000002", "13900000003"]
    assert len(bind_calls(emulator)) == 3  # isp.* is never retried within the invocation


def test_still_throttled_after_the_allowed_attempts_raises(env, emulator):
    env(DYPLS_MAX_ATTEMPTS="2")
    emulator.add_fault("throttle", count=3)  # M0: 2 attempts throttled; M1: 1 throttled, 1 OK
    message = raised(kafka_batch(req(1), req(2)))
    assert "kafka:orders/0/0 (Throttling.User)" in message
    assert "kafka:orders/0/1" not in message
    assert bound_phones(emulator) == ["13900000002"]
    assert len(bind_calls(emulator)) == 4
    assert emulator.faults() == []


def test_dropped_connection_after_sending_is_transient_even_though_it_bound(emulator):
    emulator.add_fault("bind_then_drop")
    message = raised(mns_batch(text(req(1)), text(req(2))))
    assert "mns:M0 (UpstreamConnectionLost)" in message
    # the binding exists: exactly why it is "unknown outcome", not "rejected"
    assert bound_phones(emulator) == ["13900000001", "13900000002"]


def test_direct_batch_records_are_named_by_index(emulator):
    emulator.add_fault("http_5xx", status=503)
    message = raised([req(1), req(2), {"TtlSeconds": 60}])
    assert "1 of 3 record(s) need redelivery: #0 (ServiceUnavailable)" in message
    assert bound_phones(emulator) == ["13900000002"]


def test_several_transient_records_are_all_listed(emulator):
    emulator.add_fault("isp_error", count=2)
    message = raised(mns_batch(text(req(1)), text(req(2)), text(req(3))))
    assert "2 of 3 record(s) need redelivery: mns:M0 (isp.SYSTEM_ERROR), mns:M1 (isp." in message
    assert bound_phones(emulator) == ["13900000003"]


def test_only_batches_raise_direct_and_http_answer_the_failure(emulator):
    emulator.add_fault("isp_error", count=2)
    direct = call(req(1))
    assert direct["Code"] == "isp.SYSTEM_ERROR"
    status, _, body = post(req(2))
    assert (status, body["Code"]) == (502, "isp.SYSTEM_ERROR")
    assert not emulator.bindings()


def test_an_asynchronous_direct_invocation_raises_for_a_transient_failure_only(env, emulator):
    """AXN_DIRECT_INVOCATION=async: FC retries an asynchronous invocation only when it fails."""
    env(AXN_DIRECT_INVOCATION="async")
    emulator.add_fault("throttle", count=10)  # still throttled after every allowed attempt
    with pytest.raises(TransientFailureError) as raised:
        call(req(1))
    assert "Throttling.User" in str(raised.value) and "redelivery requested" in str(raised.value)
    assert not PHONE.search(str(raised.value))
    emulator.clear_faults()
    assert call(req(1))["Code"] == "OK"  # the retry binds
    emulator.add_fault("business", code="isv.MOBILE_NUMBER_ILLEGAL")
    assert call(req(2))["Code"] == "isv.MOBILE_NUMBER_ILLEGAL"  # permanent: answered, not raised
    http_status, _, _ = post(req(3))
    assert http_status == 200  # HTTP callers are answered whatever the setting


def test_a_defect_in_one_record_spares_the_others_and_the_batch_is_redelivered(
    emulator, monkeypatch
):
    """Record 2 of 4 binds upstream, then a defect: 3 and 4 are still bound, 2 is kept as an
    unknown outcome (never bound again), and the batch raises so that nothing is lost."""
    from axn_bind.service import BindService

    real_call = BindService._call
    calls = []

    def defect_on_second(self, *args, **kwargs):
        outcome = real_call(self, *args, **kwargs)
        calls.append(outcome.code)
        if len(calls) == 2:
            raise RuntimeError("defect after the upstream call")
        return outcome

    monkeypatch.setattr(BindService, "_call", defect_on_second)
    batch = mns_batch(*(text(req(n)) for n in range(1, 5)))
    message = raised(batch)
    assert "1 of 4 record(s) need redelivery: mns:M1 (InternalError)" in message
    assert bound_phones(emulator) == ["13900000001", "13900000002", "13900000003", "13900000004"]
    message = raised(batch)  # the redelivery: 1, 3, 4 replayed; 2 refused, never bound again
    assert "mns:M1 (OutcomeUnknown)" in message
    assert len(emulator.bindings()) == 4


def test_a_defect_while_reporting_a_batch_asks_for_redelivery(emulator, monkeypatch):
    from axn_bind import app

    real_report, broken = app.batch_report, [True]

    def report_once_broken(*args, **kwargs):
        if broken.pop() if broken else False:
            raise RuntimeError("defect in the report")
        return real_report(*args, **kwargs)

    monkeypatch.setattr(app, "batch_report", report_once_broken)
    message = raised(mns_batch(text(req(1))))
    assert "could not be reported (RuntimeError)" in message
    report = call(mns_batch(text(req(1))))  # redelivered: replayed, not bound again
    assert report["Records"][0]["Replayed"] is True
    assert len(emulator.bindings()) == 1


def test_a_configuration_problem_makes_the_batch_raise_without_calling(env, emulator):
    env(AXN_FIELD_MAP="{not json")
    message = raised(mns_batch(text(req(1)), text(req(2))))
    assert "2 record(s) not processed" in message
    assert "AXN_FIELD_MAP" in message
    assert not emulator.requests()


def test_missing_credentials_make_every_record_transient(env, emulator):
    env(ALIBABA_CLOUD_ACCESS_KEY_ID=None, ALIBABA_CLOUD_ACCESS_KEY_SECRET=None)
    message = raised(mns_batch(text(req(1)), "TEST"))
    assert "1 of 2 record(s) need redelivery: mns:M0 (MissingCredentials)" in message
    assert "1 rejected for good" in message
    assert not emulator.requests()


# --- the time budget --------------------------------------------------------------------------------


def short_function(timeout: float) -> FcContext:
    return FcContext(function=FunctionMeta(timeout=timeout))  # type: ignore[arg-type]


@pytest.fixture
def tight(env):
    """A call may take up to 1.7 s (connect 0.2 + read 1.5); it starts only while that and the
    store write (0.05 s in memory) fit in what is left; 0.2 s is kept in reserve."""
    env(DYPLS_CONNECT_TIMEOUT="0.2", DYPLS_READ_TIMEOUT="1.5", AXN_DEADLINE_MARGIN_MS="200")


@pytest.mark.usefixtures("tight")
def test_with_time_enough_every_record_is_bound(emulator):
    report = call(mns_batch(text(req(1)), text(req(2)), text(req(3))), short_function(2))
    assert [r["Result"] for r in report["Records"]] == ["bound"] * 3


@pytest.mark.usefixtures("tight")
def test_records_left_without_time_are_not_attempted_and_the_batch_raises(emulator):
    emulator.add_fault("delay", seconds=1.0)  # after M0, < 0.8 s are left: less than a call needs
    message = raised(mns_batch(text(req(1)), text(req(2)), text(req(3))), short_function(2))
    assert "2 of 3 record(s) need redelivery" in message
    assert "mns:M1 (NotAttempted), mns:M2 (NotAttempted)" in message
    assert "1 bound" in message
    assert bound_phones(emulator) == ["13900000001"]
    assert len(bind_calls(emulator)) == 1


@pytest.mark.usefixtures("tight")
def test_records_rejected_before_any_call_are_still_reported_when_time_runs_out(emulator):
    emulator.add_fault("delay", seconds=1.0)
    message = raised(mns_batch(text(req(1)), "TEST", text(req(3))), short_function(2))
    assert "1 of 3 record(s) need redelivery: mns:M2 (NotAttempted)" in message
    assert "1 rejected for good" in message


def test_a_call_that_could_outlive_the_function_is_not_started(env, emulator):
    # A 10 s read cannot finish in a 1.5 s function: cut short it would be an unknown outcome
    # (a binding may exist), so nothing is sent and the key stays free for the redelivery.
    env(DYPLS_READ_TIMEOUT="10", AXN_DEADLINE_MARGIN_MS="300")
    message = raised(mns_batch(text(req(1)), text(req(2))), short_function(1.5))
    assert "mns:M0 (DeadlineExceeded), mns:M1 (NotAttempted)" in message
    assert not emulator.requests()
    report = call(mns_batch(text(req(1)), text(req(2))), short_function(30))  # the redelivery
    assert [r["Result"] for r in report["Records"]] == ["bound"] * 2
    assert bound_phones(emulator) == ["13900000001", "13900000002"]


def test_default_timeouts_need_a_function_timeout_that_fits_one_call(emulator):
    # Defaults: connect 5 s + read 10 s, plus the store write: a 3 s function cannot fit them,
    # and the answer names the settings to change.
    message = raised(mns_batch(text(req(1))), short_function(3))
    assert "mns:M0 (DeadlineExceeded)" in message
    svc_message = call({"PoolKey": DEFAULT_POOL_KEY, **req(1)}, short_function(3))["Message"]
    for setting in ("DYPLS_CONNECT_TIMEOUT", "DYPLS_READ_TIMEOUT", "AXN_DEADLINE_MARGIN_MS"):
        assert setting in svc_message
    assert not emulator.requests()
    report = call(mns_batch(text(req(1)), text(req(2)), text(req(3))), short_function(20))
    assert [r["Result"] for r in report["Records"]] == ["bound"] * 3


# --- AXN_FIELD_MAP ----------------------------------------------------------------------------------

ORDER_MAP = {
    "PhoneNoA": "$.customer.phone",
    "PhoneNoB": "$.riders.0.phone",
    "OutOrderId": "$.orderId",
    "TtlSeconds": 3600,
    "ExpectCity": "上海",
}


def order(n: int, **extra) -> dict:
    return {
        "orderId": f"DD{n:04d}",
        "status": "RIDER_ASSIGNED",
        "customer": {"name": "张三", "phone": f"139000000{n:02d}"},
        "riders": [{"id": "R7", "phone": "13900000099"}],
        "amount": {"total": 3550, "currency": "CNY"},
        **extra,
    }


def test_field_map_builds_requests_from_order_messages(env, emulator):
    env(AXN_FIELD_MAP=json.dumps(ORDER_MAP, ensure_ascii=False))
    report = call(kafka_batch(order(1), text(order(2)), b64(order(3))))
    assert [r["Result"] for r in report["Records"]] == ["bound"] * 3, report
    made = sorted(emulator.bindings(), key=lambda x: str(x["PhoneNoA"]))
    assert [(m["PhoneNoA"], m["PhoneNoB"], m["OutOrderId"], m["City"]) for m in made] == [
        (f"139000000{n:02d}", "13900000099", f"DD{n:04d}", "上海") for n in (1, 2, 3)
    ]


def test_field_map_missing_path_names_the_path_and_spares_the_others(env, emulator):
    env(AXN_FIELD_MAP=json.dumps(ORDER_MAP, ensure_ascii=False))
    no_phone = order(2)
    del no_phone["customer"]["phone"]
    bad_phone = order(3)
    bad_phone["customer"]["phone"] = "not-a-number"
    report = call(mns_batch(text(order(1)), text(no_phone), text(bad_phone)))
    assert results(report) == [
        ("mns:M0", "bound", "OK"),
        ("mns:M1", "rejected", "InvalidParameter"),
        ("mns:M2", "rejected", "InvalidParameter"),
    ]
    for record in report["Records"][1:]:
        [error] = record["Errors"]
        assert error["Field"] == "PhoneNoA"
        assert "$.customer.phone" in error["Message"]
        assert "$.customer.phone" in record["Message"]
    assert bound_phones(emulator) == ["13900000001"]


def test_field_map_reads_only_mapped_fields_from_event_messages(env, emulator):
    env(AXN_FIELD_MAP=json.dumps(ORDER_MAP, ensure_ascii=False))
    report = call(mns_batch(text(req(1))))  # a plain bind request is not an order
    [record] = report["Records"]
    assert record["Result"] == "rejected"
    assert "$.customer.phone" in record["Message"]
    assert not emulator.requests()


def test_field_map_constants_apply_and_list_paths_may_be_missing(env, emulator):
    mapping = {"PhoneNoA": "$.customer.phone", "PhoneNoB": "$.riders.0.phone", "TtlSeconds": 600}
    env(AXN_FIELD_MAP=json.dumps({**mapping, "PoolKey": "FC199999999999999"}))
    report = call(kafka_batch(order(1)))
    assert results(report) == [("kafka:orders/0/0", "rejected", "isv.POOLKEY_NOT_EXISTS")]

    env(AXN_FIELD_MAP=json.dumps({**mapping, "PoolKey": DEFAULT_POOL_KEY}))
    report = call(kafka_batch(order(2, riders=[])))  # no rider yet: PhoneNoB stays out
    assert [r["Result"] for r in report["Records"]] == ["bound"]
    [made] = emulator.bindings()
    assert (made["PhoneNoA"], made["PhoneNoB"]) == ("13900000002", "")


def test_field_map_never_applies_to_http_direct_or_direct_batch(env, emulator):
    env(AXN_FIELD_MAP=json.dumps(ORDER_MAP, ensure_ascii=False))
    status, _, body = post(req(1))
    assert status == 200, body
    assert call(req(2))["Code"] == "OK"
    report = call([req(3), req(4)])
    assert [r["Result"] for r in report["Records"]] == ["bound", "bound"]
    assert bound_phones(emulator) == [f"139000000{n:02d}" for n in (1, 2, 3, 4)]


def test_field_map_with_an_unknown_target_is_a_configuration_error(env, emulator):
    env(AXN_FIELD_MAP=json.dumps({"PhoneNumber": "$.customer.phone"}))
    message = raised(kafka_batch(order(1)))
    assert "AXN_FIELD_MAP" in message
    assert "PhoneNumber" in message
    assert not emulator.requests()


def test_field_map_accepts_numeric_message_values_for_string_fields(env, emulator):
    env(AXN_FIELD_MAP=json.dumps(ORDER_MAP, ensure_ascii=False))
    report = call(kafka_batch(order(1, orderId=20240501000071)))
    assert [r["Result"] for r in report["Records"]] == ["bound"], report
    assert emulator.bindings()[0]["OutOrderId"] == "20240501000071"


# --- MNS topic STREAM raw body ----------------------------------------------------------------------


def test_raw_mns_topic_stream_body_with_a_transient_failure_is_redelivered(emulator):
    emulator.add_fault("isp_error")
    raised(b64(req(1)).encode())
