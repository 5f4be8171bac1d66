"""``make run``: the Dyplsapi emulator plus the function behind a local FC 3.0 HTTP trigger.

Each HTTP request becomes an FC 3.0 HTTP-trigger event (body in Base64, as FC sends it) and is
passed to ``index.handler`` with an FC-like context, one request at a time as on the python
runtimes. The function is configured with the emulator's credentials and its first pool, so
``POST /`` with just ``PhoneNoA`` and ``TtlSeconds`` binds.

``--instance-concurrency N`` serves up to N requests at once, each in its own daemon thread, as
an FC 3.0 instance with instance concurrency N does. ``--emulator-url`` points the function at an
emulator that is already running instead of starting one, so that several local instances can
share one emulator (and one Redis store): what ``make loadfault`` runs. ``--function-timeout``
is the function's timeout the FC context gives each invocation (30 s, as in s.yaml, by default).

``GET /version`` answers the function's version as JSON, ``GET /openapi.json`` the HTTP API's
contract; both are the local server's own answers, not the function's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

from tools.dypls_emulator import Emulator
from tools.fc_local import FcContext, FunctionMeta, http_event, local_env


class TriggerHandler(BaseHTTPRequestHandler):
    server_version = "axn-bind-local"

    def _serve(self) -> None:
        from index import handler

        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError
        except ValueError:  # what FC's front end refuses before the function sees it
            self.send_error(400, "Content-Length must be a whole number of bytes")
            return
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        event = http_event(
            self.command,
            body,
            path=path,
            headers={k: v for k, v in self.headers.items()},
            query=dict(parse_qsl(query, keep_blank_values=True)),
            base64_body=True,
            source_ip=self.client_address[0],
        )
        context = FcContext(function=getattr(self.server, "function", None) or FunctionMeta())
        with getattr(self.server, "slots", None) or contextlib.nullcontext():
            result = handler(event, context)
        payload = result["body"].encode("utf-8")
        self.send_response(result["statusCode"])
        for name, value in result["headers"].items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # GET: do_GET below

    def do_GET(self) -> None:
        """``GET /openapi.json`` is the contract of the HTTP API (docs/openapi.json, written by
        ``make openapi``), ``GET /version`` the function's version (``{"Name": "axn-bind",
        "Version": axn_bind.__version__}``); every other GET goes to the function like any
        request."""
        path = self.path.partition("?")[0]
        if path == "/version":
            from axn_bind import __version__

            self._answer(json.dumps({"Name": "axn-bind", "Version": __version__}).encode())
            return
        if path != "/openapi.json":
            self._serve()
            return
        contract = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
        try:
            payload = contract.read_bytes()
        except OSError:
            self.send_error(404, "docs/openapi.json is missing: run make openapi")
            return
        self._answer(payload)

    def _answer(self, payload: bytes) -> None:
        """200 with a JSON body."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # the function logs for itself
        pass


class ConcurrentServer(ThreadingHTTPServer):
    """Each request in its own daemon thread, at most ``limit`` of them in the function at once:
    an FC 3.0 instance with instance concurrency ``limit``."""

    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted under load

    def __init__(self, address: tuple[str, int], limit: int) -> None:
        super().__init__(address, TriggerHandler)
        self.slots = threading.BoundedSemaphore(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the local HTTP trigger listens on (default 127.0.0.1; loopback only "
        "unless you mean to expose it)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=9000,
        help="port of the local HTTP trigger (default 9000; make run PORT=…); 0 picks a free one",
    )
    parser.add_argument(
        "--emulator-port",
        type=int,
        default=18021,
        help="port of the Dyplsapi emulator the function calls (default 18021; make run "
        "EMULATOR_PORT=…); 0 picks a free one",
    )
    parser.add_argument(
        "--emulator-url",
        default="",
        help="call the Dyplsapi emulator already serving at this URL (e.g. "
        "http://127.0.0.1:18021) instead of starting one; --emulator-port is then unused",
    )
    parser.add_argument(
        "--instance-concurrency",
        type=int,
        default=1,
        help="requests served at once, each in its own thread, as an FC 3.0 instance with "
        "instance concurrency N (default 1: one at a time)",
    )
    parser.add_argument(
        "--function-timeout",
        type=int,
        default=FunctionMeta.timeout,
        help=f"the function's timeout in seconds, as the FC context gives it to each invocation "
        f"(default {FunctionMeta.timeout})",
    )
    args = parser.parse_args(argv)
    if args.instance_concurrency < 1:
        parser.error("--instance-concurrency must be at least 1")
    if args.function_timeout < 1:
        parser.error("--function-timeout must be at least 1")
    function = FunctionMeta(timeout=args.function_timeout)

    emulator = None
    try:
        if not args.emulator_url:
            emulator = Emulator("127.0.0.1", args.emulator_port).start()
    except OSError as exc:
        print(
            f"make run: the emulator cannot listen on 127.0.0.1:{args.emulator_port} "
            f"({exc.strerror or exc}); choose another port: make run EMULATOR_PORT=18022",
            file=sys.stderr,
        )
        return 2
    emulator_url = emulator.url if emulator is not None else args.emulator_url.rstrip("/")
    for name, value in local_env(emulator_url).items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AXN_LOG_LEVEL", "INFO")
    events = Path(__file__).resolve().parent.parent / "build" / "events.jsonl"
    os.environ.setdefault("AXN_PUBLISH_TO", f"file://{events}")
    from index import initialize

    initialize(FcContext(function=function))
    try:
        if args.instance_concurrency > 1:
            server: HTTPServer = ConcurrentServer((args.host, args.port), args.instance_concurrency)
        else:
            server = HTTPServer((args.host, args.port), TriggerHandler)
    except OSError as exc:
        if emulator is not None:
            emulator.stop()
        print(
            f"make run: the function cannot listen on {args.host}:{args.port} "
            f"({exc.strerror or exc}); choose another port: make run PORT=9001",
            file=sys.stderr,
        )
        return 2
    server.function = function  # type: ignore[attr-defined] - read by TriggerHandler
    url = f"http://{args.host}:{server.server_address[1]}/"
    from axn_bind import __version__

    print(f"Dyplsapi emulator on {emulator_url}; function on {url} (axn-bind {__version__})")
    print(f"Outcomes announced to: {os.environ['AXN_PUBLISH_TO']}")
    example = json.dumps({"PhoneNoA": "13900000001", "TtlSeconds": 3600})
    print(f"Try: curl -s -X POST {url} -H 'Content-Type: application/json' -d '{example}'")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if emulator is not None:
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
