"""Worker processes for the contention tests (started with multiprocessing's spawn method).

Kept apart from pytest and the fixtures so that each spawned interpreter imports only the store.
"""

from __future__ import annotations

from typing import Any


def race_begin(
    url: str,
    rounds: list[list[str]],
    take_over: bool,
    barrier: Any,
    results: Any,
) -> None:
    """For each round: wait for every racer, then ``begin`` each of the round's keys at once.

    Puts ``[(key, outcome, own token or None, token of the record seen or None), …]``.
    """
    from axn_bind.idempotency import open_store

    store = open_store(url)
    seen: list[tuple[str, str, str | None, str | None]] = []
    try:
        store.get("warm-up")  # connect and authenticate before the race starts
        for keys in rounds:
            barrier.wait(timeout=30)
            for key in keys:
                result = store.begin(
                    key, "fp", lease_seconds=30, ttl_seconds=120, take_over_unknown=take_over
                )
                seen_token = result.record.token if result.record is not None else None
                seen.append((key, result.outcome.value, result.token, seen_token))
    except BaseException as exc:  # report instead of hanging the parent on results.get()
        results.put(repr(exc))
        raise
    finally:
        store.close()
    results.put(seen)
