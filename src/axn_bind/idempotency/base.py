"""What both store backends share: states, records, outcomes, the error, the checks, and the\nbase class whose public methods validate once and call the backends' atomic transitions."""

from __future__ import annotations

import contextlib
import math
import secrets
from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import Enum
from typing import NamedTuple

from ..errors import AxnError, Kind

ENV_VAR = "AXN_IDEMPOTENCY_URL"


class State(str, Enum):
    """Where a key's one BindAxnExtension call stands."""

    IN_PROGRESS = "IN_PROGRESS"  # an invocation owns the key and may be calling Dyplsapi now
    COMPLETED = "COMPLETED"  # the answer is known and stored; replay it
    UNKNOWN = "UNKNOWN"  # the call was made and its outcome is unknown: a binding may exist


class Outcome(str, Enum):
    """What ``begin`` found and did (one value per branch, decided atomically by the store)."""

    STARTED = "started"  # no record: the caller owns the key now
    TAKEN_OVER = "taken_over"  # UNKNOWN / expired lease replaced: the caller owns the key now
    KEY_REUSED = "key_reused"  # the record's fingerprint differs (any state); nothing changed
    COMPLETED = "completed"  # replay ``record.response``
    IN_PROGRESS = "in_progress"  # another invocation holds a live lease
    UNKNOWN = "unknown"  # UNKNOWN record, take-over not allowed
    LEASE_EXPIRED = "lease_expired"  # IN_PROGRESS whose owner died (outcome unknown), no take-over

    @property
    def started(self) -> bool:
        return self in (Outcome.STARTED, Outcome.TAKEN_OVER)


class Record(NamedTuple):
    """One key's record in the store: its state, owner and stored answer."""

    state: State
    fingerprint: str
    token: str  # owner of an IN_PROGRESS record (random per begin)
    lease_until: float  # epoch seconds (the Redis server's clock); meaningful for IN_PROGRESS
    response: str | None  # exact JSON text of the stored answer (COMPLETED / UNKNOWN)
    status: int | None  # HTTP status of the stored answer
    upstream_request_id: str | None
    created_at: float  # epoch seconds when this record (this attempt) was created
    event: str | None = None  # the announcement of a COMPLETED outcome (its exact JSON text)
    announced: tuple[str, ...] = ()  # the targets that have received ``event``, sorted


class Begin(NamedTuple):
    """What ``begin`` found: the key taken, or the record that holds it."""

    started: bool  # True: the caller owns the key (IN_PROGRESS with ``token``) and calls Dyplsapi
    token: str | None
    record: Record | None  # existing record if not started; the replaced one on a take-over
    outcome: Outcome  # which branch was taken (tells a live lease from an expired one)


class StoreUnavailableError(AxnError):
    """The idempotency store could not be reached or refused the operation; fail closed."""

    code = "IdempotencyStoreUnavailable"
    status = 503
    kind = Kind.UNAVAILABLE


class IdempotencyStore(ABC):
    """The store contract. ``begin``, ``complete`` and ``mark_unknown`` check their arguments
    here, once for every backend, and call the backend's ``_begin`` / ``_finish``; each backend
    makes those transitions atomic and provides ``release``, ``get``, ``clear`` and ``close``."""

    # The longest a finishing write (complete / mark_unknown / release) may take, timeouts and
    # retries included: the time budget keeps this much back after every Dyplsapi call.
    write_seconds: float = 0.05

    def durability_problems(self) -> list[str]:
        """What in the store's setup can lose records before they expire (none by default)."""
        return []

    def begin(
        self,
        key: str,
        fingerprint: str,
        *,
        lease_seconds: float,
        ttl_seconds: int,
        take_over_unknown: bool,
    ) -> Begin:
        lease, ttl = check_begin(key, fingerprint, lease_seconds, ttl_seconds)
        token = new_token()
        try:
            return self._begin(key, fingerprint, token, lease, ttl, take_over_unknown)
        except StoreUnavailableError:
            # The store may have taken the key and only its reply been lost (a connection cut,
            # a restart): give the key back, so that a retry does not meet a lease that no call
            # stands behind. Best effort: a store still down keeps the lease until it ends.
            with contextlib.suppress(AxnError):
                self.release(key, token)
            raise

    def complete(
        self,
        key: str,
        token: str,
        *,
        response: str,
        status: int,
        ttl_seconds: int,
        upstream_request_id: str | None = None,
        event: str | None = None,
    ) -> bool:
        """Keep the answer (replayed to every retry) and, when there is one, the event that
        announces it (republished until :meth:`announce` has recorded every target)."""
        check_finish(key, token, response, status, ttl_seconds)
        if event is not None:
            check_text("event", event)
        return self._finish(
            State.COMPLETED, key, token, response, status, ttl_seconds, upstream_request_id, event
        )

    def mark_unknown(
        self,
        key: str,
        token: str,
        *,
        response: str,
        status: int,
        ttl_seconds: int,
        upstream_request_id: str | None,
    ) -> bool:
        check_finish(key, token, response, status, ttl_seconds)
        return self._finish(
            State.UNKNOWN, key, token, response, status, ttl_seconds, upstream_request_id, None
        )

    def announce(self, key: str, targets: Sequence[str]) -> bool:
        """Record that ``targets`` have received the event of ``key``'s COMPLETED record.
        False when there is no such record (expired, cleared, not completed, no event)."""
        check_text("key", key)
        names = [check_text("target", t) for t in targets]
        if any("\n" in name for name in names):
            raise ValueError("target names must not contain newlines")
        return self._announce(key, sorted(set(names)))

    def outbox_add(self, key: str) -> None:
        """Put ``key`` on the list of outcomes to announce (before its call: a record that is
        never announced is found again by :meth:`outbox_due`). Adding it again keeps its time."""
        self._outbox_add(check_text("key", key))

    def outbox_remove(self, key: str) -> None:
        """Take ``key`` off that list (announced everywhere, or nothing to announce)."""
        self._outbox_remove(check_text("key", key))

    def outbox_defer(self, key: str) -> None:
        """Move ``key`` to the back of the list, as if added now, so that keys the sweep cannot
        resolve yet (a target still failing, a binding held by an unknown outcome) never hide
        the ones behind them; it is due again after the grace period. Absent keys stay absent."""
        self._outbox_defer(check_text("key", key))

    def outbox_count(self, older_than: float) -> int:
        """How many keys were put on the list (or deferred) more than ``older_than`` seconds ago."""
        if not math.isfinite(older_than) or older_than < 0:
            raise ValueError(f"older_than must be >= 0 seconds, got {older_than!r}")
        return self._outbox_count(float(older_than))

    def outbox_due(self, older_than: float, limit: int) -> list[str]:
        """Keys put on the list more than ``older_than`` seconds ago, oldest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a whole number >= 1, got {limit!r}")
        if not math.isfinite(older_than) or older_than < 0:
            raise ValueError(f"older_than must be >= 0 seconds, got {older_than!r}")
        return self._outbox_due(float(older_than), limit)

    @abstractmethod
    def _begin(
        self, key: str, fingerprint: str, token: str, lease: float, ttl: int, take_over: bool
    ) -> Begin:
        """Atomically: own ``key`` with ``token`` for ``lease`` seconds, or report the record."""

    @abstractmethod
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
        """Atomically: move ``token``'s IN_PROGRESS record to ``state`` with the answer."""

    @abstractmethod
    def _announce(self, key: str, targets: list[str]) -> bool:
        """Atomically: add ``targets`` to the COMPLETED record's announced targets."""

    @abstractmethod
    def _outbox_add(self, key: str) -> None: ...

    @abstractmethod
    def _outbox_remove(self, key: str) -> None: ...

    @abstractmethod
    def _outbox_due(self, older_than: float, limit: int) -> list[str]: ...

    @abstractmethod
    def _outbox_defer(self, key: str) -> None: ...

    @abstractmethod
    def _outbox_count(self, older_than: float) -> int: ...

    @abstractmethod
    def release(self, key: str, token: str) -> bool: ...

    @abstractmethod
    def get(self, key: str) -> Record | None: ...

    @abstractmethod
    def clear(self, key: str) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...


def new_token() -> str:
    return secrets.token_hex(16)


def check_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def check_ttl(ttl_seconds: object) -> int:
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds < 1:
        raise ValueError(f"ttl_seconds must be a whole number of seconds >= 1, got {ttl_seconds!r}")
    return ttl_seconds


def check_begin(
    key: str, fingerprint: str, lease_seconds: float, ttl_seconds: int
) -> tuple[float, int]:
    """Validate ``begin``'s arguments; a record must outlive its lease, or a live call is lost."""
    check_text("key", key)
    check_text("fingerprint", fingerprint)
    ttl = check_ttl(ttl_seconds)
    if (
        isinstance(lease_seconds, bool)
        or not isinstance(lease_seconds, (int, float))
        or not math.isfinite(lease_seconds)
        or lease_seconds < 0.001
    ):
        raise ValueError(f"lease_seconds must be a positive number, got {lease_seconds!r}")
    if ttl < lease_seconds:
        raise ValueError(
            f"ttl_seconds ({ttl}) must be at least lease_seconds ({lease_seconds:g}): the record "
            "must outlive the lease so that an owner's death is seen as an unknown outcome"
        )
    return float(lease_seconds), ttl


def check_finish(key: str, token: str, response: str, status: int, ttl_seconds: int) -> None:
    check_text("key", key)
    check_text("token", token)
    if not isinstance(response, str):
        raise ValueError("response must be the JSON text (str) of the answer")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status code, got {status!r}")
    check_ttl(ttl_seconds)
