"""A Standard Webhooks receiver on loopback: verifies every delivery with the independent
``standardwebhooks`` package, records what it accepted, and answers scripted faults.

    with WebhookReceiver(secret) as rx:        # rx.url
        rx.fail(503, retry_after="1")           # the next delivery gets 503 with Retry-After
        rx.misbehave("drip")                    # ... or a dripping or huge answer (faults.py)
        ...
        rx.events                               # verified events, in arrival order
        rx.deliveries                           # every delivery: id, status answered, verified

A delivery whose signature, id or timestamp does not verify is answered 401 and recorded as not
verified. Duplicate ``webhook-id`` values are accepted (a receiver must de-duplicate) and
counted in ``duplicates``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from .faults import Misbehaving


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    delay: float = 0.0


class WebhookReceiver(Misbehaving):
    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.verifier = Webhook(secret)
        self.faults: list[Fault] = []
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        Misbehaving.__init__(self)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra = receiver._receive(body, headers, self.path)
                if receiver.misbehaved(self):
                    return
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}/hooks/axn"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fail(
        self, status: int, *, retry_after: str | None = None, delay: float = 0.0, count: int = 1
    ) -> None:
        """Answer the next ``count`` deliveries with ``status`` (after ``delay`` seconds)."""
        with self.lock:
            self.faults.extend(Fault(status, retry_after, delay) for _ in range(count))

    @property
    def duplicates(self) -> int:
        ids = [e["id"] for e in self.events]
        return len(ids) - len(set(ids))

    def _receive(
        self, body: bytes, headers: dict[str, str], path: str = ""
    ) -> tuple[int, dict[str, str]]:
        with self.lock:
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        try:
            event = self.verifier.verify(body, headers)
            verified = True
        except Exception:  # any verification failure: refused, recorded
            event, verified = None, False
        status = 401 if not verified else (fault.status if fault else 204)
        with self.lock:
            self.headers.append(headers)
            self.deliveries.append(
                {"id": headers.get("webhook-id"), "status": status, "verified": verified,
                 "body": body.decode("utf-8", "replace"), "path": path}
            )  # fmt: skip
            if verified and 200 <= status < 300:
                self.events.append(event if isinstance(event, dict) else json.loads(body))
        extra = {"Retry-After": fault.retry_after} if fault and fault.retry_after else {}
        return status, extra

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
