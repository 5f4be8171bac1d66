"""Helpers shared by the announcement targets' tests."""

from __future__ import annotations


class Sleeps:
    """A target's ``sleep``: records each wait between attempts instead of waiting, so that a
    test reads the backoff (and a retry costs no time)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
