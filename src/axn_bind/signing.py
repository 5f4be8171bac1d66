"""Alibaba Cloud RPC request signing: V3 (ACS3-HMAC-SHA256) and V1 (HMAC-SHA1, SignatureVersion 1.0).

Both produce a :class:`SignedRequest` (method, query parameters, headers, body) that the client sends
as it is. With ``form=True`` (what the Dyplsapi client uses) every parameter travels in an
``application/x-www-form-urlencoded`` body and the URL is a bare ``/``: a URL is what HTTP
libraries log at DEBUG, and the parameters hold phone numbers (and, under V1 with STS, the token
and the signature). Without it they go in the query string, as the official SDK sends them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import quote

from .config import Credentials
from .log import scrub

API_VERSION = "2017-05-25"
FORM = "application/x-www-form-urlencoded"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def percent_encode(value: str) -> str:
    """RFC 3986 over UTF-8: only ``A-Z a-z 0-9 - _ . ~`` stay literal; space is ``%20``."""
    if _UNRESERVED.fullmatch(value):  # most names and values (numbers, pool keys): as they are
        return value
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by name (case-sensitive byte order), each ``enc(k)=enc(v)``, joined by &."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def utc_timestamp(now: datetime | None = None) -> str:
    """UTC time as ``yyyy-MM-ddTHH:mm:ssZ``."""
    if now is None:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_nonce() -> str:
    """32 random hex digits (os.urandom: ``uuid`` would import ``platform`` and more on 3.10)."""
    return os.urandom(16).hex()


class SignedRequest(NamedTuple):
    """A signed request, ready to send as it is."""

    method: str
    params: dict[str, str]
    headers: Mapping[str, str] = MappingProxyType({})
    body: bytes = b""
    # What the signature covers (V3's canonical request, V1's string to sign), for a DEBUG line
    # after a rejected signature; it holds the parameters and any token: see masked_signed_text.
    signed_text: str = ""  # never shown: see __repr__

    @property
    def target(self) -> str:
        """The path and query to send: ``/`` alone when the parameters are in the body."""
        return f"/?{canonical_query(self.params)}" if self.params else "/"

    def __repr__(self) -> str:  # the signed text holds the parameters and any token
        return f"SignedRequest(method={self.method!r}, target=..., body={len(self.body)} bytes)"


def sign_v3(
    *,
    method: str,
    host: str,
    action: str,
    params: Mapping[str, str],
    credentials: Credentials,
    date: str,
    nonce: str,
    version: str = API_VERSION,
    body: bytes = b"",
    content_type: str | None = None,
    path: str = "/",
    form: bool = False,
) -> SignedRequest:
    """Sign with ACS3-HMAC-SHA256; the query (or, with ``form``, the body) holds the business
    parameters only.

    ``path`` is the canonical URI: ``/`` for RPC APIs such as Dyplsapi, the request's path for
    ROA APIs such as Function Compute 3.0 (already percent-encoded, exactly as sent)."""
    if form:
        body, content_type, params = canonical_query(params).encode(), FORM, {}
    body_hash = hashlib.sha256(body).hexdigest()
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": body_hash,
    }
    if credentials.security_token:
        headers["x-acs-security-token"] = credentials.security_token
    if content_type:
        headers["content-type"] = content_type
    signed = sorted(headers)
    canonical_request = "\n".join(
        (
            method.upper(),
            path,
            canonical_query(params),
            "".join(f"{name}:{headers[name].strip()}\n" for name in signed),
            ";".join(signed),
            body_hash,
        )
    )
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    signature = hmac.digest(
        credentials.access_key_secret.encode(), string_to_sign.encode(), "sha256"
    ).hex()
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={credentials.access_key_id},"
        f"SignedHeaders={';'.join(signed)},Signature={signature}"
    )
    return SignedRequest(method.upper(), dict(params), headers, body, canonical_request)


def v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def v1_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", string to sign)) over every parameter but Signature."""
    return _v1_sign(v1_string_to_sign(method, params), secret)


def _v1_sign(string_to_sign: str, secret: str) -> str:
    digest = hmac.digest((secret + "&").encode(), string_to_sign.encode(), "sha1")
    return base64.b64encode(digest).decode()


def sign_v1(
    *,
    method: str,
    action: str,
    params: Mapping[str, str],
    credentials: Credentials,
    timestamp: str,
    nonce: str,
    version: str = API_VERSION,
    form: bool = False,
) -> SignedRequest:
    """Sign with HMAC-SHA1 (SignatureVersion 1.0); common parameters join the query (or, with
    ``form``, the body)."""
    all_params = {
        **params,
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "AccessKeyId": credentials.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce,
        "Timestamp": timestamp,
    }
    if credentials.security_token:
        all_params["SecurityToken"] = credentials.security_token
    signed_text = v1_string_to_sign(method, all_params)
    all_params["Signature"] = _v1_sign(signed_text, credentials.access_key_secret)
    if form:
        body = canonical_query(all_params).encode()
        return SignedRequest(method.upper(), {}, {"content-type": FORM}, body, signed_text)
    return SignedRequest(method.upper(), all_params, signed_text=signed_text)


def masked_signed_text(signed: SignedRequest, credentials: Credentials) -> str:
    """``signed.signed_text`` fit for a DEBUG line: the token cut out (as sent, and encoded once
    or twice as V1 embeds it), every phone number masked."""
    text = signed.signed_text
    token = credentials.security_token
    if token:
        once = percent_encode(token)
        for form in (percent_encode(once), once, token):
            text = text.replace(form, "<security token>")
    return scrub(text)
