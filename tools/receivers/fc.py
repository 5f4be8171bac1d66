"""A Function Compute API stand-in on loopback that takes asynchronous invocations through both
APIs, verifies each one with code of its own, records what it accepted, and answers scripted
faults.

    with FcReceiver(keys) as rx:                  # keys: access key id -> (secret, STS token)
        rx.url                                     # the endpoint: http://127.0.0.1:PORT
        rx.fail(503, retry_after="1")              # the next invocation gets 503
        rx.fail(202, delay=1.0, accept=True)       # accepted, but answered a second late
        rx.misbehave("drip")                       # a dripping or huge answer (faults.py)
        ...
        rx.events                                  # accepted events, in arrival order
        rx.invocations                             # every request: api, names, status, reason

**FC 3.0** (``POST /2023-03-30/functions/{function}/invocations[?qualifier=…]``): the
ACS3-HMAC-SHA256 signature is recomputed from what arrived on the wire with the official SDK's
own function (``alibabacloud_tea_openapi.utils.Utils.get_authorization``, as
tests/unit/test_signing_sdk.py does) over the headers the ``authorization`` names, which must include
``host``, ``content-type`` and every ``x-acs-*`` header; ``x-acs-content-sha256`` must match the
body, ``x-acs-date`` be within 15 minutes, the nonce be new, the STS token be the key's, and
``x-acs-action`` / ``x-acs-version`` be ``InvokeFunction`` / ``2023-03-30``. The body must be
``application/octet-stream``.

**FC 2.0** (``POST /2016-08-15/services/{service}[.{qualifier}]/functions/{function}/invocations``):
``authorization: FC <AccessKeyId>:<Base64(HMAC-SHA256(secret, StringToSign))>`` with
``StringToSign = METHOD\\n Content-MD5\\n Content-Type\\n Date\\n`` + every ``x-fc-*`` header
lower-cased and sorted as ``name:value\\n`` + the unescaped path (+ ``\\n`` and the sorted
``k=v`` query lines when there is a query), computed here; ``date`` within 15 minutes; the STS
token, when the key has one, in the (signed) ``x-fc-security-token``.

Both: ``x-fc-invocation-type: Async``; the async task id (``x-fc-async-task-id`` for 3.0,
``x-fc-stateful-async-invocation-id`` for 2.0) starts with a letter or ``_`` and holds letters,
digits, ``_`` and ``-`` (128 at most); the body is one CloudEvents 1.0 event in structured JSON.
A request that does not verify is answered 403 (signature) or 400 (shape) and recorded with the
reason. A task id the function already accepted is answered 409 (FC's de-duplication); a new one
is accepted with 202. ``functions`` (3.0 names, or ``service/function`` for 2.0) limits which
functions exist: the others are answered 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from alibabacloud_tea_openapi.utils import Utils as SdkUtils
from darabonba.request import DaraRequest

from .faults import Misbehaving

V3 = "ACS3-HMAC-SHA256"
V3_PATH = re.compile(r"/2023-03-30/functions/(?P<function>[^/]+)/invocations")
V2_PATH = re.compile(
    r"/2016-08-15/services/(?P<service>[^/.]+)(?:\.(?P<qualifier>[^/]+))?"
    r"/functions/(?P<function>[^/]+)/invocations"
)
TASK_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
MAX_SKEW = timedelta(minutes=15)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class Fault:
    status: int
    code: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    accept: bool = False  # take the invocation first, then answer ``status`` after ``delay``


class Refused(Exception):
    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


def fc2_string_to_sign(
    method: str, path: str, headers: Mapping[str, str], query: Iterable[tuple[str, str]] = ()
) -> str:
    """FC 2.0's string to sign, from lower-cased header names and the unescaped path."""
    fc = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers) if k.startswith("x-fc-"))
    resource = path
    lines = sorted(f"{k}={v}" for k, v in query)
    if lines:
        resource += "\n" + "\n".join(lines)
    return "\n".join(
        (
            method.upper(),
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            headers.get("date", ""),
            fc + resource,
        )
    )


def fc2_authorization(
    access_key_id: str,
    secret: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Iterable[tuple[str, str]] = (),
) -> str:
    text = fc2_string_to_sign(method, path, headers, query)
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return f"FC {access_key_id}:{base64.b64encode(mac).decode()}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a late answer closed its socket: not an error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FcReceiver(Misbehaving):
    def __init__(
        self,
        keys: Mapping[str, tuple[str, str | None]],
        *,
        functions: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.keys = dict(keys)
        self.functions = set(functions) if functions is not None else None
        self.faults: list[Fault] = []
        self.events: list[dict[str, Any]] = []
        self.invocations: list[dict[str, Any]] = []
        self.tasks: dict[str, set[str]] = {}  # function key -> accepted task ids
        self.nonces: set[str] = set()
        self.lock = threading.Lock()
        Misbehaving.__init__(self)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer, extra = receiver._receive(
                    self.command, self.path, list(self.headers.items()), body
                )
                if receiver.misbehaved(self):
                    return
                data = json.dumps(answer).encode() if answer else b""
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST
            do_PUT = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = _Server((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ------------------------------------------------------------------ scripting and results

    def fail(
        self,
        status: int,
        *,
        code: str | None = None,
        retry_after: str | None = None,
        delay: float = 0.0,
        count: int = 1,
        accept: bool = False,
    ) -> None:
        """Answer the next ``count`` verified invocations with ``status``, ``delay`` seconds
        late; with ``accept`` the invocation is taken first, as when only the answer is lost."""
        with self.lock:
            self.faults.extend(
                Fault(status, code, retry_after, delay, accept) for _ in range(count)
            )

    @property
    def statuses(self) -> list[int]:
        return [i["status"] for i in self.invocations]

    # ------------------------------------------------------------------ verification

    def _fresh(self, when: datetime | None) -> bool:
        return when is not None and abs(datetime.now(timezone.utc) - when) <= MAX_SKEW

    def _verify_v3(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> None:
        authorization = headers.get("authorization", "")
        if not authorization.startswith(V3 + " "):
            raise Refused(403, "InvalidArgument", "not signed with ACS3-HMAC-SHA256")
        fields = dict(
            item.strip().partition("=")[::2] for item in authorization[len(V3) + 1 :].split(",")
        )
        key_id = fields.get("Credential", "")
        if key_id not in self.keys:
            raise Refused(403, "InvalidAccessKeyID", "unknown access key id")
        secret, token = self.keys[key_id]
        signed = [name for name in fields.get("SignedHeaders", "").split(";") if name]
        required = {"host", "content-type", *(n for n in headers if n.startswith("x-acs-"))}
        if missing := sorted(required - set(signed)):
            raise Refused(403, "SignatureNotMatch", f"headers not signed: {missing}")
        if absent := [name for name in signed if name not in headers]:
            raise Refused(403, "SignatureNotMatch", f"signed headers absent: {absent}")
        if token is not None and headers.get("x-acs-security-token") != token:
            raise Refused(403, "InvalidSecurityToken", "security token missing or wrong")
        payload = SdkUtils.hex_encode(SdkUtils.hash(body, V3))
        if headers.get("x-acs-content-sha256") != payload:
            raise Refused(403, "SignatureNotMatch", "x-acs-content-sha256 does not match")
        try:
            date = datetime.strptime(headers.get("x-acs-date", ""), TIME_FORMAT)
        except ValueError:
            date = None
        if not self._fresh(date and date.replace(tzinfo=timezone.utc)):
            raise Refused(403, "RequestTimeTooSkewed", "x-acs-date missing, malformed or stale")
        request = DaraRequest()
        request.method = method
        request.pathname = path
        request.query = dict(query)
        request.headers = {name: headers[name] for name in signed}
        expected = SdkUtils.get_authorization(request, V3, payload, key_id, secret)
        if not hmac.compare_digest(expected.encode(), authorization.encode()):
            raise Refused(403, "SignatureNotMatch", "signature mismatch")
        nonce = headers.get("x-acs-signature-nonce", "")
        with self.lock:
            if not nonce or nonce in self.nonces:
                raise Refused(403, "SignatureNonceUsed", "signature nonce missing or used")
            self.nonces.add(nonce)
        if headers.get("x-acs-action") != "InvokeFunction":
            raise Refused(400, "InvalidArgument", "x-acs-action is not InvokeFunction")
        if headers.get("x-acs-version") != "2023-03-30":
            raise Refused(400, "InvalidArgument", "x-acs-version is not 2023-03-30")
        if headers.get("content-type") != "application/octet-stream":
            raise Refused(400, "InvalidArgument", "content-type is not application/octet-stream")

    def _verify_v2(
        self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> None:
        authorization = headers.get("authorization", "")
        found = re.fullmatch(r"FC ([^:\s]+):(\S+)", authorization)
        if not found:
            raise Refused(403, "InvalidArgument", "authorization is not FC <AK>:<signature>")
        key_id = found.group(1)
        if key_id not in self.keys:
            raise Refused(403, "InvalidAccessKeyID", "unknown access key id")
        secret, token = self.keys[key_id]
        if token is not None and headers.get("x-fc-security-token") != token:
            raise Refused(403, "InvalidSecurityToken", "security token missing or wrong")
        try:
            date = parsedate_to_datetime(headers.get("date", ""))
        except (TypeError, ValueError):
            date = None
        if not self._fresh(date):
            raise Refused(403, "RequestTimeTooSkewed", "date missing, malformed or stale")
        expected = fc2_authorization(key_id, secret, method, unquote(path), headers, query)
        if not hmac.compare_digest(expected.encode(), authorization.encode()):
            raise Refused(403, "SignatureNotMatch", "signature mismatch")

    @staticmethod
    def _event(body: bytes) -> dict[str, Any]:
        try:
            event = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "InvalidArgument", "the body is not JSON") from None
        if not isinstance(event, dict) or event.get("specversion") != "1.0":
            raise Refused(400, "InvalidArgument", "the body is not a CloudEvents 1.0 event")
        for name in ("id", "source", "type"):
            if not isinstance(event.get(name), str) or not event[name]:
                raise Refused(400, "InvalidArgument", f"the event has no {name}")
        if not isinstance(event.get("data"), dict):
            raise Refused(400, "InvalidArgument", "the event's data is not an object")
        return event

    # ------------------------------------------------------------------ one request

    def _receive(
        self, method: str, target: str, header_items: list[tuple[str, str]], body: bytes
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        request_id = str(uuid.uuid4())
        parts = urlsplit(target)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        headers: dict[str, str] = {}
        for name, value in header_items:
            headers[name.lower()] = value
        record: dict[str, Any] = {
            "method": method,
            "path": parts.path,
            "query": dict(pairs),
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "request_id": request_id,
        }
        v3 = V3_PATH.fullmatch(parts.path)
        v2 = V2_PATH.fullmatch(parts.path)
        fault: Fault | None = None
        try:
            if method != "POST" or not (v3 or v2):
                raise Refused(404, "NotFound", "not an invocation path")
            if v3:
                record.update(api="3.0", function=v3["function"], service=None)
                record["qualifier"] = record["query"].get("qualifier")
                self._verify_v3(method, parts.path, record["query"], headers, body)
                task = headers.get("x-fc-async-task-id", "")
                key = v3["function"]
            else:
                assert v2 is not None
                record.update(api="2.0", function=v2["function"], service=v2["service"])
                record["qualifier"] = v2["qualifier"]
                self._verify_v2(method, parts.path, pairs, headers)
                task = headers.get("x-fc-stateful-async-invocation-id", "")
                key = f"{v2['service']}/{v2['function']}"
            record["task_id"] = task
            if headers.get("x-fc-invocation-type") != "Async":
                raise Refused(400, "InvalidArgument", "x-fc-invocation-type is not Async")
            if not TASK_ID.fullmatch(task):
                raise Refused(400, "InvalidArgument", "the async task id is missing or malformed")
            event = self._event(body)
            record["verified"] = True
            if self.functions is not None and key not in self.functions:
                raise Refused(404, "FunctionNotFound", f"function {key} does not exist")
            with self.lock:
                fault = self.faults.pop(0) if self.faults else None
            if fault is not None and not fault.accept:
                raise Refused(fault.status, fault.code or "Scripted", "scripted fault")
            with self.lock:
                seen = self.tasks.setdefault(key, set())
                duplicate = task in seen
                if not duplicate:
                    seen.add(task)
                    self.events.append(event)
            if duplicate:
                code = "AsyncTaskAlreadyExists" if v3 else "StatefulAsyncInvocationAlreadyExists"
                raise Refused(409, code, "the async task id was accepted before")
            if fault is not None and fault.status != 202:  # accepted, then answered otherwise
                raise Refused(fault.status, fault.code or "Scripted", "scripted fault")
            status, reason = 202, "accepted"
            answer: dict[str, Any] | None = None
        except Refused as refused:
            status, reason = refused.status, refused.reason
            if record.get("api") == "2.0":
                answer = {"ErrorCode": refused.code, "ErrorMessage": refused.reason}
            else:
                answer = {"Code": refused.code, "Message": refused.reason, "RequestId": request_id}
        record.setdefault("verified", False)
        record.update(status=status, reason=reason)
        with self.lock:
            self.invocations.append(record)
        if fault is not None and fault.delay:  # recorded first: the answer is what comes late
            time.sleep(fault.delay)
        extra = {"x-fc-request-id": request_id}
        if fault is not None and fault.retry_after:
            extra["Retry-After"] = fault.retry_after
        return status, answer, extra

    def __enter__(self) -> FcReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
