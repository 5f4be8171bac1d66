"""The signer against every published vector (signing.md, Alibaba Cloud docs and official SDKs)."""

from __future__ import annotations

import hashlib

import pytest

from axn_bind.config import Credentials
from axn_bind.signing import (
    canonical_query,
    percent_encode,
    sign_v1,
    sign_v3,
    v1_signature,
    v1_string_to_sign,
)
from tests import vectors

PLAIN = Credentials(vectors.BIND_KEY_ID, vectors.BIND_SECRET)
STS = Credentials(vectors.BIND_STS_KEY_ID, vectors.BIND_SECRET, vectors.BIND_STS_TOKEN)


def _v3_signature(req) -> str:
    return req.headers["authorization"].rsplit("Signature=", 1)[1]


@pytest.mark.parametrize(("raw", "encoded"), vectors.PERCENT_ENCODED.items())
def test_percent_encoding_follows_rfc3986(raw, encoded):
    assert percent_encode(raw) == encoded


def test_v3_official_vector():
    req = sign_v3(
        method="POST",
        host=vectors.V3_DOC_HOST,
        action=vectors.V3_DOC_ACTION,
        version=vectors.V3_DOC_VERSION,
        params=vectors.V3_DOC_PARAMS,
        credentials=Credentials(vectors.V3_DOC_KEY_ID, vectors.V3_DOC_SECRET),
        date=vectors.V3_DOC_DATE,
        nonce=vectors.V3_DOC_NONCE,
    )
    assert _v3_signature(req) == vectors.V3_DOC_SIGNATURE
    assert req.headers["authorization"] == vectors.V3_DOC_AUTHORIZATION
    assert req.headers["x-acs-content-sha256"] == vectors.EMPTY_SHA256


def _bind_v3(creds: Credentials):
    return sign_v3(
        method="POST",
        host=vectors.BIND_HOST,
        action=vectors.BIND_ACTION,
        params=vectors.BIND_PARAMS,
        credentials=creds,
        date=vectors.BIND_DATE,
        nonce=vectors.BIND_NONCE,
    )


def test_v3_bind_vector_and_canonical_query():
    assert canonical_query(vectors.BIND_PARAMS) == vectors.BIND_CANONICAL_QUERY
    req = _bind_v3(PLAIN)
    assert _v3_signature(req) == vectors.BIND_V3_SIGNATURE
    assert req.params == vectors.BIND_PARAMS  # V3 adds nothing to the query
    assert "x-acs-security-token" not in req.headers


def test_v3_bind_vector_hashed_canonical_request():
    # Rebuild the canonical request from the signed headers and compare its hash with the vector.
    req = _bind_v3(PLAIN)
    names = sorted(k for k in req.headers if k != "authorization")
    canonical = "\n".join(
        [
            "POST",
            "/",
            canonical_query(vectors.BIND_PARAMS),
            "".join(f"{n}:{req.headers[n]}\n" for n in names),
            ";".join(names),
            req.headers["x-acs-content-sha256"],
        ]
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == vectors.BIND_V3_CANONICAL_SHA256


def test_v3_bind_vector_with_sts_token():
    req = _bind_v3(STS)
    assert req.headers["x-acs-security-token"] == vectors.BIND_STS_TOKEN
    assert "x-acs-security-token" in req.headers["authorization"]
    assert _v3_signature(req) == vectors.BIND_V3_STS_SIGNATURE


@pytest.mark.parametrize(
    ("params", "secret", "expected"),
    vectors.V1_DOC_VECTORS.values(),
    ids=vectors.V1_DOC_VECTORS.keys(),
)
def test_v1_official_vectors(params, secret, expected):
    assert v1_signature("GET", params, secret) == expected


def _bind_v1(method: str, creds: Credentials, params=vectors.BIND_PARAMS, nonce=vectors.BIND_NONCE):
    return sign_v1(
        method=method,
        action=vectors.BIND_ACTION,
        params=params,
        credentials=creds,
        timestamp=vectors.BIND_DATE,
        nonce=nonce,
    )


def test_v1_bind_post_vector():
    req = _bind_v1("POST", PLAIN)
    assert req.params["Signature"] == vectors.BIND_V1_POST_SIGNATURE
    assert req.params["Format"] == "JSON"
    unsigned = {k: v for k, v in req.params.items() if k != "Signature"}
    assert v1_string_to_sign("POST", unsigned).startswith(vectors.BIND_V1_POST_STRING_TO_SIGN_START)


def test_v1_bind_get_vector():
    assert _bind_v1("GET", PLAIN).params["Signature"] == vectors.BIND_V1_GET_SIGNATURE


def test_v1_bind_post_with_sts_vector():
    req = _bind_v1("POST", STS)
    assert req.params["SecurityToken"] == vectors.BIND_STS_TOKEN
    assert req.params["Signature"] == vectors.BIND_V1_STS_POST_SIGNATURE


def test_v1_case_sensitive_sort_and_special_characters_vector():
    req = _bind_v1("POST", PLAIN, vectors.SORT_PARAMS, nonce=vectors.SORT_NONCE)
    assert req.params["Signature"] == vectors.SORT_SIGNATURE
    assert canonical_query(req.params).startswith("ASRModelId=m-1&ASRStatus=true&AccessKeyId=")
