"""Announcing outcomes without losing one: deliver after the answer is known, remember what was
delivered in the idempotency record, and sweep up what an outage held back.

The record of a keyed request carries its event from the moment the outcome is kept, and the key
sits in the outbox from the moment the store gave this call the key, before Dyplsapi is called
(a request refused before that owes nothing); an unknown outcome keeps it there. :meth:`Announcer.deliver` sends the event to every
configured target that has not had it yet and records each success; when all have it, the key
leaves the outbox. A retry or redelivery replays the stored outcome and, through ``deliver``,
republishes the stored event under the same id: never a second binding. :meth:`Announcer.sweep`
(the timer's ``{"action": "sweep"}``) does the same for keys left in the outbox longer than the
grace period, within the invocation's time.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from ..budget import Budget
from ..config import Settings
from ..errors import AxnError, ConfigurationError, PublishError
from ..idempotency import IdempotencyStore, State
from ..idempotency.guard import attempt_of
from ..log import log
from ..outcome import KEEP_UNKNOWN, Outcome
from . import Target, open_target
from .event import Event

SWEEP_BATCH = 100  # keys read from the outbox at a time
HELD_NAMED = 20  # held bindings named in a sweep's answer and log line, oldest first


def event_from_text(text: str) -> Event:
    body = json.loads(text)
    return Event(str(body["id"]), str(body["type"]), text)


class Announcer:
    def __init__(self, settings: Settings, store: IdempotencyStore) -> None:
        self.targets: list[Target] = [
            open_target(url, webhook_secret=settings.webhook_secret) for url in settings.publish_to
        ]
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ConfigurationError("AXN_PUBLISH_TO names the same target twice.")
        self.store = store
        self.timeout = settings.publish_timeout
        self.grace = settings.sweep_grace

    def _send(
        self, event: Event, pending: list[Target], budget: Budget
    ) -> tuple[list[str], list[PublishError]]:
        delivered: list[str] = []
        failures: list[PublishError] = []
        for target in pending:
            left = budget.remaining() - budget.record_seconds
            if left <= 0.05:
                failures.append(
                    PublishError(
                        "no time was left to deliver the event", target=target.name, retryable=True
                    )
                )
                continue
            try:
                target.send(event, timeout=min(self.timeout, left))
            except PublishError as error:
                failures.append(error)
                log(
                    "publish_failed",
                    logging.WARNING,
                    target=target.name,
                    event_id=event.id,
                    event_type=event.type,
                    retryable=error.retryable,
                    reason=error.message,
                )
            else:
                delivered.append(target.name)
        return delivered, failures

    def _settle(self, record: str | None, delivered: list[str], complete: bool) -> None:
        """Write down what was delivered; a store failure only means a later republish."""
        if record is None:
            return
        try:
            if delivered:
                self.store.announce(record, delivered)
            if complete:
                self.store.outbox_remove(record)
        except AxnError as error:
            log("publish_not_recorded", logging.WARNING, record=record, reason=error.message)

    def deliver(self, outcome: Outcome, budget: Budget) -> Outcome:
        """Announce ``outcome`` to the targets that have not had it; mark the answer
        ``"Announced": false`` when a target could not be reached (it is republished later)."""
        if outcome.event is None:  # nothing to announce (or nothing that can be, yet)
            # An unknown outcome stays owed: a binding may exist that the order flow has not
            # heard of, and the sweep names it as held until it is resolved.
            self._settle(outcome.record, [], complete=outcome.record_as != KEEP_UNKNOWN)
            return outcome
        event = event_from_text(outcome.event)
        pending = [t for t in self.targets if t.name not in outcome.announced]
        if not pending:
            self._settle(outcome.record, [], complete=True)
            return outcome
        delivered, failures = self._send(event, pending, budget)
        self._settle(outcome.record, delivered, complete=not failures)
        announced = tuple(sorted({*outcome.announced, *delivered}))
        log(
            "published",
            logging.WARNING if failures else logging.INFO,
            result="failed" if not delivered else "partial" if failures else "delivered",
            event_id=event.id,
            event_type=event.type,
            record=outcome.record,
            delivered=delivered or None,
            failed=[f.target for f in failures] or None,
        )
        outcome = outcome._replace(announced=announced)
        return outcome.with_fields(Announced=False) if failures else outcome

    def sweep(self, budget: Budget, now: float | None = None) -> dict[str, Any]:
        """Republish what is still owed after the grace period, oldest first, while time lasts.

        Every key read is resolved or moved to the back of the outbox (``outbox_defer``), so the
        next read always reaches newer keys: no number of unresolvable entries can hide an owed
        announcement behind them. A binding held by an unknown outcome (its record UNKNOWN, or
        IN_PROGRESS past its lease: the instance died mid-call) is counted in ``Held`` with the
        oldest one's age and the AttemptIds to check with QuerySubscriptionDetail."""
        counts = {"Checked": 0, "Announced": 0, "Failed": 0, "Dropped": 0, "Expired": 0}
        counts.update(InFlight=0, Held=0)
        held: list[tuple[float, str, str | None]] = []  # (created at, record, attempt id)
        now = time.time() if now is None else now
        due = self.store.outbox_count(self.grace)  # what this sweep owes an answer about
        seen: set[str] = set()  # a key deferred in this sweep and already due again (grace 0)
        while self._time_left(budget):
            keys = [k for k in self.store.outbox_due(self.grace, SWEEP_BATCH) if k not in seen]
            if not keys:
                break
            for key in keys:
                if not self._time_left(budget):
                    break
                seen.add(key)
                counts["Checked"] += 1
                record = self.store.get(key)
                if record is None:  # expired or cleared before its outcome was announced
                    self.store.outbox_remove(key)
                    counts["Expired"] += 1
                    log("outbox_record_expired", logging.WARNING, record=key)
                    continue
                if record.state is State.COMPLETED and record.event is None:
                    self.store.outbox_remove(key)  # nothing to announce
                    counts["Dropped"] += 1
                    continue
                if record.state is State.IN_PROGRESS and record.lease_until > now:
                    self.store.outbox_defer(key)  # its call is still running
                    counts["InFlight"] += 1
                    continue
                if record.state is not State.COMPLETED:  # unknown until an operator resolves it
                    self.store.outbox_defer(key)
                    held.append((record.created_at, key, attempt_of(record)))
                    continue
                result = self.deliver(Outcome.replay(record, key), budget)
                if result.body.get("Announced") is False:
                    self.store.outbox_defer(key)
                    counts["Failed"] += 1
                else:
                    counts["Announced"] += 1
        counts["Held"] = len(held)
        # Due when the sweep started and not reached (a key deferred now is due a grace later).
        answer: dict[str, Any] = {**counts, "Remaining": max(0, due - counts["Checked"])}
        if held:
            held.sort()
            answer["HeldOldestSeconds"] = max(0, round(now - held[0][0]))
            answer["HeldRecords"] = [{"Record": k, "AttemptId": a} for _, k, a in held[:HELD_NAMED]]
            log(
                "bindings_held",
                logging.WARNING,
                held=len(held),
                oldest_seconds=answer["HeldOldestSeconds"],
            )
            for created, key, attempt in held[:HELD_NAMED]:
                log(
                    "binding_held",
                    logging.WARNING,
                    record=key,
                    attempt_id=attempt,
                    age_seconds=max(0, round(now - created)),
                )
        return answer

    def _time_left(self, budget: Budget) -> bool:
        return budget.remaining() - budget.record_seconds > self.timeout
