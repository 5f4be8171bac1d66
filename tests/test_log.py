"""Log lines: one JSON object each, phone numbers masked, identifiers an operator needs kept."""

from __future__ import annotations

import json
import logging

from axn_bind.log import log


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
