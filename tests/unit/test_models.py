"""The bind request model: every rule a caller can break, and what is sent when none is broken."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from axn_bind.errors import RequestValidationError
from axn_bind.models import SHANGHAI, build_request, normalise_phone

FUTURE = (datetime.now(SHANGHAI) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")


def base(**extra):
    return {
        "PoolKey": "FC100000000000001",
        "PhoneNoA": "13900000000",
        "Expiration": FUTURE,
        **extra,
    }


def errors_of(data, **kw):
    with pytest.raises(RequestValidationError) as info:
        build_request(data, **kw)
    assert info.value.status == 400
    return {e["Field"]: e["Message"] for e in info.value.errors}


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("13900000000", "13900000000"),
        ("+86 139 0000 0000", "13900000000"),
        ("0086-139-0000-0000", "13900000000"),
        ("+8613900000000", "13900000000"),
        ("057188992688", "057188992688"),
        ("0571-88992688", "057188992688"),
        ("+86 571 88992688", "057188992688"),
        ("010 12345678", "01012345678"),
        (13900000000, "13900000000"),
    ],
)
def test_phone_numbers_are_normalised(raw, digits):
    assert normalise_phone(raw) == digits


@pytest.mark.parametrize(
    "raw",
    [
        "12345",
        "2390000000",
        "139000000001",
        "139-0000-000a",
        "+1 650 555 0100",
        "(0571)88992688",
        "",
        True,
    ],
)
def test_other_phone_forms_are_rejected(raw):
    with pytest.raises(ValueError, match="mainland mobile"):
        normalise_phone(raw)


def test_valid_request_becomes_wire_parameters():
    req = build_request(
        base(
            PhoneNoX="17000000000",
            Extension="130",
            PhoneNoB="+86 138 0000 0000",
            ExpectCity="北京",
            IsRecordingEnabled=True,
            ASRStatus="false",
            CallDisplayType="1",
            CallRestrict="CONTROL_BX_DISABLE",
            OutOrderId="order-1",
        )
    )
    params = req.to_params()
    assert params == {
        "PoolKey": "FC100000000000001",
        "PhoneNoA": "13900000000",
        "Expiration": FUTURE,
        "PhoneNoX": "17000000000",
        "Extension": "130",
        "PhoneNoB": "13800000000",
        "ExpectCity": "北京",
        "IsRecordingEnabled": "true",
        "ASRStatus": "false",
        "CallDisplayType": "1",
        "CallRestrict": "CONTROL_BX_DISABLE",
        "OutOrderId": "order-1",
    }


def test_required_fields_are_named():
    errs = errors_of({})
    assert errs["PoolKey"].startswith("is required")
    assert "AXN_POOL_KEY" in errs["PoolKey"]
    assert errs["PhoneNoA"] == (
        "is required: a mainland mobile or a landline with its area code "
        "(e.g. PhoneNoA=13900000001)"
    )
    assert errs["Expiration"].startswith("is required, or TtlSeconds instead")
    assert "e.g. Expiration=2030-01-01 12:00:00, or TtlSeconds=3600" in errs["Expiration"]


# Phrases of pydantic's own messages: none may reach a caller.
FOREIGN = (
    "Input should",
    "Value error",
    "String should",
    "Field required",
    "Extra inputs",
    "pydantic",
)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("PoolKey", "P" * 65, "is too long: at most 64 characters"),
        ("PhoneNoA", "12345", "must be a mainland mobile"),
        ("PhoneNoB", "x", "must be a mainland mobile"),
        ("PhoneNoX", "555", "must be a mainland mobile"),
        ("Expiration", "tomorrow", "must be 'yyyy-MM-dd HH:mm:ss'"),
        ("Expiration", "2020-01-01 00:00:00", "more than 60 seconds in the future"),
        ("Expiration", "9999-12-31T23:00:00-02:00", "after the year 9999"),
        ("TtlSeconds", "1.5", "must be a whole number of seconds"),
        ("TtlSeconds", 30, "must be more than 60"),
        ("Extension", "1234", "must be 1 to 3 digits"),
        ("ExpectCity", "北" * 33, "is too long: at most 32 characters"),
        ("IsRecordingEnabled", "maybe", "must be true or false (true/false, 1/0, yes/no"),
        ("ASRStatus", [1], "must be true or false"),
        ("OutId", "x" * 257, "is too long: at most 256 characters"),
        ("OutOrderId", "x" * 257, "is too long: at most 256 characters"),
        ("OutOrderId", {"a": 1}, "has the wrong type"),
        ("CallDisplayType", 2, "must be 1"),
        ("CallRestrict", "CONTROL_ALL", "must be CONTROL_AX_DISABLE or CONTROL_BX_DISABLE"),
        ("RingConfig", "x" * 1025, "is too long: at most 1024 characters"),
        ("ASRModelId", "x" * 129, "is too long: at most 128 characters"),
    ],
)
def test_every_field_error_is_in_the_projects_words_with_an_example(field, value, said):
    data = base(**{field: value})
    if field == "TtlSeconds":
        del data["Expiration"]
    message = errors_of(data)[field]
    assert said in message
    assert f"(e.g. {field}=" in message  # an example of a valid value
    assert not any(phrase in message for phrase in FOREIGN), message


def test_cross_field_rules_read_as_sentences():
    errs = errors_of(base(Extension="100"))
    assert errs["Extension"].startswith("can only be given together with PhoneNoX")
    errs = errors_of(base(TtlSeconds=3600))
    assert errs["TtlSeconds"].startswith("cannot be given together with Expiration")


@pytest.mark.parametrize(
    ("sent", "meant"),
    [("phoneNoA", "PhoneNoA"), ("PHONENOA", "PhoneNoA"), ("PhoneA", "PhoneNoA"),
     ("OutOrderID", "OutOrderId"), ("outorderid", "OutOrderId"), ("Expiry", None),
     ("ttlseconds", "TtlSeconds"), ("PoolKy", "PoolKey")],
)  # fmt: skip
def test_a_near_miss_field_name_gets_did_you_mean(sent, meant):
    data = base()
    key = "Expiration" if meant in (None, "TtlSeconds") else meant
    value = data.pop(key, "3600" if meant == "TtlSeconds" else "x")
    if meant == "TtlSeconds":
        value = "3600"
    errs = errors_of({**data, sent: value})
    if meant is None:
        assert "the fields are PoolKey, PhoneNoA" in errs[sent]
    else:
        assert errs[sent].endswith(f"did you mean {meant}?")
        assert meant not in errs  # one problem, not a second "is required" for the same field


def test_every_field_problem_is_reported_at_once():
    errs = errors_of({"PoolKey": "P", "PhoneNoA": "12", "TtlSeconds": 5, "PhoneNoB": "x"})
    assert set(errs) == {"PhoneNoA", "TtlSeconds", "PhoneNoB"}


def test_pool_key_falls_back_to_the_configured_default():
    data = base()
    del data["PoolKey"]
    assert build_request(data, default_pool="FC100000000000009").PoolKey == "FC100000000000009"
    assert build_request(base(), default_pool="FC100000000000009").PoolKey == "FC100000000000001"


def test_the_summary_of_several_near_misses_reads_as_sentences():
    """Each problem's own "did you mean X?" ends it: never "?;" or "?." in the message."""
    data = base()
    data.pop("Expiration")
    data["phonenoa"] = data.pop("PhoneNoA")
    data["ttlseconds"] = "3600"
    with pytest.raises(RequestValidationError) as caught:
        build_request(data)
    message = caught.value.message
    assert "did you mean PhoneNoA? " in message and message.endswith("did you mean TtlSeconds?")
    assert "?;" not in message and "?." not in message


def test_unknown_field_is_rejected_not_dropped():
    errs = errors_of(base(PhoneNob="13800000000"))
    assert "is not a field of a bind request" in errs["PhoneNob"]


def test_an_unknown_field_name_is_quoted_with_phone_numbers_masked_and_cut_short():
    with pytest.raises(RequestValidationError) as info:
        build_request(base(**{"13912345678": "x", "PhoneNo" + "x" * 100_000: "1"}))
    text = str(info.value.body("r"))
    assert "13912345678" not in text
    assert [e["Field"] for e in info.value.errors] == ["139****5678", "PhoneNo" + "x" * 57 + "…"]
    assert len(text) < 2000  # a long name is not echoed in full (twice) into the answer


def test_extension_needs_phone_no_x_and_one_to_three_digits():
    assert "together with PhoneNoX" in errors_of(base(Extension="12"))["Extension"]
    assert errors_of(base(PhoneNoX="17000000000", Extension="1234"))["Extension"] == (
        "must be 1 to 3 digits (e.g. Extension=100)"
    )
    assert errors_of(base(PhoneNoX="17000000000", Extension="1a"))["Extension"] == (
        "must be 1 to 3 digits (e.g. Extension=100)"
    )


def test_expiration_is_read_as_shanghai_time():
    req = build_request(base(Expiration="2099-01-01 08:00:00"))
    assert req.Expiration == datetime(2099, 1, 1, 0, 0, tzinfo=timezone.utc)


def test_iso_expiration_with_offset_is_converted_to_shanghai():
    req = build_request(base(Expiration="2099-01-01T00:00:00Z"))
    assert req.to_params()["Expiration"] == "2099-01-01 08:00:00"
    req = build_request(base(Expiration="2099-06-30T23:30:00-05:00"))
    assert req.to_params()["Expiration"] == "2099-07-01 12:30:00"


@pytest.mark.parametrize(
    "value",
    ["2099-01-01T00:00:00", "2099/01/01 00:00:00", "2099-02-30 00:00:00", "tomorrow", 20990101],
)
def test_unreadable_or_zoneless_expiration_is_rejected(value):
    assert "Expiration" in errors_of(base(Expiration=value))


def test_expiration_must_be_more_than_a_minute_ahead():
    soon = (datetime.now(SHANGHAI) + timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M:%S")
    assert "more than 60 seconds in the future" in errors_of(base(Expiration=soon))["Expiration"]
    # UTC wall-clock time one hour ahead is seven hours in the past in Shanghai.
    utc_wall = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert "Expiration" in errors_of(base(Expiration=utc_wall))


def test_ttl_seconds_replaces_expiration():
    data = base(TtlSeconds="3600")
    del data["Expiration"]
    before = datetime.now(SHANGHAI)
    req = build_request(data)
    delta = (req.Expiration - before).total_seconds()
    assert 3599 <= delta <= 3601
    assert "TtlSeconds" not in req.to_params()
    assert req.TtlSeconds == 3600


@pytest.mark.parametrize("ttl", [60, 0, -5, "1.5", "abc", True, 10**10])
def test_bad_ttl_seconds_is_rejected(ttl):
    data = base(TtlSeconds=ttl)
    del data["Expiration"]
    assert "TtlSeconds" in errors_of(data)


def test_expiration_and_ttl_together_are_rejected():
    assert "send one of them" in errors_of(base(TtlSeconds=3600))["TtlSeconds"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("CallDisplayType", 2),
        ("CallRestrict", "CONTROL_ALL"),
        ("IsRecordingEnabled", "maybe"),
        ("ASRStatus", "perhaps"),
        ("PhoneNoB", "555"),
    ],
)
def test_enumerated_fields_are_checked(field, value):
    assert field in errors_of(base(**{field: value}))


def test_non_object_payload_is_rejected():
    assert errors_of(["not", "an", "object"]) == {
        "(request)": "a bind request must be a JSON object"
    }


def test_empty_optional_values_count_as_absent():
    req = build_request(base(PhoneNoB="", OutId=""))
    assert "PhoneNoB" not in req.to_params()
    assert "OutId" not in req.to_params()


@given(
    st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=20), st.integers(), st.none()))
)
def test_arbitrary_objects_validate_or_fail_cleanly(data):
    try:
        build_request(data)
    except RequestValidationError as exc:
        assert exc.errors
        assert all(set(e) == {"Field", "Message"} for e in exc.errors)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("PhoneNoA", "١٣٩٠٠٠٠٠٠٠١"),  # Arabic-Indic digits
        ("PhoneNoA", "१३९००००००० १"),  # Devanagari
        ("PhoneNoA", "１３９００００００００１"),  # fullwidth
        ("PhoneNoB", "1３900000002"),
        ("Extension", "١٢"),
        ("TtlSeconds", "３６００"),
        ("Expiration", "２０３０-01-01 12:00:00"),
    ],
)
def test_only_ascii_digits_are_digits(field, value):
    data = base(PhoneNoX="17000000000", **{field: value})
    if field == "TtlSeconds":
        del data["Expiration"]
    assert field in errors_of(data)


def test_a_request_with_thousands_of_unknown_fields_gets_a_short_answer():
    from axn_bind.errors import RequestValidationError

    payload = {"PhoneNoA": "13900000001", "TtlSeconds": 600, **{f"x{i}": 1 for i in range(5000)}}
    with pytest.raises(RequestValidationError) as info:
        build_request(payload, default_pool="FC100000000000001")
    errors = info.value.errors
    assert len(errors) == RequestValidationError.MAX_ERRORS + 1
    assert (
        errors[-1]["Message"]
        == f"and {5000 - RequestValidationError.MAX_ERRORS} more problem(s) not listed"
    )
    assert len(info.value.message) < 10_000  # it was megabytes
