"""An MNS (API 2015-06-06) endpoint on loopback for SendMessage and PublishMessage: checks every
request as MNS does (its own HMAC-SHA1 signature check, the headers, the date, the XML body),
records the messages it accepted, and answers scripted faults with MNS's error shape.

    with MnsReceiver("LTAI…", "secret", security_token="tok") as rx:
        rx.url("queue", "axn-events")     # mns://queue/axn-events?endpoint=http://127.0.0.1:PORT
        rx.fail(503)                      # the next request gets 503 InternalError
        rx.fail(400, "QpsLimitExceeded")  # ... or an MNS error code
        rx.fail(201, delay=1.0)           # ... or a slow answer (accepted after the delay)
        rx.skew = 3600                    # its clock runs an hour ahead: TimeExpired
        rx.misbehave("drip")              # a dripping or huge answer (faults.py)
        ...
        rx.events                         # the CloudEvents consumers would read, in order
        rx.messages                       # every accepted message: kind, name, body, id
        rx.requests                       # every request: path, status, code, headers, body

Only the queues and topics it was given exist (others answer 404 QueueNotExist/TopicNotExist).
A consumer of a queue decodes Base64 bodies (``decode_queues``, as FC's MNS trigger does by
default); a topic's consumer reads the body as it is (``decode_topics``). A message that does not
give a CloudEvent that way is still accepted (MNS does not look inside) but not in ``events``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faults import Misbehaving

NS = "http://mns.aliyuncs.com/doc/v1/"
DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
CONTENT_TYPE = "text/xml;charset=utf-8"
MAX_BODY = 65536
MAX_SKEW = 15 * 60
RFC1123 = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
PATH = re.compile(r"/(queues|topics)/([A-Za-z][A-Za-z0-9-]{0,255})/messages")
# Elements a message may carry after MessageBody, per API.
OPTIONAL = {"queues": ("DelaySeconds", "Priority"), "topics": ("MessageTag",)}


@dataclass
class Fault:
    status: int
    code: str | None
    delay: float = 0.0
    retry_after: str | None = None


class Refusal(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


class MnsReceiver(Misbehaving):
    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        security_token: str | None = None,
        queues: tuple[str, ...] = ("axn-events",),
        topics: tuple[str, ...] = ("axn-events",),
        decode_queues: bool = True,
        decode_topics: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.access_key_id = access_key_id
        self.secret = access_key_secret.encode()
        self.security_token = security_token
        self.names = {"queues": set(queues), "topics": set(topics)}
        self.decode = {"queues": decode_queues, "topics": decode_topics}
        self.skew = 0.0  # seconds this endpoint's clock runs ahead of the machine's
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        Misbehaving.__init__(self)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer, extra = receiver._receive(self.path, body, headers)
                if receiver.misbehaved(self):
                    return
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml;charset=utf-8")
                    self.send_header("x-mns-request-id", uuid.uuid4().hex.upper()[:24])
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (a scripted slow answer)

            def date_time_string(self, timestamp: float | None = None) -> str:
                return formatdate(receiver.now(), usegmt=True)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host = f"{host}:{self.server.server_address[1]}"
        self.endpoint = f"http://{self.host}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, kind: str, name: str, **options: str) -> str:
        """The target URL for queue or topic ``name`` pointed at this endpoint."""
        extra = "".join(f"&{k}={v}" for k, v in options.items())
        return f"mns://{kind}/{name}?endpoint={self.endpoint}{extra}"

    def now(self) -> float:
        return time.time() + self.skew

    def fail(
        self,
        status: int,
        code: str | None = None,
        *,
        delay: float = 0.0,
        retry_after: str | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` well-signed requests with ``status`` (and MNS error
        ``code``; 5xx default to InternalError) after ``delay`` seconds; a 201 "fault" is a
        slow success."""
        if code is None and status >= 500:
            code = "InternalError"
        with self.lock:
            self.faults.extend(Fault(status, code, delay, retry_after) for _ in range(count))

    @property
    def duplicates(self) -> int:
        ids = [e.get("id") for e in self.events]
        return len(ids) - len(set(ids))

    # -- checks, as MNS makes them ----------------------------------------------------------------

    def expected_signature(self, method: str, path: str, headers: dict[str, str]) -> str:
        mns = sorted((k, v) for k, v in headers.items() if k.startswith("x-mns-"))
        text = "\n".join(
            [
                method,
                headers.get("content-md5", ""),
                headers.get("content-type", ""),
                headers.get("date", ""),
                "",
            ]
        )
        text += "".join(f"{k}:{v}\n" for k, v in mns) + path
        return base64.b64encode(
            hmac.new(self.secret, text.encode(), hashlib.sha1).digest()
        ).decode()

    def _check_headers(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        if "authorization" not in headers:
            raise Refusal(400, "MissingAuthorizationHeader")
        if "date" not in headers:
            raise Refusal(400, "MissingDateHeader")
        if not RFC1123.fullmatch(headers["date"]):
            raise Refusal(400, "InvalidDateHeader")
        if headers.get("x-mns-version") != "2015-06-06":
            raise Refusal(400, "InvalidArgument")
        if headers.get("content-type") != CONTENT_TYPE:
            raise Refusal(400, "InvalidArgument")
        if headers.get("host") != self.host:
            raise Refusal(400, "InvalidRequestURL")
        if "content-md5" in headers:
            digest = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - the API's digest
            if headers["content-md5"] != digest:
                raise Refusal(400, "InvalidDegist")
        scheme, _, credential = headers["authorization"].partition(" ")
        key_id, _, signature = credential.partition(":")
        if scheme != "MNS" or not key_id or not signature:
            raise Refusal(400, "InvalidAuthorizationHeader")
        if key_id != self.access_key_id:
            raise Refusal(403, "InvalidAccessKeyId")
        if headers.get("security-token") != self.security_token:
            raise Refusal(403, "AccessDenied")
        expected = self.expected_signature("POST", path, headers)
        if not hmac.compare_digest(signature, expected):
            raise Refusal(403, "SignatureDoesNotMatch")
        sent = parsedate_to_datetime(headers["date"]).timestamp()
        if abs(self.now() - sent) > MAX_SKEW:
            raise Refusal(408, "TimeExpired")

    def _message_body(self, api: str, body: bytes) -> str:
        text = body.decode("utf-8", "strict") if body else ""
        if not text.startswith(DECLARATION):
            raise Refusal(400, "MalformedXML")
        try:
            root = ET.fromstring(body)  # noqa: S314 - loopback test traffic only
        except ET.ParseError:
            raise Refusal(400, "MalformedXML") from None
        if root.tag != f"{{{NS}}}Message" or (root.text or "").strip():
            raise Refusal(400, "InvalidArgument")
        names = [child.tag.removeprefix(f"{{{NS}}}") for child in root]
        if not names or names[0] != "MessageBody" or len(set(names)) != len(names):
            raise Refusal(400, "InvalidArgument")
        if any(n not in OPTIONAL[api] for n in names[1:]):
            raise Refusal(400, "InvalidArgument")
        message = root[0].text or ""
        if not 1 <= len(message.encode()) <= MAX_BODY:
            raise Refusal(400, "InvalidArgument")
        return message

    def _consume(self, api: str, message: str) -> dict[str, Any] | None:
        """The CloudEvent a consumer of ``api`` reads from ``message``, or None."""
        try:
            raw = (
                base64.b64decode(message, validate=True).decode("utf-8")
                if self.decode[api]
                else message
            )
            event = json.loads(raw)
        except (binascii.Error, ValueError):
            return None
        if not isinstance(event, dict) or event.get("specversion") != "1.0" or "id" not in event:
            return None
        return event

    def _receive(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        extra: dict[str, str] = {}
        message_id = None
        try:
            found = PATH.fullmatch(path)
            if not found:
                raise Refusal(400, "InvalidRequestURL")
            api, name = found.groups()
            self._check_headers(path, body, headers)
            if name not in self.names[api]:
                raise Refusal(404, "QueueNotExist" if api == "queues" else "TopicNotExist")
            message = self._message_body(api, body)
            with self.lock:
                fault = self.faults.pop(0) if self.faults else None
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.status != 201:
                if fault.retry_after:
                    extra["Retry-After"] = fault.retry_after
                raise Refusal(fault.status, fault.code or "InvalidArgument")
        except (Refusal, UnicodeDecodeError) as refusal:
            status = getattr(refusal, "status", 400)
            code = getattr(refusal, "code", "MalformedXML")
            answer = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error xmlns="{NS}"><Code>{code}</Code>'
                f"<Message>{code}</Message><RequestId>{uuid.uuid4().hex.upper()[:24]}</RequestId>"
                f"<HostId>{self.endpoint}</HostId></Error>"
            )
        else:
            status, code = 201, None
            message_id = uuid.uuid4().hex.upper()
            md5 = hashlib.md5(message.encode()).hexdigest().upper()  # noqa: S324 - the API's digest
            answer = (
                f'<?xml version="1.0" encoding="UTF-8"?><Message xmlns="{NS}">'
                f"<MessageId>{message_id}</MessageId><MessageBodyMD5>{md5}</MessageBodyMD5>"
                "</Message>"
            )
            event = self._consume(api, message)
            with self.lock:
                self.messages.append(
                    {"kind": api[:-1], "name": name, "body": message, "message_id": message_id,
                     "consumable": event is not None}
                )  # fmt: skip
                if event is not None:
                    self.events.append(event)
        with self.lock:
            self.requests.append(
                {"path": path, "status": status, "code": code, "headers": headers,
                 "body": body.decode("utf-8", "replace")}
            )  # fmt: skip
        return status, answer.encode(), extra

    def __enter__(self) -> MnsReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
