"""Scripted faults: a queue of misbehaviours applied to the next matching requests.

Kinds and options (every option is optional unless marked):
- throttle: gateway error, default 400 Throttling.User; `code`, `message`, `status`,
  `retry_after` (seconds, sent as header x-acs-retry-after in milliseconds).
- flow_limit: HTTP 200 isv.FLOW_LIMIT; `message`.
- business: HTTP 200 with `code` (required) and `message`.
- gateway: gateway error, default 500 InternalError; `status`, `code`, `message`, `bind`.
- isp_error: HTTP 200 isp.SYSTEM_ERROR; `code`, `message`, `bind`.
- http_5xx: gateway error, default 500 InternalError (503 -> ServiceUnavailable); `status`,
  `code`, `message`, `bind`.
- delay: sleep `seconds` (required), then answer normally.
- bind_then_drop: process the request normally, then close the socket without answering.
- drop_before: close the socket without processing.
- raw: answer exactly `body` (text, default empty) with HTTP `status` (default 200) and a JSON
  content type: for answers no real gateway should give (an empty 200, JSON without `Code`, a
  202); `bind`.
- drip: process the request normally, then send the answer one byte every `interval` seconds
  (default 0.2): an upstream that never stalls long enough for a per-read timeout to fire.

`bind: true` processes the request normally (a BindAxnExtension creates its binding, an
UpdateSubscription changes it, an UnbindSubscription releases it) before the fault's answer
replaces the real one. Each fault has `count` (default 1), `action` (default
BindAxnExtension; `*` matches every action) and `stage`: `auth` (default; only requests that pass
signature verification consume it) or `gateway` (consumed before verification; allowed for throttle,
gateway, http_5xx without bind, delay and drop_before).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

ANY_ACTION = "*"
STAGES = ("auth", "gateway")
_OPTIONS: dict[str, tuple[str, ...]] = {
    "throttle": ("code", "message", "status", "retry_after"),
    "flow_limit": ("message",),
    "business": ("code", "message"),
    "gateway": ("status", "code", "message", "bind"),
    "isp_error": ("code", "message", "bind"),
    "http_5xx": ("status", "code", "message", "bind"),
    "delay": ("seconds",),
    "bind_then_drop": (),
    "drop_before": (),
    "raw": ("status", "body", "bind"),
    "drip": ("interval",),
}
_REQUIRED: dict[str, tuple[str, ...]] = {"business": ("code",), "delay": ("seconds",)}
_GATEWAY_STAGE_KINDS = ("throttle", "gateway", "http_5xx", "delay", "drop_before")
KINDS = tuple(_OPTIONS)


@dataclass
class Fault:
    """A queued fault and how many more requests it applies to."""

    kind: str
    count: int = 1
    action: str = "BindAxnExtension"
    stage: str = "auth"
    options: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON form, as accepted by `make_fault(**...)`."""
        return {
            "kind": self.kind,
            "count": self.count,
            "action": self.action,
            "stage": self.stage,
            **self.options,
        }


def _check_option_types(kind: str, options: dict[str, object]) -> None:
    for name in ("status",):
        if name in options and not (isinstance(options[name], int) and 100 <= options[name] < 600):
            raise ValueError(f"fault {kind}: {name} must be an HTTP status")
    for name in ("retry_after", "seconds", "interval"):
        value = options.get(name)
        if name in options and (not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"fault {kind}: {name} must be a non-negative number")
    for name in ("code", "message", "body"):
        if name in options and not isinstance(options[name], str):
            raise ValueError(f"fault {kind}: {name} must be a string")
    if "bind" in options and not isinstance(options["bind"], bool):
        raise ValueError(f"fault {kind}: bind must be true or false")


def make_fault(
    kind: str,
    count: int = 1,
    action: str = "BindAxnExtension",
    stage: str = "auth",
    **options: object,
) -> Fault:
    """Validate and build a fault; raises ValueError."""
    if kind not in _OPTIONS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError("count must be a positive integer")
    if not isinstance(action, str) or not action:
        raise ValueError("action must be a non-empty string")
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}")
    unknown = sorted(set(options) - set(_OPTIONS[kind]))
    if unknown:
        raise ValueError(f"fault {kind} does not take {', '.join(unknown)}")
    for name in _REQUIRED.get(kind, ()):
        if name not in options:
            raise ValueError(f"fault {kind} needs {name}")
    _check_option_types(kind, options)
    if stage == "gateway" and (kind not in _GATEWAY_STAGE_KINDS or options.get("bind")):
        raise ValueError(f"fault {kind} cannot apply at the gateway stage")
    return Fault(kind, count, action, stage, dict(options))


class FaultQueue:
    """Faults in the order they were added; callers serialise access."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Append a fault."""
        self._faults.append(fault)

    def clear(self) -> None:
        """Drop every queued fault."""
        self._faults.clear()

    def pending(self) -> list[dict[str, object]]:
        """The queue in JSON form."""
        return [f.to_dict() for f in self._faults]

    def take(self, action: str, stage: str) -> Fault | None:
        """Consume one use of the first fault matching the action and stage."""
        for index, fault in enumerate(self._faults):
            if fault.stage == stage and fault.action in (action, ANY_ACTION):
                fault.count -= 1
                if fault.count <= 0:
                    del self._faults[index]
                return copy.deepcopy(fault)
        return None
