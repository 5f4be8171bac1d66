"""What Function Compute gives a handler, made locally: the context object and HTTP trigger events.

Used by the local server (``make run``), the event runner (``make invoke``) and the tests, so that
all three call ``index.handler`` the way FC 3.0 does.
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tools.dypls_emulator import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, DEFAULT_POOL_KEY

# FC puts the code root (/code, here src/) on sys.path; the local tools do the same.
CODE_ROOT = Path(__file__).resolve().parents[1] / "src"
if str(CODE_ROOT) not in sys.path:
    sys.path.insert(0, str(CODE_ROOT))


@dataclass
class FunctionMeta:
    name: str = "axn-bind"
    handler: str = "index.handler"
    memory: int = 256
    timeout: int = 30


@dataclass
class Credentials:
    access_key_id: str | None = None
    access_key_secret: str | None = None
    security_token: str | None = None


@dataclass
class FcContext:
    """The attributes of the python3.10 runtime's context that the function reads."""

    request_id: str = field(default_factory=lambda: f"local-{uuid.uuid4()}")
    function: FunctionMeta = field(default_factory=FunctionMeta)
    credentials: Credentials | None = None
    region: str = "cn-hangzhou"
    account_id: str = "1234567890123456"


def local_env(endpoint: str) -> dict[str, str]:
    """Environment that points the function at the emulator with its credentials and pool."""
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ACCESS_KEY_SECRET,
        "DYPLS_ENDPOINT": endpoint,
        "AXN_POOL_KEY": DEFAULT_POOL_KEY,
    }


def http_event(
    method: str = "POST",
    body: bytes | str | dict[str, Any] | None = None,
    *,
    path: str = "/",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
    source_ip: str = "127.0.0.1",
) -> bytes:
    """An FC 3.0 HTTP trigger event (``version: v1``) as the bytes the handler receives."""
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False)
        headers = {"Content-Type": "application/json", **(headers or {})}
    raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    now = datetime.now(timezone.utc)
    event = {
        "version": "v1",
        "rawPath": path,
        "headers": headers or {},
        "queryParameters": query or {},
        "body": base64.b64encode(raw).decode() if base64_body else raw.decode("utf-8"),
        "isBase64Encoded": base64_body,
        "requestContext": {
            "accountId": "1234567890123456",
            "domainName": "local.fcapp.run",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": (headers or {}).get("User-Agent", "local"),
            },
            "requestId": f"local-{uuid.uuid4()}",
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timeEpoch": str(int(time.time() * 1000)),
        },
    }
    return json.dumps(event, ensure_ascii=False).encode("utf-8")
