"""The unsigned admin API under /_emulator/ (JSON in, JSON out).

Routes:
- GET /_emulator/info: API version, AccessKeyIds, pools, clock.
- GET /_emulator/faults; POST one fault object or a list (`{"kind", "count", "action", "stage",
  ...options}`); DELETE clears the queue.
- GET /_emulator/bindings: every binding with its status (active, expired, unbound).
- GET /_emulator/requests: the request log.
- POST /_emulator/reset: clear bindings, requests, faults and nonces; restore clock and caps.
- GET/POST /_emulator/clock: `{"offset_seconds": N}` shifts the emulator clock.
- POST /_emulator/config: `{"max_extensions_per_number": N}` for every pool.
Errors answer 400 or 404 with `{"error": "..."}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .service import EmulatorService

PREFIX = "/_emulator/"
Reply = tuple[int, object]


def _load(body: bytes) -> object:
    if not body.strip():
        return {}
    return json.loads(body.decode("utf-8"))


def _faults(service: EmulatorService, method: str, body: bytes) -> Reply:
    if method == "GET":
        return 200, {"faults": service.faults()}
    if method == "DELETE":
        service.clear_faults()
        return 200, {"faults": []}
    data = _load(body)
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(item, dict) for item in items):
        raise ValueError("expected a fault object or a list of them")
    for item in items:
        if "kind" not in item:
            raise ValueError("a fault needs a kind")
    added = [service.add_fault(**item) for item in items]
    return 200, {"added": added, "faults": service.faults()}


def _clock(service: EmulatorService, method: str, body: bytes) -> Reply:
    if method == "POST":
        data = _load(body)
        offset = data.get("offset_seconds") if isinstance(data, dict) else None
        if isinstance(offset, bool) or not isinstance(offset, (int, float)):
            raise ValueError('expected {"offset_seconds": number}')
        service.set_clock_offset(offset)
    info = service.info()
    return 200, {"offset_seconds": info["clock_offset_seconds"], "now": info["now"]}


def _config(service: EmulatorService, body: bytes) -> Reply:
    data = _load(body)
    if not isinstance(data, dict) or "max_extensions_per_number" not in data:
        raise ValueError('expected {"max_extensions_per_number": integer}')
    service.set_max_extensions(data["max_extensions_per_number"])
    return 200, service.info()


def _reset(service: EmulatorService) -> Reply:
    service.reset()
    return 200, {"reset": True}


_ROUTES: dict[tuple[str, str], Callable[[EmulatorService, str, bytes], Reply]] = {
    ("faults", "GET"): _faults,
    ("faults", "POST"): _faults,
    ("faults", "DELETE"): _faults,
    ("clock", "GET"): _clock,
    ("clock", "POST"): _clock,
    ("config", "POST"): lambda service, _method, body: _config(service, body),
    ("reset", "POST"): lambda service, _method, _body: _reset(service),
    ("info", "GET"): lambda service, _method, _body: (200, service.info()),
    ("bindings", "GET"): lambda service, _m, _b: (200, {"bindings": service.bindings()}),
    ("requests", "GET"): lambda service, _m, _b: (200, {"requests": service.requests()}),
}


def handle_admin(service: EmulatorService, method: str, path: str, body: bytes) -> Reply:
    """Answer an admin request; returns the status and a JSON-ready payload."""
    name = path[len(PREFIX) :].strip("/")
    route = _ROUTES.get((name, method))
    if route is None:
        return 404, {"error": f"no admin route {method} {PREFIX}{name}"}
    try:
        return route(service, method, body)
    except (ValueError, TypeError) as err:
        return 400, {"error": str(err)}
