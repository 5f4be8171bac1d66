"""A fake clock and a scripted transport, for the bind path's time and failure rules.

The fake transport answers from a script instead of the network, so a test can say exactly what
Dyplsapi did (answered, never received it, received it and went silent) and how long each
exchange took on the injected clock. Everything above the transport is the real code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from axn_bind.dypls.transport import Answered, Exchange, NoAnswer, NotSent

OK_BODY = {
    "Code": "OK",
    "Message": "OK",
    "RequestId": "R-OK",
    "SecretBindDTO": {"Extension": "1", "SecretNo": "17000000000", "SubsId": "S-1"},
}


class FakeClock:
    """Monotonic and wall time in one: both move only when told to (or when slept on)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def ok(**body: Any) -> Answered:
    return Answered(200, {}, json.dumps({**OK_BODY, **body}).encode())


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Answered:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answered(status, headers or {}, raw)


def throttled(retry_after_ms: int | None = None) -> Answered:
    headers = {"x-acs-retry-after": str(retry_after_ms)} if retry_after_ms is not None else {}
    return answer(400, {"Code": "Throttling.User", "Message": "slow down"}, headers)


REFUSED = NotSent("connection refused")
DROPPED = NoAnswer("connection reset", timed_out=False)


@dataclass
class Step:
    exchange: Exchange
    takes: float = 0.01  # seconds on the clock
    during: Callable[[], None] | None = None  # runs while the exchange is "on the wire"


@dataclass
class FakeTransport:
    clock: FakeClock
    script: list[Step | Exchange] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(
        self,
        url: str,
        headers: Any,
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
        end: float,
    ) -> Exchange:
        if end - self.clock() <= 0:
            return NotSent("no time was left to send")
        step = self.script.pop(0) if self.script else Step(ok())
        if not isinstance(step, Step):
            step = Step(step)
        self.sent.append(
            {"url": url, "headers": dict(headers), "end": end, "read_timeout": read_timeout}
        )
        if step.during is not None:
            step.during()
        self.clock.advance(step.takes)
        return step.exchange

    def close(self) -> None:
        pass
