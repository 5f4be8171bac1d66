"""Signature computation and request verification for ACS3-HMAC-SHA256 (V3) and HMAC-SHA1 (V1).

Written from the published algorithm, independently of the function's own signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from .clock import parse_utc_stamp
from .config import API_VERSION, Credential
from .errors import GatewayError, incomplete_signature, missing_parameter

V3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_CLOCK_SKEW_SECONDS = 15 * 60
V1_COMMON = (
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
)


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of the UTF-8 bytes; only A-Z a-z 0-9 - _ . ~ stay literal."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by name, `enc(k)=enc(v)` joined with `&`."""
    return "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))


def v3_canonical_request(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> str:
    """The V3 canonical request; every entry of `headers` is signed."""
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
    return "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers,
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def v3_string_to_sign(canonical_request: str) -> str:
    """Return `ACS3-HMAC-SHA256`, a newline, and the hex SHA-256 of the canonical request."""
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{V3_ALGORITHM}\n{digest}"


def v3_signature(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
) -> str:
    """Hex HMAC-SHA256 of the V3 string to sign, keyed by the bare secret."""
    string_to_sign = v3_string_to_sign(v3_canonical_request(method, path, query, headers, body))
    return hmac.new(
        secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """`METHOD&%2F&enc(canonical query)`; a `Signature` entry is left out."""
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(unsigned))}"


def v1_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64 HMAC-SHA1 of the V1 string to sign, keyed by secret + `&`."""
    mac = hmac.new(
        f"{secret}&".encode(),
        v1_string_to_sign(method, params).encode("utf-8"),
        hashlib.sha1,
    )
    return base64.b64encode(mac.digest()).decode("ascii")


@dataclass(frozen=True)
class Authorization:
    """The parts of an ACS3-HMAC-SHA256 Authorization header."""

    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True)
class VerifiedRequest:
    """What a request that passed verification claims."""

    signature_version: str
    action: str
    access_key_id: str
    nonce: str


def parse_authorization(value: str) -> Authorization:
    """Split a V3 Authorization header; raises IncompleteSignature when garbled."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != V3_ALGORITHM:
        raise incomplete_signature(f"Unsupported signature algorithm {algorithm!r}.")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, val = item.strip().partition("=")
        if sep:
            parts[name.strip()] = val.strip()
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not parts.get(name):
            raise incomplete_signature(f"Authorization lacks {name}.")
    names = tuple(n.strip().lower() for n in parts["SignedHeaders"].split(";") if n.strip())
    return Authorization(parts["Credential"], names, parts["Signature"])


def api_not_found() -> GatewayError:
    """Return the gateway error for an unknown action or path."""
    return GatewayError(
        404, "InvalidApi.NotFound", "Specified api is not found, please check your url and method."
    )


def check_api(action: str, version: str, known_actions: Collection[str]) -> None:
    """Reject a wrong API version or an unknown action."""
    if version != API_VERSION:
        raise GatewayError(400, "InvalidVersion", "Specified parameter Version is not valid.")
    if action not in known_actions:
        raise api_not_found()


def check_timestamp(text: str, now: float) -> None:
    """Reject a malformed timestamp or one more than 15 minutes from `now`."""
    stamp = parse_utc_stamp(text)
    if stamp is None:
        raise GatewayError(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        )
    if abs(stamp - now) > MAX_CLOCK_SKEW_SECONDS:
        raise GatewayError(
            400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        )


def lookup_credential(
    access_key_id: str, token: str | None, credentials: Mapping[str, Credential]
) -> Credential:
    """Find the credential and check the security token against it."""
    credential = credentials.get(access_key_id)
    if credential is None:
        raise GatewayError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if not credential.active:
        raise GatewayError(400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled.")
    if credential.security_token is None:
        if token:
            raise GatewayError(
                400,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "Specified SecurityToken mismatch with the AccessKey.",
            )
        return credential
    if not token:
        raise GatewayError(
            400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed."
        )
    if not hmac.compare_digest(token.encode("utf-8"), credential.security_token.encode("utf-8")):
        raise GatewayError(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "Specified SecurityToken mismatch with the AccessKey.",
        )
    return credential


def _signature_mismatch(server_string: str) -> GatewayError:
    return GatewayError(
        400,
        "SignatureDoesNotMatch",
        "Specified signature is not matched with our calculation. "
        f"server string to sign is:{server_string}",
    )


def _check_signed_headers(auth: Authorization, headers: Mapping[str, str], body: bytes) -> None:
    signed = set(auth.signed_headers)
    required = {"host"} | {name for name in headers if name.startswith("x-acs-")}
    if body:
        required.add("content-type")
    missing = sorted(required - signed)
    if missing:
        raise incomplete_signature(f"SignedHeaders must include {', '.join(missing)}.")
    absent = sorted(name for name in signed if name not in headers)
    if absent:
        raise incomplete_signature(f"Signed header {', '.join(absent)} is not present.")


def verify_v3(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, Credential],
    now: float,
    known_actions: Collection[str],
) -> VerifiedRequest:
    """Verify an ACS3-HMAC-SHA256 request; `headers` keys are lower-case."""
    auth = parse_authorization(headers.get("authorization", ""))
    for name in (
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ):
        if not headers.get(name):
            raise missing_parameter(name)
    _check_signed_headers(auth, headers, body)
    check_api(headers["x-acs-action"], headers["x-acs-version"], known_actions)
    check_timestamp(headers["x-acs-date"], now)
    credential = lookup_credential(
        auth.access_key_id, headers.get("x-acs-security-token"), credentials
    )
    if headers["x-acs-content-sha256"].strip().lower() != hashlib.sha256(body).hexdigest():
        raise GatewayError(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation. "
            "x-acs-content-sha256 does not match the SHA-256 of the request body.",
        )
    signed = {name: headers[name] for name in auth.signed_headers}
    canonical = v3_canonical_request(method, path, query, signed, body)
    expected = hmac.new(
        credential.secret.encode("utf-8"),
        v3_string_to_sign(canonical).encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, auth.signature.lower()):
        raise _signature_mismatch(v3_string_to_sign(canonical))
    return VerifiedRequest(
        "V3", headers["x-acs-action"], auth.access_key_id, headers["x-acs-signature-nonce"]
    )


def verify_v1(
    method: str,
    params: Mapping[str, str],
    credentials: Mapping[str, Credential],
    now: float,
    known_actions: Collection[str],
) -> VerifiedRequest:
    """Verify an HMAC-SHA1 request whose parameters (query and form) are `params`."""
    for name in ("Action", "Version"):
        if not params.get(name):
            raise missing_parameter(name)
    check_api(params["Action"], params["Version"], known_actions)
    for name in V1_COMMON:
        if not params.get(name):
            raise missing_parameter(name)
    if params["SignatureMethod"] != "HMAC-SHA1":
        raise incomplete_signature("SignatureMethod must be HMAC-SHA1.")
    if params["SignatureVersion"] != "1.0":
        raise incomplete_signature("SignatureVersion must be 1.0.")
    check_timestamp(params["Timestamp"], now)
    credential = lookup_credential(params["AccessKeyId"], params.get("SecurityToken"), credentials)
    expected = v1_signature(method, params, credential.secret)
    if not hmac.compare_digest(expected.encode("utf-8"), params["Signature"].encode("utf-8")):
        raise _signature_mismatch(v1_string_to_sign(method, params))
    return VerifiedRequest("V1", params["Action"], params["AccessKeyId"], params["SignatureNonce"])


def signature_version(headers: Mapping[str, str]) -> str:
    """`V3` when an Authorization header is present, else `V1`."""
    return "V3" if "authorization" in headers else "V1"


def verify_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    form: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    credentials: Mapping[str, Credential],
    now: float,
    known_actions: Collection[str],
) -> VerifiedRequest:
    """Verify a request as the gateway does; raises GatewayError. `headers` keys are lower-case.

    The nonce is returned, not checked: replay tracking belongs to the caller.
    """
    if method.upper() not in ("GET", "POST"):
        raise GatewayError(
            400, "UnsupportedHTTPMethod", f"Specified HTTP method {method} is not supported."
        )
    if path != "/":
        raise api_not_found()
    if signature_version(headers) == "V3":
        return verify_v3(method, path, query, headers, body, credentials, now, known_actions)
    return verify_v1(method, {**query, **form}, credentials, now, known_actions)
