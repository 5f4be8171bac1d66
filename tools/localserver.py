"""``make run``: the Dyplsapi emulator plus the function behind a local FC 3.0 HTTP trigger.

Each HTTP request becomes an FC 3.0 HTTP-trigger event (body in Base64, as FC sends it) and is
passed to ``index.handler`` with an FC-like context, one request at a time as on the python
runtimes. The function is configured with the emulator's credentials and its first pool, so
``POST /`` with just ``PhoneNoA`` and ``TtlSeconds`` binds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

from tools.dypls_emulator import Emulator
from tools.fc_local import FcContext, http_event, local_env


class TriggerHandler(BaseHTTPRequestHandler):
    server_version = "axn-bind-local"

    def _serve(self) -> None:
        from index import handler

        length = int(self.headers.get("Content-Length") or 0)
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
        result = handler(event, FcContext())
        payload = result["body"].encode("utf-8")
        self.send_response(result["statusCode"])
        for name, value in result["headers"].items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: object) -> None:  # the function logs for itself
        pass


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
    args = parser.parse_args(argv)

    try:
        emulator = Emulator("127.0.0.1", args.emulator_port).start()
    except OSError as exc:
        print(
            f"make run: the emulator cannot listen on 127.0.0.1:{args.emulator_port} "
            f"({exc.strerror or exc}); choose another port: make run EMULATOR_PORT=18022",
            file=sys.stderr,
        )
        return 2
    for name, value in local_env(emulator.url).items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AXN_LOG_LEVEL", "INFO")
    events = Path(__file__).resolve().parent.parent / "build" / "events.jsonl"
    os.environ.setdefault("AXN_PUBLISH_TO", f"file://{events}")
    from index import initialize

    initialize(FcContext())
    try:
        server = HTTPServer((args.host, args.port), TriggerHandler)
    except OSError as exc:
        emulator.stop()
        print(
            f"make run: the function cannot listen on {args.host}:{args.port} "
            f"({exc.strerror or exc}); choose another port: make run PORT=9001",
            file=sys.stderr,
        )
        return 2
    url = f"http://{args.host}:{server.server_address[1]}/"
    print(f"Dyplsapi emulator on {emulator.url}; function on {url}")
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
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
