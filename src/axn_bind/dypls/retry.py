"""When to send again: only what provably bound nothing, within attempts and the time budget."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import NamedTuple

from ..backoff import backoff
from ..budget import Budget
from .classify import Verdict


class RetryPolicy(NamedTuple):
    """How many attempts, and how long to wait before the next one."""

    max_attempts: int  # DYPLS_MAX_ATTEMPTS
    backoff_base: float  # seconds; doubles per attempt, jittered in [½, 1]
    backoff_max: float  # seconds; also caps the gateway's own hint
    rand: Callable[[float, float], float] = random.uniform

    def delay(self, attempt: int, hint: float | None) -> float:
        """The wait after ``attempt`` failed: the gateway's hint, else jittered backoff."""
        if hint is not None:
            return max(0.0, min(hint, self.backoff_max))
        return backoff(attempt, self.backoff_base, self.backoff_max, self.rand)

    def next_wait(self, attempt: int, verdict: Verdict, budget: Budget) -> float | None:
        """Seconds to wait before the next attempt, or None to stop with ``verdict``."""
        if not verdict.retry or attempt >= self.max_attempts:
            return None
        wait = self.delay(attempt, verdict.retry_after)
        if not budget.can_start_call(after=wait):
            return None
        return wait
