"""How long to wait before another attempt: exponential backoff with jitter, one rule for the
Dyplsapi client and every publish target."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff(
    attempt: int,
    base: float,
    cap: float,
    rand: Callable[[float, float], float] = random.uniform,
) -> float:
    """The wait after attempt number ``attempt`` (1 for the first) failed: ``base`` seconds,
    doubled per attempt and at most ``cap``, jittered between half of that and all of it."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return rand(ceiling / 2, ceiling)
