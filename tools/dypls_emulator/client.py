"""A minimal signed Dyplsapi client for exercising the emulator (V3 and V1 signatures)."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .clock import format_utc_stamp
from .config import API_VERSION, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from .verify import V3_ALGORITHM, canonical_query, v1_signature, v3_signature

FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass
class PreparedCall:
    """A signed request; `raw_query` replaces the encoded query on the wire when set."""

    method: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    raw_query: str | None = None

    def target(self) -> str:
        """Path and query string to send."""
        query = canonical_query(self.query) if self.raw_query is None else self.raw_query
        return f"/?{query}" if query else "/"


@dataclass
class Reply:
    """Status, lower-case headers and body of an answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> dict[str, object]:
        """The body parsed as a JSON object."""
        data = json.loads(self.body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data

    def xml(self) -> ET.Element:
        """The body parsed as XML."""
        return ET.fromstring(self.body)  # noqa: S314 - the emulator's own loopback answer

    @property
    def code(self) -> str | None:
        """`Code` from a JSON or XML body."""
        if self.headers.get("content-type", "").startswith("text/xml"):
            return self.xml().findtext("Code")
        code = self.json().get("Code")
        return None if code is None else str(code)


class SignedClient:
    """Signs and sends RPC calls to one endpoint."""

    def __init__(
        self,
        url: str,
        access_key_id: str = DEFAULT_ACCESS_KEY_ID,
        secret: str = DEFAULT_ACCESS_KEY_SECRET,
        security_token: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        split = urlsplit(url)
        self.host = split.netloc
        self.access_key_id = access_key_id
        self.secret = secret
        self.security_token = security_token
        self.timeout = timeout

    def prepare_v3(
        self,
        action: str,
        params: dict[str, str],
        *,
        method: str = "POST",
        in_body: bool = False,
        nonce: str | None = None,
        date: str | None = None,
        version: str = API_VERSION,
    ) -> PreparedCall:
        """Sign with ACS3-HMAC-SHA256; parameters go in the query or a form body."""
        body = canonical_query(params).encode("utf-8") if in_body else b""
        query = {} if in_body else dict(params)
        headers = {
            "host": self.host,
            "x-acs-action": action,
            "x-acs-version": version,
            "x-acs-date": date or format_utc_stamp(time.time()),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        }
        if self.security_token is not None:
            headers["x-acs-security-token"] = self.security_token
        if in_body:
            headers["content-type"] = FORM_TYPE
        signature = v3_signature(method, "/", query, headers, body, self.secret)
        headers["Authorization"] = (
            f"{V3_ALGORITHM} Credential={self.access_key_id},"
            f"SignedHeaders={';'.join(sorted(headers))},Signature={signature}"
        )
        return PreparedCall(method, query, headers, body)

    def prepare_v1(
        self,
        action: str,
        params: dict[str, str],
        *,
        method: str = "POST",
        fmt: str | None = "JSON",
        in_body: bool = False,
        nonce: str | None = None,
        timestamp: str | None = None,
        version: str = API_VERSION,
    ) -> PreparedCall:
        """Sign with HMAC-SHA1; `fmt=None` leaves Format out."""
        signed = {
            **params,
            "Action": action,
            "Version": version,
            "AccessKeyId": self.access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": nonce or str(uuid.uuid4()),
            "Timestamp": timestamp or format_utc_stamp(time.time()),
        }
        if fmt is not None:
            signed["Format"] = fmt
        if self.security_token is not None:
            signed["SecurityToken"] = self.security_token
        signed["Signature"] = v1_signature(method, signed, self.secret)
        headers = {"host": self.host}
        if in_body:
            headers["content-type"] = FORM_TYPE
            return PreparedCall(method, {}, headers, canonical_query(signed).encode("utf-8"))
        return PreparedCall(method, signed, headers)

    def send(self, call: PreparedCall) -> Reply:
        """Send; connection errors propagate."""
        conn = http.client.HTTPConnection(self.host, timeout=self.timeout)
        try:
            conn.request(call.method, call.target(), body=call.body or None, headers=call.headers)
            response = conn.getresponse()
            headers = {k.lower(): v for k, v in response.getheaders()}
            return Reply(response.status, headers, response.read())
        finally:
            conn.close()

    def v3(self, action: str, params: dict[str, str], **options: object) -> Reply:
        """Prepare with `prepare_v3` and send."""
        return self.send(self.prepare_v3(action, params, **options))  # type: ignore[arg-type]

    def v1(self, action: str, params: dict[str, str], **options: object) -> Reply:
        """Prepare with `prepare_v1` and send."""
        return self.send(self.prepare_v1(action, params, **options))  # type: ignore[arg-type]
