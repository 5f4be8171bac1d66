"""One cold start, run as a script in a fresh interpreter by ``bench/run.py``.

It imports nothing but the standard library before it has put the given directories first on
``sys.path``; then it loads either the function (``import index``, ``initialize``, one direct
invocation) or the official SDK (import its client, build it, one ``BindAxnExtension`` call),
against the emulator named in the environment. It prints one JSON line: its own phase times and
its peak RSS (``VmHWM`` of ``/proc/self/status``, read as the last thing it does).

Argument: one JSON object ``{"side": "project"|"sdk", "path": [dirs], "request": {...}}``.
"""

from __future__ import annotations

import json
import os
import sys
import time


class _Function:
    name = "axn-bind"
    handler = "index.handler"
    memory = 256
    timeout = 60


class _Context:
    """The attributes of the FC python3.10 context that the function reads."""

    request_id = "bench-cold-1"
    function = _Function()
    credentials = None
    region = "cn-hangzhou"
    account_id = "1234567890123456"


def _project(request: dict[str, str]) -> tuple[float, float, str]:
    import index

    imported = time.perf_counter()
    index.initialize(_Context())
    ready = time.perf_counter()
    out = index.handler(json.dumps(request).encode("utf-8"), _Context())
    if out.get("Code") != "OK":
        raise SystemExit(f"the function did not bind: {out}")
    return imported, ready, out["SecretBindDTO"]["SecretNo"]


def _sdk(request: dict[str, str]) -> tuple[float, float, str]:
    from alibabacloud_dyplsapi20170525 import models
    from alibabacloud_dyplsapi20170525.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_util import models as util_models

    imported = time.perf_counter()
    endpoint = os.environ["DYPLS_ENDPOINT"]
    client = Client(
        open_api_models.Config(
            access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
            endpoint=endpoint.split("://", 1)[1],
            protocol=endpoint.split("://", 1)[0],
        )
    )
    ready = time.perf_counter()
    response = client.bind_axn_extension_with_options(
        models.BindAxnExtensionRequest(
            pool_key=request["PoolKey"],
            phone_no_a=request["PhoneNoA"],
            expiration=request["Expiration"],
            out_order_id=request["OutOrderId"],
        ),
        util_models.RuntimeOptions(),
    )
    if response.body.code != "OK":
        raise SystemExit(f"the SDK did not bind: {response.body.to_map()}")
    return imported, ready, response.body.secret_bind_dto.secret_no


def _peak_rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def main() -> None:
    started = time.perf_counter()
    args = json.loads(sys.argv[1])
    sys.path[:0] = args["path"]
    run = _project if args["side"] == "project" else _sdk
    imported, ready, secret_no = run(args["request"])
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "import_s": imported - started,
                "init_s": ready - imported,
                "call_s": done - ready,
                "secret_no": secret_no,
                "modules": len(sys.modules),
                "python": list(sys.version_info[:3]),
                "flags": [sys.flags.isolated, sys.flags.no_site, sys.flags.dont_write_bytecode],
                "vmhwm_kb": _peak_rss_kb(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
