"""The emulator's verifier (tools/dypls_emulator/verify.py) against every vector in signing.md."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import vectors
from tools.dypls_emulator.clock import parse_utc_stamp
from tools.dypls_emulator.config import Credential
from tools.dypls_emulator.errors import GatewayError
from tools.dypls_emulator.verify import (
    canonical_query,
    percent_encode,
    v1_signature,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    verify_request,
)

V1_BIND = {**vectors.BIND_PARAMS, **vectors.BIND_V1_COMMON}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(("raw", "encoded"), vectors.PERCENT_ENCODED.items())
def test_percent_encoding_rules(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


@given(st.text())
def test_percent_encoding_is_reversible_and_unreserved_only(value: str) -> None:
    encoded = percent_encode(value)
    assert unquote(encoded) == value
    stripped = encoded.replace("%", "")
    assert all(c.isascii() and (c.isalnum() or c in "-_.~") for c in stripped)


def test_v3_official_vector() -> None:
    canonical = v3_canonical_request(
        "POST", "/", vectors.V3_DOC_PARAMS, vectors.V3_DOC_HEADERS, b""
    )
    assert _sha(canonical) == vectors.V3_DOC_CANONICAL_SHA256
    assert (
        v3_signature(
            "POST", "/", vectors.V3_DOC_PARAMS, vectors.V3_DOC_HEADERS, b"", vectors.V3_DOC_SECRET
        )
        == vectors.V3_DOC_SIGNATURE
    )


def test_v3_bind_vector() -> None:
    assert canonical_query(vectors.BIND_PARAMS) == vectors.BIND_CANONICAL_QUERY
    canonical = v3_canonical_request("POST", "/", vectors.BIND_PARAMS, vectors.BIND_V3_HEADERS, b"")
    assert _sha(canonical) == vectors.BIND_V3_CANONICAL_SHA256
    assert (
        v3_signature(
            "POST", "/", vectors.BIND_PARAMS, vectors.BIND_V3_HEADERS, b"", vectors.BIND_SECRET
        )
        == vectors.BIND_V3_SIGNATURE
    )


def test_v3_bind_vector_with_sts_token() -> None:
    headers = {**vectors.BIND_V3_HEADERS, "x-acs-security-token": vectors.BIND_STS_TOKEN}
    assert (
        v3_signature("POST", "/", vectors.BIND_PARAMS, headers, b"", vectors.BIND_SECRET)
        == vectors.BIND_V3_STS_SIGNATURE
    )


@pytest.mark.parametrize(
    ("params", "secret", "expected"),
    vectors.V1_DOC_VECTORS.values(),
    ids=vectors.V1_DOC_VECTORS.keys(),
)
def test_v1_official_vectors(params: dict[str, str], secret: str, expected: str) -> None:
    assert v1_signature("GET", params, secret) == expected


def test_v1_bind_post_vector() -> None:
    assert v1_string_to_sign("POST", V1_BIND).startswith(vectors.BIND_V1_POST_STRING_TO_SIGN_START)
    assert v1_signature("POST", V1_BIND, vectors.BIND_SECRET) == vectors.BIND_V1_POST_SIGNATURE


def test_v1_bind_get_vector() -> None:
    assert v1_signature("GET", V1_BIND, vectors.BIND_SECRET) == vectors.BIND_V1_GET_SIGNATURE


def test_v1_bind_sts_vector() -> None:
    params = {
        **V1_BIND,
        "AccessKeyId": vectors.BIND_STS_KEY_ID,
        "SecurityToken": vectors.BIND_STS_TOKEN,
    }
    assert v1_signature("POST", params, vectors.BIND_SECRET) == vectors.BIND_V1_STS_POST_SIGNATURE


def test_v1_case_sensitive_sort_vector() -> None:
    params = {**vectors.BIND_V1_COMMON, "SignatureNonce": vectors.SORT_NONCE, **vectors.SORT_PARAMS}
    names = [pair.split("=")[0] for pair in canonical_query(params).split("&")[:4]]
    assert names == ["ASRModelId", "ASRStatus", "AccessKeyId", "Action"]
    assert v1_signature("POST", params, vectors.BIND_SECRET) == vectors.SORT_SIGNATURE


def test_v1_signature_ignores_signature_parameter() -> None:
    signed = {**V1_BIND, "Signature": "anything"}
    assert v1_signature("POST", signed, vectors.BIND_SECRET) == v1_signature(
        "POST", V1_BIND, vectors.BIND_SECRET
    )


# --- verify_request on the same vectors, without a server -------------------------------------

CREDENTIALS = {
    vectors.BIND_KEY_ID: Credential(vectors.BIND_KEY_ID, vectors.BIND_SECRET),
    vectors.BIND_STS_KEY_ID: Credential(
        vectors.BIND_STS_KEY_ID, vectors.BIND_SECRET, vectors.BIND_STS_TOKEN
    ),
}
NOW = parse_utc_stamp(vectors.BIND_DATE) or 0.0
ACTIONS = ("BindAxnExtension",)


def _v3_headers(
    signature: str, access_key_id: str = vectors.BIND_KEY_ID, **extra: str
) -> dict[str, str]:
    headers = {**vectors.BIND_V3_HEADERS, **extra}
    names = ";".join(sorted(headers))
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={names},Signature={signature}"
    )
    return headers


def test_verify_request_accepts_v3_vector() -> None:
    headers = _v3_headers(vectors.BIND_V3_SIGNATURE)
    verified = verify_request(
        "POST", "/", vectors.BIND_PARAMS, {}, headers, b"", CREDENTIALS, NOW, ACTIONS
    )
    assert (verified.signature_version, verified.action, verified.nonce) == (
        "V3",
        "BindAxnExtension",
        vectors.BIND_NONCE,
    )


def test_verify_request_accepts_v3_sts_vector() -> None:
    headers = _v3_headers(
        vectors.BIND_V3_STS_SIGNATURE,
        vectors.BIND_STS_KEY_ID,
        **{"x-acs-security-token": vectors.BIND_STS_TOKEN},
    )
    verified = verify_request(
        "POST", "/", vectors.BIND_PARAMS, {}, headers, b"", CREDENTIALS, NOW, ACTIONS
    )
    assert verified.access_key_id == vectors.BIND_STS_KEY_ID


def test_verify_request_rejects_changed_parameter_in_v3_vector() -> None:
    headers = _v3_headers(vectors.BIND_V3_SIGNATURE)
    changed = {**vectors.BIND_PARAMS, "PhoneNoA": "13900000009"}
    with pytest.raises(GatewayError) as info:
        verify_request("POST", "/", changed, {}, headers, b"", CREDENTIALS, NOW, ACTIONS)
    assert (info.value.status, info.value.code) == (400, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("method", "signature"),
    [("POST", vectors.BIND_V1_POST_SIGNATURE), ("GET", vectors.BIND_V1_GET_SIGNATURE)],
)
def test_verify_request_accepts_v1_vectors(method: str, signature: str) -> None:
    params = {**V1_BIND, "Signature": signature}
    verified = verify_request(method, "/", params, {}, {}, b"", CREDENTIALS, NOW, ACTIONS)
    assert verified.signature_version == "V1"


def test_verify_request_v1_mismatch_reports_string_to_sign() -> None:
    params = {**V1_BIND, "Signature": vectors.BIND_V1_GET_SIGNATURE}
    with pytest.raises(GatewayError) as info:
        verify_request("POST", "/", params, {}, {}, b"", CREDENTIALS, NOW, ACTIONS)
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.message.endswith(
        "server string to sign is:" + v1_string_to_sign("POST", params)
    )
