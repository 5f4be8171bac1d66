"""Log lines: one JSON object each, phone numbers masked, identifiers an operator needs kept."""

from __future__ import annotations

import json
import logging

import pytest

from axn_bind.log import log, scrub


def test_record_keys_are_logged_whole_and_phone_numbers_never(caplog):
    """A record's key is a hash whose digits can look like a phone number: it is logged as it
    is, so that an operator can clear it; anything else shaped like a number is masked."""
    record = "axn:idem:c1a7122bba4dcf08e2868969bbe2752973b62b9ab0740008491e6fd6769901fe"
    with caplog.at_level(logging.INFO, logger="axn_bind"):
        log("bind", record=record, note="call 13912345678", other=record.replace("axn:", "x:"))
        log("bind", record="axn:idem:13912345678")  # not a record key: scrubbed like the rest
    first, second = (json.loads(r.getMessage()) for r in caplog.records)
    assert first["record"] == record
    assert first["note"] == "call 139****5678"
    assert "0740008491" not in first["other"]  # the same digits in any other field are masked
    assert second["record"] == "axn:idem:139****5678"


def test_a_defect_message_loses_any_url_query(caplog):
    from axn_bind.service import log_defect

    error = RuntimeError(
        "boom at https://dyplsapi.aliyuncs.com/?SecurityToken=tok%2Bsecret&PhoneNoA=13912345678 x"
    )
    with caplog.at_level(logging.ERROR, logger="axn_bind"):
        log_defect(error, "test")
    line = json.loads(caplog.records[-1].getMessage())
    assert line["error"] == "boom at https://dyplsapi.aliyuncs.com/?… x"
    assert "tok" not in caplog.text and "13912345678" not in caplog.text


def test_bind_lines_carry_the_fields_sls_charts(env, caplog):
    """Bindings by result, trigger and code; upstream latency and attempts; replays."""
    from tests.conftest import call, post

    with caplog.at_level(logging.INFO, logger="axn_bind"):
        post({"PhoneNoA": "13900000001", "TtlSeconds": 600, "OutOrderId": "m-1"})
        post({"PhoneNoA": "13900000001", "TtlSeconds": 600, "OutOrderId": "m-1"})
        call({"PhoneNoA": "13900000002", "TtlSeconds": 600})
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    binds = [x for x in lines if x["event"] == "bind"]
    assert [(b["trigger"], b["result"], b["code"], b.get("replayed")) for b in binds] == [
        ("http", "bound", "OK", None),
        ("http", "bound", "OK", True),
        ("direct", "bound", "OK", None),
    ]
    # A binding's upstream figures are in its bind line (one line per bind on the common path);
    # a replay made no call.
    assert [(b.get("attempts"), isinstance(b.get("upstream_ms"), int)) for b in binds] == [
        (1, True),
        (None, False),
        (1, True),
    ]
    assert not [x for x in lines if x["event"] == "dypls_call"]


def test_every_attempt_that_did_not_bind_is_a_warning_with_its_figures(env, emulator, caplog):
    from tests.conftest import post

    emulator.add_fault("throttle", count=1)
    with caplog.at_level(logging.INFO, logger="axn_bind"):
        post({"PhoneNoA": "13900000001", "TtlSeconds": 600})
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    [call] = [x for x in lines if x["event"] == "dypls_call"]
    assert (call["attempt"], call["code"]) == (1, "Throttling.User")
    assert isinstance(call["upstream_ms"], int) and "@" in call["attempt_id"]
    assert [x for x in lines if x["event"] == "dypls_retry"]
    [bind] = [x for x in lines if x["event"] == "bind"]
    assert (bind["result"], bind["attempts"]) == ("bound", 2)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call 139-0000-0001 now", "call 139****0001 now"),
        ("call 139 0000 0001 now", "call 139****0001 now"),
        ("desk 0571-88992688", "desk 057*****2688"),
        ("intl 008613900000001", "intl 139****0001"),
        ("intl +86 13900000001", "intl 139****0001"),
    ],
)
def test_numbers_written_in_groups_or_with_a_country_code_are_masked(text, masked):
    assert scrub(text) == masked


def test_dates_request_ids_and_subscription_ids_are_not_taken_for_numbers():
    for text in (
        "2026-12-02T07:45:37Z",
        "C026F887-72A3-40E5-8E5F-39B1A660DE7D",
        "1000000872774721",
    ):
        assert scrub(text) == text
