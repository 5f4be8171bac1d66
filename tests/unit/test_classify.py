"""The classifier, row by row: (HTTP status, body or its lack, transport failure and its stage)
→ kind and code. Every code of the Dyplsapi reference tables is a row, and so is every
ambiguous answer that may have bound.

The rule under test: anything that may have bound is UNKNOWN; only what provably bound nothing
may be retried or release its key.
"""

from __future__ import annotations

import json

import pytest

from axn_bind.dypls.classify import classify, safe_message
from axn_bind.dypls.transport import Answered, NoAnswer, NotSent
from axn_bind.errors import Kind
from axn_bind.outcome import KEEP, KEEP_UNKNOWN, RELEASE, Outcome

OK_BODY = {
    "Code": "OK",
    "Message": "OK",
    "RequestId": "R-1",
    "SecretBindDTO": {"Extension": "130", "SecretNo": "17000000000", "SubsId": "1000000820000605"},
}


def answer(status: int, body, headers: dict[str, str] | None = None) -> Answered:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answered(status, headers or {}, raw)


def business(code: str) -> Answered:
    return answer(200, {"Code": code, "Message": "m", "RequestId": "R-2"})


def gateway(status: int, code: str) -> Answered:
    return answer(status, {"Code": code, "Message": "m", "RequestId": "R-3", "HostId": "h"})


U, T, R, C, A = Kind.UNKNOWN, Kind.THROTTLED, Kind.REJECTED, Kind.CONFIG, Kind.UNAVAILABLE

# (exchange, kind, code, answered status, retried within the invocation)
ROWS = [
    # a binding
    (answer(200, OK_BODY), None, "OK", 200, False),
    # business codes (HTTP 200) from the reference table
    # nothing bound, and the same request can succeed later: never frozen in a record
    (business("isv.NO_AVAILABLE_NUMBER"), A, "isv.NO_AVAILABLE_NUMBER", 503, False),
    # Expiration passed the function's own check: the clocks disagree (never frozen either)
    (business("isv.EXPIRE_DATE_ILLEGAL"), A, "isv.EXPIRE_DATE_ILLEGAL", 503, False),
    (business("isv.BIND_CONFLICT"), R, "isv.BIND_CONFLICT", 409, False),
    (business("isv.FLOW_LIMIT"), T, "isv.FLOW_LIMIT", 429, True),
    *[
        (business(code), R, code, 400, False)
        for code in (
            "isv.MOBILE_NUMBER_ILLEGAL",
            "isv.INVALID_PARAMETERS",
            "isv.ILLEGAL_ARGUMENT",
            "isv.FORBIDDEN_ACTION",
            "isv.NO_NOT_EXIST",
            "isv.POOLKEY_NOT_EXISTS",
            "isv.SUBS_NOT_EXIST",
            "isv.SOMETHING_NEW",  # an unheard-of isv.* code: the service refused the request
        )
    ],
    *[
        (business(code), C, code, 500, False)
        for code in (
            "isv.OUT_OF_SERVICE",
            "isv.PRODUCT_UN_SUBSCRIPT",
            "isv.PRODUCT_UNSUBSCRIBE",
            "isv.ACCOUNT_NOT_EXISTS",
            "isv.ACCOUNT_ABNORMAL",
            "isp.RAM_PERMISSION_DENY",
        )
    ],
    *[
        (business(code), U, code, 502, False)
        for code in (
            "isp.SYSTEM_ERROR",
            "isp.DAO_EXCEPTION",
            "isp.GATEWAY_ERROR",
            "isp.UNKNOWN_ERR_CODE",
            "isp.VENDOR_UNAVAILABLE",
            "isv.PARTNER_NOT_EXIST",
            "isp.SOMETHING_NEW",
        )
    ],
    # gateway codes (HTTP 4xx/5xx) from the reference table
    (gateway(400, "Throttling"), T, "Throttling", 429, True),
    (gateway(400, "Throttling.User"), T, "Throttling.User", 429, True),
    (gateway(429, "Throttling.Api"), T, "Throttling.Api", 429, True),
    (gateway(400, "SignatureNonceUsed"), U, "SignatureNonceUsed", 502, False),
    (gateway(400, "SignatureDoesNotMatch"), C, "SignatureDoesNotMatch", 500, False),
    (gateway(400, "IncompleteSignature"), C, "IncompleteSignature", 500, False),
    (gateway(404, "InvalidAccessKeyId.NotFound"), C, "InvalidAccessKeyId.NotFound", 500, False),
    (gateway(400, "InvalidAccessKeyId.Inactive"), C, "InvalidAccessKeyId.Inactive", 500, False),
    (gateway(400, "InvalidTimeStamp.Expired"), C, "InvalidTimeStamp.Expired", 500, False),
    (gateway(400, "InvalidTimeStamp.Format"), C, "InvalidTimeStamp.Format", 500, False),
    (gateway(400, "IllegalTimestamp"), C, "IllegalTimestamp", 500, False),
    (gateway(400, "MissingParameter"), C, "MissingParameter", 500, False),
    (gateway(400, "InvalidParameter"), C, "InvalidParameter", 500, False),
    (gateway(400, "InvalidParameter.Format"), C, "InvalidParameter.Format", 500, False),
    (gateway(400, "UnsupportedHTTPMethod"), C, "UnsupportedHTTPMethod", 500, False),
    (gateway(404, "InvalidApi.NotFound"), C, "InvalidApi.NotFound", 500, False),
    (gateway(404, "InvalidProduct.NotFound"), C, "InvalidProduct.NotFound", 500, False),
    (gateway(403, "Forbidden.RAM"), C, "Forbidden.RAM", 500, False),
    (gateway(403, "Forbidden"), C, "Forbidden", 500, False),
    (gateway(400, "InvalidSecurityToken.Expired"), C, "InvalidSecurityToken.Expired", 500, False),
    (gateway(500, "InternalError"), U, "InternalError", 502, False),
    (gateway(503, "ServiceUnavailable"), U, "ServiceUnavailable", 502, False),
    # gateway answers without a known code: judged by the status
    (answer(502, b"<html>bad gateway</html>"), U, "InternalError", 502, False),
    (answer(504, {}), U, "InternalError", 502, False),
    (answer(429, b""), T, "UnexpectedResponse", 429, True),
    (answer(403, b"denied"), C, "UnexpectedResponse", 500, False),
    (answer(400, {"Code": "Brand.New"}), C, "Brand.New", 500, False),
    (answer(302, b""), C, "UnexpectedResponse", 500, False),
    # ambiguous 2xx answers: each may have bound
    (answer(200, b""), U, "UnreadableResponse", 502, False),
    (answer(200, b"not json"), U, "UnreadableResponse", 502, False),
    (answer(200, [OK_BODY]), U, "UnreadableResponse", 502, False),
    (answer(200, {"RequestId": "R"}), U, "UnreadableResponse", 502, False),
    (answer(200, {"SecretBindDTO": OK_BODY["SecretBindDTO"]}), U, "UnreadableResponse", 502, False),
    (answer(202, OK_BODY), U, "UnreadableResponse", 502, False),
    # "OK" on a failure status is never passed on as the Code (a client would take it for success)
    (answer(500, {"Code": "OK", "Message": "OK"}), U, "InternalError", 502, False),
    (answer(429, {"Code": "OK", "Message": "OK"}), T, "UnexpectedResponse", 429, True),
    (answer(400, {"Code": "OK", "Message": "OK"}), C, "UnexpectedResponse", 500, False),
    (answer(204, b""), U, "UnreadableResponse", 502, False),
    (answer(200, {"Code": "OK", "RequestId": "R"}), U, "UnreadableResponse", 502, False),
    (
        answer(200, {"Code": "OK", "SecretBindDTO": {"SecretNo": "17000000000"}}),
        U,
        "UnreadableResponse",
        502,
        False,
    ),
    (answer(200, {"Code": "Weird", "Message": "?"}), U, "UnreadableResponse", 502, False),
    (answer(201, {"Code": "isv.BIND_CONFLICT"}), R, "isv.BIND_CONFLICT", 409, False),
    # the transport: before sending (safe to retry) and after (a binding may exist)
    (NotSent("connection refused"), A, "UpstreamUnavailable", 503, True),
    (NotSent("TLS handshake failed"), A, "UpstreamUnavailable", 503, True),
    (NotSent("host name not resolved"), A, "UpstreamUnavailable", 503, True),
    (NoAnswer("timed out", timed_out=True), U, "UpstreamTimeout", 504, False),
    (NoAnswer("connection reset", timed_out=False), U, "UpstreamConnectionLost", 502, False),
    (NoAnswer("connection closed", timed_out=False), U, "UpstreamConnectionLost", 502, False),
]


@pytest.mark.parametrize(("exchange", "kind", "code", "status", "retry"), ROWS)
def test_every_row(exchange, kind, code, status, retry):
    verdict = classify(exchange)
    assert (verdict.kind, verdict.code, verdict.status, verdict.retry) == (
        kind,
        code,
        status,
        retry,
    )


@pytest.mark.parametrize(("exchange", "kind", "code", "status", "retry"), ROWS)
def test_what_the_record_does_follows_from_the_verdict(exchange, kind, code, status, retry):
    outcome = Outcome.from_verdict(classify(exchange), "FC-1")
    expected = {None: KEEP, R: KEEP, U: KEEP_UNKNOWN, T: RELEASE, C: RELEASE, A: RELEASE}[kind]
    assert outcome.record_as == expected
    # only what provably bound nothing is retried
    assert not retry or outcome.record_as == RELEASE


def test_a_binding_carries_its_dto_and_dyplsapi_request_id():
    verdict = classify(answer(200, OK_BODY))
    assert verdict.binding == OK_BODY["SecretBindDTO"]
    outcome = Outcome.from_verdict(verdict, "FC-1")
    assert outcome.body["RequestId"] == "R-1" and outcome.upstream_request_id == "R-1"


def test_throttling_carries_the_gateway_hint_in_seconds():
    ms = classify(gateway_with(400, "Throttling.User", {"x-acs-retry-after": "1200"}))
    assert ms.retry_after == 1.2
    s = classify(gateway_with(429, "Throttling", {"retry-after": "3"}))
    assert s.retry_after == 3.0
    assert classify(gateway(400, "Throttling")).retry_after is None
    assert Outcome.from_verdict(ms, "x").headers == {"Retry-After": "2"}  # rounded up


def gateway_with(status: int, code: str, headers: dict[str, str]) -> Answered:
    return answer(status, {"Code": code, "Message": "m"}, headers)


@pytest.mark.parametrize(
    "echo",
    [
        " server string to sign is:POST&%2F&AccessKeyId%3DLTAI%26PhoneNoA%3D13912345678",
        " Server string to sign is: POST&%2F&PhoneNoA%3D13912345678",
        ". server canonical request is: POST\n/\nPhoneNoA=13912345678\n",
        " CanonicalRequest: POST / PhoneNoA=13912345678",
        " StringToSign: ACS3-HMAC-SHA256 13912345678",
    ],
)
def test_a_message_that_echoes_the_request_is_cut(echo):
    body = {"Code": "isp.SYSTEM_ERROR", "Message": "Specified call failed" + echo}
    verdict = classify(answer(500, body))
    assert "13912345678" not in verdict.message
    assert "to sign" not in verdict.message.lower()
    assert "canonical" not in verdict.message.lower()
    assert verdict.message.startswith("Dyplsapi answered isp.SYSTEM_ERROR: Specified call failed")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "SignatureDoesNotMatch"),
        (400, "IncompleteSignature"),
        (404, "InvalidAccessKeyId.NotFound"),
        (400, "InvalidSecurityToken.Expired"),
        (400, "InvalidTimeStamp.Expired"),
        (400, "MissingParameter"),
        (400, "InvalidParameter.Format"),
        (401, ""),
        (403, ""),
        (400, "Brand.New"),
    ],
)
def test_signing_credential_and_request_form_messages_are_never_passed_on(status, code):
    """However the gateway words its echo (any case, any name), none of it is passed on: the
    project's own message says what to fix."""
    echo = (
        "Specified signature is not matched with our calculation. Server String To Sign is: "
        "POST&%2F&PhoneNoA%3D13912345678%26SecurityToken%3DCAIS-token; CanonicalRequest: x"
    )
    body = {"Code": code, "Message": echo, "RequestId": "R-9"} if code else echo.encode()
    verdict = classify(answer(status, body))
    assert verdict.kind is Kind.CONFIG
    for leaked in ("13912345678", "139****5678", "CAIS-token", "not matched", "To Sign"):
        assert leaked not in verdict.message
    assert verdict.message.startswith(f"Dyplsapi answered {code or f'HTTP {status}'}.")


def test_a_rejected_signature_names_the_settings_to_check():
    message = classify(gateway(400, "SignatureDoesNotMatch")).message
    assert "ALIBABA_CLOUD_ACCESS_KEY_SECRET" in message
    assert "DYPLS_SIGNATURE_VERSION" in message


def test_phone_numbers_in_upstream_messages_are_masked_and_length_is_capped():
    message = safe_message("number 13912345678 is bound " + "x" * 1000)
    assert "13912345678" not in message and "139****5678" in message
    assert len(message) == 300 and message.endswith("…")
    assert safe_message("x" * 300) == "x" * 300  # exactly at the cap: kept whole


# What each verdict tells the caller: the setting to fix, or what happened on the wire.
MESSAGES = [
    (answer(401, b""), "ALIBABA_CLOUD_ACCESS_KEY_ID"),
    (answer(403, b"denied"), "ALIBABA_CLOUD_ACCESS_KEY_ID"),
    (answer(300, b""), "DYPLS_ENDPOINT"),
    (answer(302, b""), "DYPLS_ENDPOINT"),
    (answer(399, b""), "DYPLS_ENDPOINT"),
    (answer(400, {"Code": "Brand.New"}), "report it as a defect"),
    (answer(499, b""), "report it as a defect"),
    (answer(500, b""), "may or may not exist"),
    (gateway(400, "SignatureDoesNotMatch"), "DYPLS_SIGNATURE_VERSION"),
    (gateway(400, "InvalidTimeStamp.Expired"), "clock"),
    (gateway(404, "InvalidApi.NotFound"), "DYPLS_ENDPOINT"),
    (business("isp.RAM_PERMISSION_DENY"), "ram-policy.json"),
    (business("isv.OUT_OF_SERVICE"), "activate the product"),
    (gateway(400, "SignatureNonceUsed"), "saw this request twice"),
    (answer(200, b""), "HTTP 200 with a body that is not a JSON object; the binding may exist"),
    (answer(200, {"RequestId": "R"}), "HTTP 200 without a Code"),
    (answer(202, OK_BODY), "HTTP 202 (not 200) with Code OK"),
    (answer(200, {"Code": "OK"}), "HTTP 200 OK without a complete SecretBindDTO"),
    (answer(200, {"Code": "Weird"}), "HTTP 200 with the unknown code Weird"),
    (NotSent("connection refused"), "(connection refused); nothing was sent. Check DYPLS_ENDPOINT"),
    (NoAnswer("timed out", timed_out=True), "DYPLS_READ_TIMEOUT"),
    (NoAnswer("connection reset", timed_out=False), "broke after the request was sent"),
    (business("isv.MOBILE_NUMBER_ILLEGAL"), "Dyplsapi answered isv.MOBILE_NUMBER_ILLEGAL: m"),
]


@pytest.mark.parametrize(("exchange", "said"), MESSAGES)
def test_every_verdict_says_what_to_do(exchange, said):
    assert said in classify(exchange).message


def test_the_message_of_a_binding_is_dyplsapis():
    verdict = classify(answer(200, {**OK_BODY, "Message": "Bound"}))
    assert verdict.message == "Bound"
    assert classify(answer(200, {**OK_BODY, "Message": ""})).message == "OK"


def test_retry_hints_that_are_not_whole_numbers_are_ignored():
    for headers in (
        {"x-acs-retry-after": "1.5"},
        {"retry-after": "soon"},
        {"x-acs-retry-after": ""},
    ):
        assert classify(gateway_with(400, "Throttling", headers)).retry_after is None
    both = {"x-acs-retry-after": "500", "retry-after": "9"}
    assert classify(gateway_with(400, "Throttling", both)).retry_after == 0.5  # the gateway's own
