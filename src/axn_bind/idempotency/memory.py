"""In-process idempotency store: a dict behind a lock, with expiry.

It protects one function instance only. Function Compute runs several instances at once and
starts new ones freely, so a redelivery that lands on another instance is not seen here: use the
Redis backend (``AXN_IDEMPOTENCY_URL=redis://…``) in production. The rules are the same as the
Redis backend's, so tests of the service against this store hold for both.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from ..log import log
from .base import Begin, IdempotencyStore, Outcome, Record, State, check_text

_SWEEP_EVERY = 60.0  # seconds between full scans for expired records


class _Entry:
    """A record with its expiry, and the record a take-over replaced (restored by ``release``)."""

    __slots__ = ("expires_at", "previous", "record")

    def __init__(self, record: Record, expires_at: float, previous: Record | None = None) -> None:
        self.record, self.expires_at, self.previous = record, expires_at, previous


class MemoryStore(IdempotencyStore):
    """Single-instance store; every operation holds one lock, so each transition is atomic."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._outbox: dict[str, float] = {}  # key -> when it was put on the list
        self._next_sweep = clock() + _SWEEP_EVERY
        if os.environ.get("FC_FUNCTION_NAME") or os.environ.get("FC_INSTANCE_ID"):
            log(
                "idempotency_memory_store",
                logging.WARNING,
                message="The in-memory idempotency store protects only this one instance; "
                "a redelivery handled by another instance can create a second binding. "
                "Set AXN_IDEMPOTENCY_URL to a redis:// or rediss:// URL.",
            )

    # -- helpers (call with the lock held) --------------------------------------------------

    def _live(self, key: str, now: float) -> _Entry | None:
        if now >= self._next_sweep:
            for k in [k for k, e in self._entries.items() if e.expires_at <= now]:
                del self._entries[k]
            self._next_sweep = now + _SWEEP_EVERY
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    # -- transitions: IdempotencyStore checks the arguments, then calls these ---------------

    def _begin(
        self, key: str, fingerprint: str, token: str, lease: float, ttl: int, take_over: bool
    ) -> Begin:
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)

            def own(outcome: Outcome, previous: Record | None) -> Begin:
                record = Record(
                    State.IN_PROGRESS, fingerprint, token, now + lease, None, None, None, now
                )
                self._entries[key] = _Entry(record, now + ttl, previous)
                return Begin(True, token, previous, outcome)

            if entry is None:
                return own(Outcome.STARTED, None)
            rec = entry.record
            if rec.fingerprint != fingerprint:
                return Begin(False, None, rec, Outcome.KEY_REUSED)
            if rec.state is State.COMPLETED:
                return Begin(False, None, rec, Outcome.COMPLETED)
            if rec.state is State.IN_PROGRESS and rec.lease_until > now:
                return Begin(False, None, rec, Outcome.IN_PROGRESS)
            expired = rec.state is State.IN_PROGRESS
            if take_over:
                return own(Outcome.TAKEN_OVER, rec)
            return Begin(False, None, rec, Outcome.LEASE_EXPIRED if expired else Outcome.UNKNOWN)

    def _finish(
        self,
        state: State,
        key: str,
        token: str,
        response: str,
        status: int,
        ttl_seconds: int,
        upstream_request_id: str | None,
        event: str | None,
    ) -> bool:
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry is None or entry.record.token != token:
                return False
            if entry.record.state is state:
                return True  # the same call repeated (the Redis backend may replay a lost reply)
            if entry.record.state is not State.IN_PROGRESS:
                return False
            entry.record = entry.record._replace(
                state=state,
                response=response,
                status=status,
                upstream_request_id=upstream_request_id or None,
                event=event,
                announced=(),
            )
            entry.expires_at = now + ttl_seconds
            return True

    def _announce(self, key: str, targets: list[str]) -> bool:
        with self._lock:
            entry = self._live(key, self._clock())
            if entry is None or entry.record.state is not State.COMPLETED:
                return False
            if entry.record.event is None:
                return False
            done = tuple(sorted(set(entry.record.announced) | set(targets)))
            entry.record = entry.record._replace(announced=done)
            return True

    def _outbox_add(self, key: str) -> None:
        with self._lock:
            self._outbox.setdefault(key, self._clock())

    def _outbox_remove(self, key: str) -> None:
        with self._lock:
            self._outbox.pop(key, None)

    def _outbox_defer(self, key: str) -> None:
        with self._lock:
            if key in self._outbox:
                self._outbox[key] = self._clock()

    def _outbox_count(self, older_than: float) -> int:
        with self._lock:
            before = self._clock() - older_than
            return sum(1 for t in self._outbox.values() if t <= before)

    def _outbox_due(self, older_than: float, limit: int) -> list[str]:
        with self._lock:
            before = self._clock() - older_than
            due = sorted((t, k) for k, t in self._outbox.items() if t <= before)
            return [k for _, k in due[:limit]]

    # -- the rest of the API ----------------------------------------------------------------

    def release(self, key: str, token: str) -> bool:
        check_text("key", key)
        check_text("token", token)
        with self._lock:
            entry = self._live(key, self._clock())
            if entry is None or entry.record.state is not State.IN_PROGRESS:
                return False
            if entry.record.token != token:
                return False
            if entry.previous is None:
                del self._entries[key]
            else:  # undo a take-over: the replaced record (a binding may exist) comes back
                entry.record, entry.previous = entry.previous, None
            return True

    def get(self, key: str) -> Record | None:
        check_text("key", key)
        with self._lock:
            entry = self._live(key, self._clock())
            return None if entry is None else entry.record

    def clear(self, key: str) -> bool:
        check_text("key", key)
        with self._lock:
            entry = self._live(key, self._clock())
            if entry is None:
                return False
            del self._entries[key]
            return True

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._outbox.clear()

    def __len__(self) -> int:
        with self._lock:
            now = self._clock()
            return sum(1 for e in self._entries.values() if e.expires_at > now)
