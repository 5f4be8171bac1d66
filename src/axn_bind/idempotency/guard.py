"""At most one BindAxnExtension call per key: the begin → call → finish state machine.

:func:`run_once` owns the whole of it, so that no path can leave a key owned, lose an answer, or
call twice:

- ``begin`` fails → nothing was sent; the error (503, fail closed) propagates;
- the key is held elsewhere → replay its answer, or one of the three 409 errors;
- the call returns an Outcome → it is kept (replayed to every retry), kept as unknown (a binding
  may exist) or the key is released (provably nothing bound), by :attr:`Outcome.record_as`;
- the call raises anything at all (a defect, an interrupt) → whether it reached Dyplsapi cannot
  be told, so the record is kept as unknown before the exception goes on.

A finish that the store does not confirm (the lease was lost, the store failed) is logged as an
error with the record's key: the answer stands, and a retry will meet an unknown outcome.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable

from ..errors import (
    AxnError,
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    OutcomeUnknownError,
    UnexpectedError,
)
from ..log import log
from ..outcome import KEEP, KEEP_UNKNOWN, Outcome, dump_body
from .base import IdempotencyStore, Record
from .base import Outcome as Found


def run_once(
    store: IdempotencyStore,
    key: str,
    fingerprint: str,
    call: Callable[[], Outcome],
    *,
    cause: str,
    reused: str,
    lease_seconds: float,
    ttl_seconds: int,
    take_over_unknown: bool,
    call_seconds: float,
    wall_clock: Callable[[], float] = time.time,
    event_of: Callable[[Outcome], str | None] | None = None,
    owe: Callable[[], None] | None = None,
) -> Outcome:
    """Run ``call`` once for ``key``; ``cause`` names the key to a caller ("this message"),
    ``reused`` is the message when the key's record holds a request with other data.

    ``event_of`` makes the announcement of an outcome that is kept; it is stored with the record
    (the outbox) and carried on the returned Outcome, as is the record's key. ``owe`` runs once
    the key is owned and before the call (it puts the key in the outbox): only a call that is
    made can owe an announcement, so a refused retry or a refused store adds nothing that could
    never leave. When ``owe`` fails, the key is given back and nothing is sent."""
    begin = store.begin(
        key,
        fingerprint,
        lease_seconds=lease_seconds,
        ttl_seconds=ttl_seconds,
        take_over_unknown=take_over_unknown,
    )
    if not begin.started:
        record = begin.record
        assert record is not None
        if begin.outcome is Found.COMPLETED:
            return Outcome.replay(record, key, now=wall_clock())
        if begin.outcome is Found.KEY_REUSED:
            raise IdempotencyKeyReusedError(reused)
        if begin.outcome is Found.IN_PROGRESS:
            # The owner's call ends within one exchange; its lease is only the worst case.
            left = min(record.lease_until - wall_clock(), call_seconds)
            raise IdempotencyInProgressError(
                f"A request with {cause} is being processed; retry after it finishes to get its "
                "answer.",
                retry_after=max(1, math.ceil(left)),
            )
        raise OutcomeUnknownError(  # UNKNOWN, or a lease whose owner died mid-call
            f"An earlier attempt with {cause} may have created a binding (upstream RequestId "
            f"{record.upstream_request_id or 'unknown'}, attempt "
            f"{attempt_of(record) or 'unknown'}, idempotency record {key}); check it with "
            "QuerySubscriptionDetail, then clear the record (python -m tools.idem) to bind again.",
            request_id=record.upstream_request_id,
        )
    token = begin.token
    assert token is not None
    if owe is not None:
        try:
            owe()
        except BaseException:
            with contextlib.suppress(AxnError):
                store.release(key, token)
            raise
    previous = begin.record
    if previous is not None:  # taken over: the earlier attempt may have left a binding
        log(
            "possible_orphan_binding",
            logging.WARNING,
            record=key,
            previous_state=previous.state.value,
            previous_upstream_request_id=previous.upstream_request_id,
            previous_attempt_id=attempt_of(previous),
            previous_started_at=previous.created_at,
        )
    try:
        outcome = call()
    except BaseException as exc:
        error = UnexpectedError(
            f"Unexpected internal error ({type(exc).__name__}); whether Dyplsapi was called is "
            "not known."
        )
        _finish(store, key, token, Outcome.from_error(error, ""), ttl_seconds)
        raise
    if previous is not None:
        outcome = outcome.with_fields(
            PossibleOrphanRequestId=previous.upstream_request_id,
            PossibleOrphanAttemptId=attempt_of(previous),
        )
    event = event_of(outcome) if event_of is not None and outcome.record_as == KEEP else None
    outcome = outcome._replace(record=key, event=event)
    _finish(store, key, token, outcome, ttl_seconds)
    return outcome


def attempt_of(record: Record) -> str | None:
    """The ``AttemptId`` (signature nonce @ signing time) kept in an unknown outcome's answer;
    None when the record holds no answer (its owner died before it could write one)."""
    try:
        found = json.loads(record.response or "{}").get("AttemptId")
    except (ValueError, AttributeError):
        return None
    return str(found) if found else None


def _finish(store: IdempotencyStore, key: str, token: str, outcome: Outcome, ttl: int) -> None:
    """Record ``outcome``; a finish the store does not confirm is logged, never raised."""
    how = outcome.record_as
    try:
        if how == KEEP:
            done = store.complete(
                key,
                token,
                response=outcome.body_text(),
                status=outcome.status,
                ttl_seconds=ttl,
                upstream_request_id=outcome.upstream_request_id,
                event=outcome.event,
            )
        elif how == KEEP_UNKNOWN:
            done = store.mark_unknown(
                key,
                token,
                response=dump_body(outcome.body),
                status=outcome.status,
                ttl_seconds=ttl,
                upstream_request_id=outcome.upstream_request_id,
            )
        else:
            done = store.release(key, token)
    except AxnError as error:
        log(
            "idempotency_record_not_saved",
            logging.ERROR,
            record=key,
            record_as=how,
            code=error.code,
            reason=error.message,
            result=outcome.result,
        )
        return
    if not done:
        log(
            "idempotency_record_lost",
            logging.ERROR,
            record=key,
            record_as=how,
            result=outcome.result,
            reason="the store no longer holds this invocation's lease (it expired or was taken "
            "over); a retry will meet the record as it is now",
        )
