"""How long to wait before another attempt, one rule each for the Dyplsapi client and every
publish target: exponential backoff with jitter, and the wait an answer asks for (``Retry-After``
and Alibaba Cloud's ``x-acs-retry-after``)."""

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


def hint_seconds(value: object, per_second: int = 1) -> float | None:
    """A wait an answer asks for as a whole number (ASCII digits) of seconds, or of
    1/``per_second`` seconds (1000 for ``x-acs-retry-after``'s milliseconds), in seconds;
    None when ``value`` is absent or not such a number."""
    text = str(value or "").strip()
    if text.isascii() and text.isdigit():
        return int(text) / per_second
    return None


def retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds, from a number of seconds or an HTTP date (``now`` being the
    current time, as a Unix timestamp)."""
    if not value:
        return None
    seconds = hint_seconds(value)
    if seconds is not None:
        return seconds
    from email.utils import parsedate_to_datetime  # only for a date: not on the bind path

    try:
        return max(0.0, parsedate_to_datetime(value.strip()).timestamp() - now)
    except (TypeError, ValueError, OverflowError):
        return None
