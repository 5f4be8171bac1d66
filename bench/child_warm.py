"""A warm instance, run as a script by ``bench/run.py``: one process that binds again and again.

``--side project`` imports the function from ``--code``, runs ``initialize`` once and then serves
events through ``index.handler`` the way FC calls it (the event bytes and the context are made
before the clock starts, as the runtime makes them). ``Transport.send`` is wrapped, in this process
only, to add up the time spent on the wire, so that the function's own overhead is the handler
time less that. ``--side sdk`` builds the official SDK client once and times
``bind_axn_extension_with_options`` (request model included) per call.

In both, urllib3's ``HTTPConnectionPool.urlopen`` (where the function's transport and the SDK's
darabonba core, through ``Session.send`` and requests' ``HTTPAdapter.send``, both end) is wrapped
the same way, so that the work outside the HTTP exchange can be compared side by side at one
layer.

Commands arrive on stdin, one JSON line each, and each is answered with one JSON line on stdout:
``{"op": "run", "path": "direct"|"http"|"batch"|"sdk", "requests": [...]}`` →
``{"seconds": [...], "wire": [...], "urlopen": [...]}``; ``{"op": "quit"}`` ends the process.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# request -> (seconds, seconds of it in Transport.send or None where there is none)
Call = Callable[[dict[str, str]], tuple[float, float | None]]

_in_urlopen = [0.0]  # seconds in HTTPConnectionPool.urlopen during the current call


def _timed(owner: type, total: list[float], name: str = "send") -> None:
    """Wrap ``owner.<name>`` so that every call adds its seconds to ``total[0]``."""
    send = getattr(owner, name)

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return send(self, *args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    setattr(owner, name, timed)


def _time_urlopen() -> None:
    from urllib3.connectionpool import HTTPConnectionPool

    _timed(HTTPConnectionPool, _in_urlopen, "urlopen")


def _mns_batch(request: dict[str, str]) -> bytes:
    """An EventBridge MNS-queue batch (CloudEvents) carrying one bind request."""
    body = base64.b64encode(json.dumps(request).encode("utf-8")).decode("ascii")
    message_id = uuid.uuid4().hex.upper()
    event = {
        "id": str(uuid.uuid4()),
        "source": "MNS-axn-bind-mns-trigger",
        "specversion": "1.0",
        "type": "mns:Queue:SendMessage",
        "datacontenttype": "application/json; charset=utf-8",
        "subject": "acs:mns:cn-hangzhou:1234567890123456:queues/axn-bind-requests",
        "time": "2024-05-01T02:10:01.123Z",
        "aliyunaccountid": "1234567890123456",
        "aliyunregionid": "cn-hangzhou",
        "data": {"requestId": message_id, "messageId": message_id, "messageBody": body},
    }
    return json.dumps([event]).encode("utf-8")


def project_calls(code: Path) -> dict[str, Call]:
    sys.path.insert(0, str(code))
    import index  # the function, from --code (imported before tools, which would add src/)
    from axn_bind.dypls import transport

    sys.path.append(str(ROOT))
    from tools.fc_local import FcContext, http_event

    wire = [0.0]
    _timed(transport.Transport, wire)
    _time_urlopen()
    index.initialize(FcContext())

    def serve(event: bytes, ok: Callable[[Any], bool]) -> tuple[float, float]:
        context = FcContext()
        wire[0] = _in_urlopen[0] = 0.0
        started = time.perf_counter()
        out = index.handler(event, context)
        elapsed = time.perf_counter() - started
        if not ok(out):
            raise SystemExit(f"the function did not bind: {out}")
        return elapsed, wire[0]

    return {
        "direct": lambda r: serve(json.dumps(r).encode("utf-8"), lambda o: o["Code"] == "OK"),
        # The body in Base64, as the FC HTTP trigger sends it (and tools/localserver.py).
        "http": lambda r: serve(
            http_event("POST", r, base64_body=True), lambda o: o["statusCode"] == 200
        ),
        "batch": lambda r: serve(_mns_batch(r), lambda o: o["Code"] == "OK"),
    }


def sdk_calls() -> dict[str, Call]:
    from alibabacloud_dyplsapi20170525 import models
    from alibabacloud_dyplsapi20170525.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_util import models as util_models

    scheme, _, host = os.environ["DYPLS_ENDPOINT"].partition("://")
    client = Client(
        open_api_models.Config(
            access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
            endpoint=host,
            protocol=scheme,
        )
    )
    runtime = util_models.RuntimeOptions()
    _time_urlopen()

    def call(request: dict[str, str]) -> tuple[float, float | None]:
        _in_urlopen[0] = 0.0
        started = time.perf_counter()
        response = client.bind_axn_extension_with_options(
            models.BindAxnExtensionRequest(
                pool_key=request["PoolKey"],
                phone_no_a=request["PhoneNoA"],
                expiration=request["Expiration"],
                out_order_id=request["OutOrderId"],
            ),
            runtime,
        )
        elapsed = time.perf_counter() - started
        if response.body.code != "OK":
            raise SystemExit(f"the SDK did not bind: {response.body.to_map()}")
        return elapsed, None

    return {"sdk": call}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("project", "sdk"), required=True, help="what to run")
    parser.add_argument("--code", type=Path, help="the function's code root (--side project)")
    args = parser.parse_args()
    calls = project_calls(args.code) if args.side == "project" else sdk_calls()
    print(json.dumps({"ready": sorted(calls)}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        call = calls[command["path"]]
        seconds: list[float] = []
        wire: list[float | None] = []
        urlopen: list[float] = []
        for request in command["requests"]:
            elapsed, on_wire = call(request)
            seconds.append(elapsed)
            wire.append(on_wire)
            urlopen.append(_in_urlopen[0])
        print(json.dumps({"seconds": seconds, "wire": wire, "urlopen": urlopen}), flush=True)


if __name__ == "__main__":
    main()
