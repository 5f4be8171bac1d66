"""The HTTP path end to end: FC 3.0 / API Gateway events → handler → real HTTP → emulator.

One test per row of the README's status table, plus the body forms a caller can use.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta

import pytest

from axn_bind.models import SHANGHAI
from tests.conftest import call, post
from tests.e2e.conftest import bind_calls
from tools.dypls_emulator import DEFAULT_POOL_KEY, EMPTY_POOL_KEY

pytestmark = pytest.mark.usefixtures("env")


def future(hours: int = 2) -> str:
    return (datetime.now(SHANGHAI) + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


def test_bind_with_json_body(emulator):
    status, headers, body = post({"PhoneNoA": "139-0000-0001", "Expiration": future()})
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert body["Code"] == "OK"
    assert body["Message"] == "OK"
    assert body["RequestId"]
    dto = body["SecretBindDTO"]
    assert set(dto) == {"Extension", "SecretNo", "SubsId"}
    [made] = emulator.bindings()
    assert made["SubsId"] == dto["SubsId"]
    assert made["SecretNo"] == dto["SecretNo"]
    assert made["PhoneNoA"] == "13900000001"
    assert made["PoolKey"] == DEFAULT_POOL_KEY


def test_bind_with_query_parameters_like_the_api_page():
    status, _, body = post(query={"PhoneNoA": "13900000002", "Expiration": future()})
    assert status == 200, body
    assert body["SecretBindDTO"]["SecretNo"]


def test_bind_with_form_body_and_ttl(emulator):
    form = "PhoneNoA=13900000003&TtlSeconds=3600&ExpectCity=%E5%8C%97%E4%BA%AC&OutId=a%20b%2A"
    status, _, body = post(form, headers={"content-type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    [made] = emulator.bindings()
    assert made["OutId"] == "a b*"


def test_base64_body_and_header_names_in_any_case():
    raw = json.dumps({"PhoneNoA": "13900000004", "TtlSeconds": 600}).encode()
    status, _, body = post(raw, base64_body=True, headers={"CONTENT-TYPE": "Application/JSON"})
    assert status == 200, body


def test_api_gateway_event_binds():
    event = {
        "path": "/bind",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "queryParameters": {},
        "pathParameters": {},
        "body": base64.b64encode(
            json.dumps({"PhoneNoA": "13900000005", "TtlSeconds": 600}).encode()
        ).decode(),
        "isBase64Encoded": True,
    }
    response = call(event)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["Code"] == "OK"


def test_direct_invocation_returns_the_body_as_a_dict():
    body = call({"PhoneNoA": "13900000006", "TtlSeconds": 600})
    assert body["Code"] == "OK"
    assert body["SecretBindDTO"]["SubsId"]


def test_validation_error_lists_fields_and_makes_no_upstream_call(emulator):
    status, _, body = post({"PhoneNoA": "12345", "Expiration": "2001-01-01 00:00:00", "Extra": 1})
    assert status == 400
    assert body["Code"] == "InvalidParameter"
    fields = {e["Field"] for e in body["Errors"]}
    assert fields == {"PhoneNoA", "Expiration", "Extra"}
    assert "12345" not in json.dumps(body)  # input values are not echoed back
    assert bind_calls(emulator) == []


def test_a_json_error_names_where_it_is_in_plain_words(emulator):
    status, _, body = post(b'{"PhoneNoA": "1390', base64_body=True)
    assert (status, body["Code"]) == (400, "MalformedRequest")
    assert "(Unterminated string starting at line 1, column 14)" in body["Message"]
    assert "at at" not in body["Message"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"[" * 40 + b"]" * 40, "nested"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_bodies_are_400(raw, fragment, emulator):
    status, _, body = post(raw, base64_body=True, headers={"Content-Type": "application/json"})
    assert status == 400
    assert body["Code"] == "MalformedRequest"
    assert fragment in body["Message"]
    assert bind_calls(emulator) == []


def test_deeply_nested_json_beyond_the_parser_limit_is_400():
    raw = b"[" * 30_000 + b"]" * 30_000  # deeper than Python's recursion limit, under 64 KiB
    status, _, body = post(raw, base64_body=True)
    assert (status, body["Code"]) == (400, "MalformedRequest")
    assert "nested" in body["Message"]


def test_invalid_base64_is_400():
    from tools.fc_local import http_event

    event = json.loads(http_event("POST", {"PhoneNoA": "13900000000"}))
    event["isBase64Encoded"] = True  # the body is plain JSON, not Base64
    response = call(event)
    assert response["statusCode"] == 400
    assert "Base64" in json.loads(response["body"])["Message"]


def test_wrong_method_is_405_with_allow_header():
    status, headers, body = post(method="GET", query={"PhoneNoA": "13900000000"})
    assert status == 405
    assert headers["Allow"] == "POST"
    assert body["Code"] == "MethodNotAllowed"


def test_unknown_path_is_404():
    status, _, body = post({"PhoneNoA": "13900000000"}, path="/admin")
    assert status == 404
    assert body["Code"] == "NotFound"


def test_body_over_64_kib_is_413(emulator):
    big = {"PhoneNoA": "13900000000", "TtlSeconds": 600, "OutId": "x" * (64 * 1024)}
    status, _, body = post(big)
    assert status == 413
    assert body["Code"] == "PayloadTooLarge"
    assert bind_calls(emulator) == []


def test_unsupported_content_type_is_400():
    status, _, body = post("<xml/>", headers={"Content-Type": "application/xml"})
    assert status == 400
    assert "application/json" in body["Message"]


def test_same_field_in_query_and_body_is_400():
    status, _, body = post({"PhoneNoA": "13900000000"}, query={"PhoneNoA": "13900000001"})
    assert status == 400
    assert body["Message"].startswith(
        "PhoneNoA is given both in the query string and in the body; send it once"
    )
    assert "13900000001" not in body["Message"]
    _, _, body = post(
        {"PhoneNoA": "13900000000", "TtlSeconds": 3600},
        query={"PhoneNoA": "13900000001", "TtlSeconds": "60"},
    )
    assert body["Message"].startswith("PhoneNoA and TtlSeconds are given both")


@pytest.mark.parametrize(
    "code",
    [
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.INVALID_PARAMETERS",
        "isv.ILLEGAL_ARGUMENT",
        "isv.FORBIDDEN_ACTION",
        "isv.NO_NOT_EXIST",
        "isv.POOLKEY_NOT_EXISTS",
    ],
)
def test_upstream_caller_input_codes_are_400_and_passed_through(code, emulator):
    emulator.add_fault("business", code=code, message="upstream says no")
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert status == 400
    assert body["Code"] == code
    assert "upstream says no" in body["Message"]
    assert len(bind_calls(emulator)) == 1  # never retried


def test_real_upstream_rules_reach_the_caller(emulator):
    # Unknown pool: the emulator's own rule, not a scripted fault.
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600, "PoolKey": "FC9"})
    assert (status, body["Code"]) == (400, "isv.POOLKEY_NOT_EXISTS")
    # X not in the pool.
    status, _, body = post(
        {"PhoneNoA": "13900000000", "TtlSeconds": 600, "PhoneNoX": "13000000000", "Extension": "1"}
    )
    assert (status, body["Code"]) == (400, "isv.FORBIDDEN_ACTION")


def test_expiration_checked_upstream_in_shanghai_time(emulator):
    # The emulator's clock runs 5 minutes ahead: a 3-minute expiry passes locally, fails upstream.
    emulator.set_clock_offset(300)
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 180})
    assert (status, body["Code"]) == (503, "isv.EXPIRE_DATE_ILLEGAL")
    assert "Nothing was bound" in body["Message"] and "clock" in body["Message"]


def test_a_clock_skew_refusal_is_not_kept_and_binds_once_the_clocks_agree(emulator):
    """Dyplsapi refuses an Expiration this function judged far enough ahead: the clocks disagree
    and nothing was bound. The key is released, so the same request binds after the fix instead
    of replaying the refusal for the record's lifetime."""
    emulator.set_clock_offset(300)
    request = {"PhoneNoA": "13900000000", "TtlSeconds": 180, "OutOrderId": "DD-skew"}
    status, _, body = post(request, headers={"Idempotency-Key": "k-skew"})
    assert (status, body["Code"]) == (503, "isv.EXPIRE_DATE_ILLEGAL")
    emulator.set_clock_offset(0)
    status, headers, body = post(request, headers={"Idempotency-Key": "k-skew"})
    assert (status, body["Code"]) == (200, "OK")
    assert "Idempotent-Replayed" not in headers
    assert len(bind_calls(emulator)) == 2


def test_bind_conflict_is_409(emulator):
    first = {"PhoneNoA": "13900000000", "TtlSeconds": 600}
    status, _, body = post(first)
    assert status == 200
    x = body["SecretBindDTO"]["SecretNo"]
    ext = body["SecretBindDTO"]["Extension"]
    status, _, body = post(
        {"PhoneNoA": "13900000009", "TtlSeconds": 600, "PhoneNoX": x, "Extension": ext}
    )
    assert (status, body["Code"]) == (409, "isv.BIND_CONFLICT")


def test_no_available_number_is_503():
    status, _, body = post(
        {"PhoneNoA": "13900000000", "TtlSeconds": 600, "PoolKey": EMPTY_POOL_KEY}
    )
    assert (status, body["Code"]) == (503, "isv.NO_AVAILABLE_NUMBER")
    assert "retry later with the same key" in body["Message"]


def test_an_empty_pool_is_not_frozen_in_the_record(emulator):
    """A 503 invites a retry: the key is released, so the retry binds once numbers are free
    instead of replaying the 503 for the record's lifetime."""
    emulator.add_fault("business", code="isv.NO_AVAILABLE_NUMBER")
    order = {"PhoneNoA": "13900000000", "TtlSeconds": 600, "OutOrderId": "ord-empty-pool"}
    status, headers, body = post(order)
    assert (status, body["Code"]) == (503, "isv.NO_AVAILABLE_NUMBER")
    status, headers, body = post(order)
    assert status == 200, body
    assert "Idempotent-Replayed" not in headers
    assert len(emulator.bindings()) == 1


@pytest.mark.parametrize("kind", ["throttle", "flow_limit"])
def test_throttling_is_retried_then_binds(kind, emulator):
    emulator.add_fault(kind, count=2)
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert status == 200, body
    assert len(bind_calls(emulator)) == 3
    assert len(emulator.bindings()) == 1


def test_still_throttled_after_retries_is_429_with_retry_after(emulator, env):
    env(DYPLS_MAX_ATTEMPTS="3")
    emulator.add_fault("throttle", count=5, retry_after=0.02)
    status, headers, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert status == 429
    assert body["Code"] == "Throttling.User"
    assert int(headers["Retry-After"]) >= 1
    assert len(bind_calls(emulator)) == 3
    assert emulator.bindings() == []


def test_retry_after_is_the_gateway_hint_rounded_up(emulator, env):
    env(DYPLS_MAX_ATTEMPTS="1")
    emulator.add_fault("throttle", retry_after=1.2)  # x-acs-retry-after: 1200 (ms)
    status, headers, _ = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert (status, headers["Retry-After"]) == (429, "2")


def test_signature_nonce_used_is_an_unknown_outcome_and_not_retried(emulator):
    # Every attempt has a fresh nonce and nothing below the client retries: a reused nonce means
    # the same request reached the gateway twice, and the other copy may have bound.
    emulator.add_fault("gateway", status=400, code="SignatureNonceUsed", message="nonce used")
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert (status, body["Code"]) == (502, "SignatureNonceUsed")
    assert "may have bound" in body["Message"]
    assert len(bind_calls(emulator)) == 1


@pytest.mark.parametrize(
    ("fault", "options", "code"),
    [
        ("isp_error", {}, "isp.SYSTEM_ERROR"),
        ("isp_error", {"bind": True}, "isp.SYSTEM_ERROR"),
        ("http_5xx", {"status": 500}, "InternalError"),
        ("http_5xx", {"status": 503}, "ServiceUnavailable"),
    ],
)
def test_unknown_outcome_is_502_and_never_retried(fault, options, code, emulator):
    emulator.add_fault(fault, **options)
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert status == 502
    assert body["Code"] == code
    assert "may or may not exist" in body["Message"]
    assert len(bind_calls(emulator)) == 1


def test_connection_dropped_after_sending_is_502_not_retried(emulator):
    emulator.add_fault("bind_then_drop")
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert (status, body["Code"]) == (502, "UpstreamConnectionLost")
    assert len(emulator.bindings()) == 1  # the binding exists although the caller saw an error
    assert len(bind_calls(emulator)) == 1


def test_upstream_timeout_is_504_not_retried(emulator, env):
    env(DYPLS_READ_TIMEOUT="0.3")
    emulator.add_fault("delay", seconds=1.0)
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert (status, body["Code"]) == (504, "UpstreamTimeout")
    deadline = time.monotonic() + 3
    while not emulator.bindings() and time.monotonic() < deadline:
        time.sleep(0.05)  # the emulator finishes the delayed request after the client gave up
    assert len(emulator.bindings()) == 1  # which is why a timeout is never retried
    assert len(bind_calls(emulator)) == 1


def test_connection_refused_is_retried_then_503(env):
    env(DYPLS_ENDPOINT="http://127.0.0.1:9", DYPLS_MAX_ATTEMPTS="2")
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert (status, body["Code"]) == (503, "UpstreamUnavailable")
    assert "nothing was sent" in body["Message"]


@pytest.mark.parametrize(
    ("setup", "code", "names"),
    [
        (
            {"ALIBABA_CLOUD_ACCESS_KEY_ID": None},
            "MissingCredentials",
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
        ),
        (
            {"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "wrong-secret-value"},
            "SignatureDoesNotMatch",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        ),
        (
            {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIunknown"},
            "InvalidAccessKeyId.NotFound",
            "ACCESS_KEY",
        ),
        (
            {"DYPLS_ENDPOINT": "http://dyplsapi.example.com"},
            "InvalidConfiguration",
            "DYPLS_ENDPOINT",
        ),
        ({"DYPLS_SIGNATURE_VERSION": "v2"}, "InvalidConfiguration", "DYPLS_SIGNATURE_VERSION"),
    ],
)
def test_configuration_problems_are_500_and_name_the_setting(env, setup, code, names, emulator):
    env(**setup)
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert status == 500
    assert body["Code"] == code
    assert names in body["Message"]
    for name, value in setup.items():  # a secret's value is never echoed
        assert "SECRET" not in name or value not in json.dumps(body)
    assert "wrong-secret-value" not in json.dumps(body)
    assert emulator.bindings() == []


@pytest.mark.parametrize(
    "code",
    ["Forbidden.RAM", "isp.RAM_PERMISSION_DENY", "isv.PRODUCT_UN_SUBSCRIPT", "isv.OUT_OF_SERVICE"],
)
def test_account_and_permission_codes_are_500(code, emulator):
    if code.startswith("isv.") or code.startswith("isp."):
        emulator.add_fault("business", code=code, message="no")
    else:
        emulator.add_fault("gateway", status=403, code=code, message="no")
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert (status, body["Code"]) == (500, code)
    assert len(bind_calls(emulator)) == 1


def test_sts_credentials_from_the_context_are_used(env, emulator):
    from tools.dypls_emulator import (
        DEFAULT_STS_ACCESS_KEY_ID,
        DEFAULT_STS_ACCESS_KEY_SECRET,
        DEFAULT_STS_SECURITY_TOKEN,
    )
    from tools.fc_local import Credentials, FcContext

    env(ALIBABA_CLOUD_ACCESS_KEY_ID=None, ALIBABA_CLOUD_ACCESS_KEY_SECRET=None)
    ctx = FcContext(
        credentials=Credentials(
            DEFAULT_STS_ACCESS_KEY_ID, DEFAULT_STS_ACCESS_KEY_SECRET, DEFAULT_STS_SECURITY_TOKEN
        )
    )
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600}, context=ctx)
    assert status == 200, body


@pytest.mark.parametrize("version", ["v3", "v1"])
def test_sts_credentials_from_the_environment_in_both_signature_versions(env, version, emulator):
    from tools.dypls_emulator import (
        DEFAULT_STS_ACCESS_KEY_ID,
        DEFAULT_STS_ACCESS_KEY_SECRET,
        DEFAULT_STS_SECURITY_TOKEN,
    )

    env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULT_STS_ACCESS_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULT_STS_ACCESS_KEY_SECRET,
        ALIBABA_CLOUD_SECURITY_TOKEN=DEFAULT_STS_SECURITY_TOKEN,
        DYPLS_SIGNATURE_VERSION=version,
    )
    status, _, body = post(
        {"PhoneNoA": "13900000000", "TtlSeconds": 600, "ExpectCity": "北京", "OutId": "a*b~c d"}
    )
    assert status == 200, body
    [made] = emulator.bindings()
    assert made["OutId"] == "a*b~c d"
    assert bind_calls(emulator)[0]["signature_version"] == version.upper()


def test_v1_signing_binds(env, emulator):
    env(DYPLS_SIGNATURE_VERSION="v1")
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600, "OutOrderId": "订单#1"})
    assert status == 200, body
    assert bind_calls(emulator)[0]["signature_version"] == "V1"
    assert emulator.bindings()[0]["OutOrderId"] == "订单#1"


def test_sts_key_without_token_is_a_configuration_error(env):
    env(ALIBABA_CLOUD_ACCESS_KEY_ID="STS.something")
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert (status, body["Code"]) == (500, "MissingCredentials")
    assert "ALIBABA_CLOUD_SECURITY_TOKEN" in body["Message"]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (b"", "UnsupportedEvent"),
        (b"null", "UnsupportedEvent"),
        (b"42", "UnsupportedEvent"),
        (b'"text"', "UnsupportedEvent"),
        (b"\x00\x01\x02", "UnsupportedEvent"),
        (b"{", "MalformedRequest"),
        (b'{"version":"v1","rawPath":1}', "InvalidParameter"),  # not HTTP: a bad bind request
    ],
)
def test_odd_events_are_answered_not_raised(event, code, emulator):
    result = call(event)
    assert result["Code"] == code
    assert result["Message"]
    assert bind_calls(emulator) == []


def test_initialize_connects_ahead_and_only_logs_what_it_cannot_reach(env, caplog):
    import logging

    from index import initialize
    from tools.fc_local import FcContext

    env(DYPLS_ENDPOINT="http://127.0.0.1:9", DYPLS_MAX_ATTEMPTS="1")
    with caplog.at_level(logging.WARNING, logger="axn_bind"):
        initialize(FcContext())  # never raises: a start that fails would fail every request
    [line] = [json.loads(r.getMessage()) for r in caplog.records if "preconnect" in r.getMessage()]
    assert line == {"event": "dypls_preconnect_failed", "reason": "connection refused"}
    status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
    assert (status, body["Code"]) == (503, "UpstreamUnavailable")
