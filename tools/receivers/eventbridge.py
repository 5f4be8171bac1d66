"""An EventBridge PutEvents endpoint on loopback: checks every request the way the service
describes it (headers, the ``acs:`` HMAC-SHA1 signature, computed here on its own, the STS
headers, the CloudEvents batch body and the bus extension), records what it accepted, and answers
scripted faults, the partial failure that arrives as HTTP 200 included.

    with EventBridgeReceiver({"LTAI…": ("secret", None)}, bus="orders") as rx:
        rx.target_url()                          # eventbridge://orders?endpoint=http://127.0.0.1:…
        rx.fail(503, code="ServiceUnavailable")  # the next request gets 503
        rx.fail_entries("TooManyRequests")       # the next request: 200, FailedEntryCount 1
        rx.answer_raw(b"<html>", status=200)     # the next request: this body as it is
        rx.misbehave("flood")                    # ... or a dripping or huge answer (faults.py)
        ...
        rx.events                                # accepted events (the bus extension kept)
        rx.deliveries                            # every request: status, verified, reason, …

A request that does not verify is refused as the service would (403 for what concerns the
signature and the credentials, 400 for the rest) and recorded with the reason. A
SignatureDoesNotMatch answer quotes the string to sign (security token included), as some
services do, so that a client that echoes error messages would be caught. Nonces are recorded;
``reused_nonces`` counts any sent twice.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faults import Misbehaving

PUT_EVENTS = "/openapi/putEvents"
BATCH_TYPE = "application/cloudevents-batch+json; charset=utf-8"
EB_VERSION = "2015-06-06"
MAX_SKEW = 15 * 60
MAX_ENTRIES = 16
MAX_EVENT = 64 * 1024
MAX_REQUEST = 256 * 1024
_AUTHORIZATION = re.compile(r"acs:([^:\s]+):([A-Za-z0-9+/]+=*)")


@dataclass
class Fault:
    status: int = 200
    code: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    entry_code: str | None = None  # a partial failure: entries refused inside a 200 answer
    entry_message: str = ""
    indexes: tuple[int, ...] | None = None  # which entries fail (None: all)
    raw: bytes | None = None  # the answer's body as it is


@dataclass
class Refusal(Exception):
    status: int
    code: str
    reason: str
    message: str = ""


def _string_to_sign(method: str, path: str, headers: dict[str, str]) -> str:
    """The service's side of the signature, written apart from the client's."""
    lines = [method, headers.get("content-md5", ""), headers.get("content-type", "")]
    lines.append(headers.get("date", ""))
    acs = sorted((name, value) for name, value in headers.items() if name.startswith("x-acs"))
    return "\n".join(lines) + "\n" + "".join(f"{n}:{v}\n" for n, v in acs) + path


class EventBridgeReceiver(Misbehaving):
    def __init__(
        self,
        credentials: dict[str, tuple[str, str | None]],
        *,
        bus: str = "orders",
        account_id: str = "1234567890123456",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.credentials = dict(credentials)  # access key id -> (secret, STS token or None)
        self.bus = bus
        self.account_id = account_id
        self.faults: list[Fault] = []
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.nonces: list[str] = []
        self.lock = threading.Lock()
        Misbehaving.__init__(self)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, answer = receiver._receive(self.command, self.path, headers, body)
                if receiver.misbehaved(self):
                    return
                # A client that gave up waiting (a scripted slow answer) is not an error here.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host_header = f"{host}:{self.port}"
        self.endpoint = f"http://{host}:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- scripting ---------------------------------------------------------------------------

    def target_url(self, bus: str | None = None) -> str:
        """The AXN_PUBLISH_TO value that sends here."""
        return f"eventbridge://{bus or self.bus}?endpoint={self.endpoint}"

    def fail(
        self,
        status: int,
        *,
        code: str | None = None,
        retry_after: str | None = None,
        delay: float = 0.0,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` verified requests with ``status`` (after ``delay`` s)."""
        with self.lock:
            self.faults.extend(
                Fault(status, code, retry_after, delay) for _ in range(count)
            )  # fmt: skip

    def fail_entries(
        self,
        code: str = "InternalError",
        message: str = "scripted entry failure",
        *,
        indexes: tuple[int, ...] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` verified requests with HTTP 200 whose entries (all, or
        those at ``indexes``) carry ``ErrorCode`` and are not accepted."""
        with self.lock:
            self.faults.extend(
                Fault(entry_code=code, entry_message=message, indexes=indexes) for _ in range(count)
            )

    def answer_raw(self, body: bytes, *, status: int = 200, count: int = 1) -> None:
        """Answer the next ``count`` verified requests with ``body`` as it is."""
        with self.lock:
            self.faults.extend(Fault(status, raw=body) for _ in range(count))

    def delay(self, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` verified requests normally, but only after ``seconds``."""
        with self.lock:
            self.faults.extend(Fault(delay=seconds) for _ in range(count))

    @property
    def reused_nonces(self) -> int:
        return len(self.nonces) - len(set(self.nonces))

    @property
    def duplicates(self) -> int:
        ids = [(e.get("source"), e.get("id")) for e in self.events]
        return len(ids) - len(set(ids))

    # -- checking ----------------------------------------------------------------------------

    def _verify_headers(self, method: str, path: str, headers: dict[str, str]) -> None:
        if method != "POST":
            raise Refusal(405, "MethodNotAllowed", f"method {method}")
        if path != PUT_EVENTS:
            raise Refusal(404, "NotFound", f"path {path!r}")
        expected = {
            "accept": "application/json",
            "content-type": BATCH_TYPE,
            "x-acs-signature-method": "HMAC-SHA1",
            "x-acs-signature-version": "1.0",
            "x-eventbridge-version": EB_VERSION,
            "host": self.host_header,
        }
        for name, value in expected.items():
            if headers.get(name) != value:
                raise Refusal(400, "InvalidHeader", f"{name} is {headers.get(name)!r}")
        if not headers.get("x-acs-signature-nonce"):
            raise Refusal(400, "InvalidHeader", "no x-acs-signature-nonce")
        if "content-md5" in headers:
            raise Refusal(400, "InvalidHeader", "content-md5 is not sent by the client")
        date = headers.get("date", "")
        try:
            when = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise Refusal(400, "InvalidHeader", f"date {date!r} is not RFC 1123") from None
        if not date.endswith(" GMT"):
            raise Refusal(400, "InvalidHeader", f"date {date!r} is not in GMT")
        if abs(time.time() - when) > MAX_SKEW:
            raise Refusal(403, "RequestTimeTooSkewed", f"date {date!r} is too far from now")

    def _verify_signature(self, headers: dict[str, str]) -> None:
        match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        if match is None:
            raise Refusal(403, "SignatureDoesNotMatch", "authorization is not acs:<ak>:<sig>")
        key_id, given = match.groups()
        if key_id not in self.credentials:
            raise Refusal(403, "InvalidAccessKeyId", f"unknown access key id {key_id!r}")
        secret, token = self.credentials[key_id]
        if token is not None:
            if headers.get("x-acs-accesskey-id") != key_id:
                raise Refusal(403, "SecurityTokenInvalid", "x-acs-accesskey-id is not the key")
            if headers.get("x-acs-security-token") != token:
                raise Refusal(403, "SecurityTokenInvalid", "x-acs-security-token is wrong")
        elif "x-acs-security-token" in headers or "x-acs-accesskey-id" in headers:
            raise Refusal(403, "SecurityTokenInvalid", "STS headers with a permanent key")
        text = _string_to_sign("POST", PUT_EVENTS, headers)
        mac = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1)
        expected = base64.b64encode(mac.digest()).decode("ascii")
        if not hmac.compare_digest(expected, given):
            raise Refusal(
                403,
                "SignatureDoesNotMatch",
                "the signature does not verify",
                message=f"The request signature does not match. Server string to sign is: {text}",
            )

    def _verify_body(self, body: bytes) -> list[dict[str, Any]]:
        if len(body) > MAX_REQUEST:
            raise Refusal(400, "InvalidArgument", f"the request is {len(body)} bytes")
        try:
            batch = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Refusal(400, "InvalidArgument", "the body is not JSON") from None
        if not isinstance(batch, list) or not 1 <= len(batch) <= MAX_ENTRIES:
            raise Refusal(400, "InvalidArgument", "the body is not an array of 1 to 16 events")
        for n, entry in enumerate(batch):
            if not isinstance(entry, dict):
                raise Refusal(400, "InvalidArgument", f"entry {n} is not an object")
            size = len(json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode())
            if size > MAX_EVENT:
                raise Refusal(400, "InvalidArgument", f"entry {n} is {size} bytes")
            if entry.get("specversion") != "1.0":
                raise Refusal(400, "InvalidArgument", f"entry {n}: specversion is not 1.0")
            for name, limit in (("id", 128), ("source", 128), ("type", 64)):
                value = entry.get(name)
                if not isinstance(value, str) or not value or len(value) > limit:
                    raise Refusal(400, "InvalidArgument", f"entry {n}: bad {name}")
            bus = entry.get("aliyuneventbusname")
            if bus != self.bus:
                raise Refusal(400, "EventBusNotExist", f"entry {n}: bus {bus!r}")
            if entry.get("datacontenttype") == "application/json" and (
                "data_base64" in entry or not isinstance(entry.get("data"), (dict, list))
            ):
                raise Refusal(400, "InvalidArgument", f"entry {n}: data is not inline JSON")
        return batch

    # -- answering ---------------------------------------------------------------------------

    def _receive(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        request_id = uuid.uuid4().hex.upper()
        record: dict[str, Any] = {
            "body": body.decode("utf-8", "replace"),
            "nonce": headers.get("x-acs-signature-nonce"),
            "verified": False,
            "reason": None,
        }
        fault: Fault | None = None
        try:
            self._verify_headers(method, path, headers)
            self._verify_signature(headers)
            batch = self._verify_body(body)
        except Refusal as refusal:
            answer = {
                "code": refusal.code,
                "message": refusal.message or refusal.reason,
                "requestId": request_id,
            }
            record.update(
                status=refusal.status, code=refusal.code, reason=refusal.reason, answer=answer
            )
            self._record(record, headers, [])
            return refusal.status, {}, json.dumps(answer).encode()
        record["verified"] = True
        with self.lock:
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        extra = {"Retry-After": fault.retry_after} if fault and fault.retry_after else {}
        if fault is not None and fault.raw is not None:
            record.update(status=fault.status, code="raw")
            self._record(record, headers, [])
            return fault.status, extra, fault.raw
        if fault is not None and fault.status != 200:
            code = fault.code or ("TooManyRequests" if fault.status == 429 else "InternalError")
            record.update(status=fault.status, code=code)
            self._record(record, headers, [])
            answer = {"code": code, "message": "scripted fault", "requestId": request_id}
            return fault.status, extra, json.dumps(answer).encode()
        entries: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        entry_code = fault.entry_code if fault is not None else None
        for n, event in enumerate(batch):
            if entry_code is not None and (fault.indexes is None or n in fault.indexes):
                entries.append(
                    {"EventId": event["id"], "ErrorCode": entry_code,
                     "ErrorMessage": fault.entry_message}
                )  # fmt: skip
            else:
                entries.append({"EventId": event["id"], "TraceId": uuid.uuid4().hex})
                accepted.append(event)
        failed = len(batch) - len(accepted)
        record.update(status=200, code=None, failed=failed)
        self._record(record, headers, accepted)
        answer = {
            "RequestId": request_id,
            "ResourceOwnerAccountId": self.account_id,
            "FailedEntryCount": failed,
            "EntryList": entries,
        }
        return 200, extra, json.dumps(answer).encode()

    def _record(
        self, record: dict[str, Any], headers: dict[str, str], accepted: list[dict[str, Any]]
    ) -> None:
        with self.lock:
            self.headers.append(headers)
            self.deliveries.append(record)
            if record["nonce"]:
                self.nonces.append(record["nonce"])
            self.events.extend(accepted)

    def __enter__(self) -> EventBridgeReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
