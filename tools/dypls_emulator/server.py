"""The HTTP server on loopback and the `Emulator` object that owns it."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from .config import DEFAULT_HOST, Credential, Pool, default_credentials, default_pools
from .control import PREFIX, handle_admin
from .service import ApiRequest, EmulatorService, Outcome

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 1 << 20


def _parse_params(text: str) -> dict[str, str]:
    return dict(parse_qsl(text, keep_blank_values=True))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: EmulatorService, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.service = service
        self.verbose = verbose


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; no 40 ms stall
    server_version = "dypls-emulator"
    sys_version = ""
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:
        """Silent unless verbose; prints only the status of errors."""
        if self.server.verbose:
            sys.stderr.write(f"dypls-emulator: http error {args[0] if args else ''}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silent unless verbose; prints method, path (no query string) and status."""
        if self.server.verbose:
            path = urlsplit(getattr(self, "path", "")).path
            sys.stderr.write(f"dypls-emulator: {getattr(self, 'command', '-')} {path} {code}\n")

    def do_GET(self) -> None:
        """Serve GET."""
        self._serve()

    def do_POST(self) -> None:
        """Serve POST."""
        self._serve()

    def do_DELETE(self) -> None:
        """Serve DELETE."""
        self._serve()

    def do_PUT(self) -> None:
        """Serve PUT."""
        self._serve()

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            body = None
        if body is None:
            self._send(400, {"Content-Type": "text/plain"}, b"bad request body\n")
            self.close_connection = True
            return
        split = urlsplit(self.path)
        if split.path.startswith(PREFIX):
            status, payload = handle_admin(self.server.service, self.command, split.path, body)
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self._send(status, {"Content-Type": "application/json;charset=utf-8"}, data)
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        form = _parse_params(body.decode("utf-8", "replace")) if content_type == FORM_TYPE else {}
        request = ApiRequest(
            method=self.command,
            path=split.path or "/",
            query=_parse_params(split.query),
            form=form,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self._answer(self.server.service.handle(request))

    def _answer(self, outcome: Outcome) -> None:
        if outcome.drop:
            self.close_connection = True
            self.log_request("dropped")
            return
        self._send(outcome.status, outcome.headers, outcome.body, outcome.drip)

    def _send(self, status: int, headers: dict[str, str], body: bytes, drip: float = 0.0) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not drip:
                self.wfile.write(body)
                return
            self.wfile.flush()
            for index in range(len(body)):
                time.sleep(drip)
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Emulator:
    """A local Dyplsapi endpoint with its admin API, served from a background thread."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        credentials: Iterable[Credential] | None = None,
        pools: Iterable[Pool] | None = None,
        max_extensions_per_number: int | None = None,
        clock_offset_seconds: float = 0.0,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.verbose = verbose
        self.service = EmulatorService(
            default_credentials() if credentials is None else credentials,
            default_pools() if pools is None else pools,
            max_extensions_per_number,
            clock_offset_seconds,
        )
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port; the server must be started."""
        if self._server is None:
            raise RuntimeError("emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:18021."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._server = _HTTPServer((self.host, self.requested_port), self.service, self.verbose)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="dypls-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def add_fault(self, kind: str, count: int = 1, **options: object) -> dict[str, object]:
        """Queue a fault; see `tools.dypls_emulator.faults`."""
        return self.service.add_fault(kind, count, **options)

    def clear_faults(self) -> None:
        """Drop all queued faults."""
        self.service.clear_faults()

    def faults(self) -> list[dict[str, object]]:
        """Queued faults."""
        return self.service.faults()

    def bindings(self) -> list[dict[str, object]]:
        """All bindings with their status."""
        return self.service.bindings()

    def requests(self) -> list[dict[str, object]]:
        """The request log."""
        return self.service.requests()

    def reset(self) -> None:
        """Clear bindings, requests, faults and nonces; restore clock and caps."""
        self.service.reset()

    def set_clock_offset(self, seconds: float) -> None:
        """Shift the emulator clock by `seconds` from wall-clock time."""
        self.service.set_clock_offset(seconds)

    def set_max_extensions(self, count: int) -> None:
        """Set every pool's per-number extension cap."""
        self.service.set_max_extensions(count)

    def info(self) -> dict[str, object]:
        """API version, AccessKeyIds, pools and clock."""
        return self.service.info()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no API request is being processed (a late answer has made its binding);
        False if one still is after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while self.service.in_flight:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True
