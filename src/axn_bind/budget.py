"""One invocation's time, in one place: when it must have answered, what a Dyplsapi call needs
before it may start, and what is kept back for recording the outcome.

BindAxnExtension is not idempotent, so a call that is started must be able to finish: cut short,
its outcome is unknown and a binding may exist. A call therefore starts only when the whole
exchange (a full connect plus a full read) *and* the write of its outcome to the idempotency
store still fit before the deadline; otherwise nothing is sent and the key is released. The
transport enforces the exchange's end as a total limit, not per socket read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .errors import DeadlineExceededError

MAX_LEASE_SECONDS = 900.0  # a lease never needs to outlive the longest FC timeout planned for
LEASE_SLACK_SECONDS = 30.0  # the lease outlives the invocation's deadline by this much

Clock = Callable[[], float]


class Budget:
    """The time left to an invocation, measured on ``clock`` (monotonic seconds)."""

    def __init__(
        self,
        seconds: float | None,
        *,
        call_seconds: float,
        record_seconds: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds
        self.total = seconds
        self.call_seconds = call_seconds  # the longest one exchange may take: connect + read
        self.record_seconds = record_seconds  # kept back for writing the outcome to the store

    @classmethod
    def for_invocation(
        cls,
        context: Any,
        *,
        margin: float,
        call_seconds: float,
        record_seconds: float,
        clock: Clock = time.monotonic,
    ) -> Budget:
        """``context.function.timeout`` minus ``margin``; unlimited when the context has none."""
        timeout = getattr(getattr(context, "function", None), "timeout", None)
        try:
            seconds = float(timeout) - margin if timeout else None
        except (TypeError, ValueError):
            seconds = None
        return cls(seconds, call_seconds=call_seconds, record_seconds=record_seconds, clock=clock)

    def now(self) -> float:
        return self._clock()

    def remaining(self) -> float:
        return float("inf") if self._end is None else self._end - self._clock()

    def needed(self) -> float:
        """What a non-idempotent call needs before it may start."""
        return self.call_seconds + self.record_seconds

    def can_start_call(self, after: float = 0.0) -> bool:
        """True when a call started ``after`` seconds from now can finish and be recorded."""
        return self.remaining() - after >= self.needed()

    def require_call(self) -> None:
        """Raise DeadlineExceededError (nothing sent) unless a call can start now."""
        if self.can_start_call():
            return
        if self.total is not None and self.total < self.needed():
            raise DeadlineExceededError(
                f"Not attempted: the function's time ({self.total:.1f} s after "
                f"AXN_DEADLINE_MARGIN_MS) is shorter than one Dyplsapi call may take "
                f"(DYPLS_CONNECT_TIMEOUT + DYPLS_READ_TIMEOUT = {self.call_seconds:g} s) plus "
                f"{self.record_seconds:g} s to record its outcome; nothing was sent. Raise the "
                "function's timeout or lower those settings."
            )
        raise DeadlineExceededError(
            "Not attempted: too little of the function's time was left to call Dyplsapi and "
            "record the outcome; nothing was sent. Retry, or raise the function's timeout."
        )

    def exchange_end(self) -> float:
        """The clock time by which one exchange started now must be over."""
        end = self._clock() + self.call_seconds
        if self._end is not None:
            end = min(end, self._end - self.record_seconds)
        return end

    def lease_seconds(self) -> float:
        """How long a key taken now must stay owned: past the deadline, with slack."""
        return min(self.remaining(), MAX_LEASE_SECONDS) + LEASE_SLACK_SECONDS
