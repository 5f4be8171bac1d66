"""The invocation pipeline: event bytes → trigger adapter → service → answer shape.

Nothing raised here reaches the platform except :class:`TransientFailureError`, which asks
Function Compute (or EventBridge) to redeliver.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from . import __version__
from .config import get_settings
from .errors import (
    AxnError,
    ConfigurationError,
    DeadlineExceededError,
    TransientFailureError,
    UnexpectedError,
)
from .log import configure, log
from .outcome import (
    Outcome,
    batch_report,
    direct_body,
    http_response,
    redelivery,
    report_entry,
)
from .service import BindService, log_defect
from .triggers import Batch, DirectRequest, SweepRequest, parse_event
from .triggers.http import HttpRequest, bind_payload

NOT_ATTEMPTED = DeadlineExceededError(
    "Not attempted: too little of the function's time was left; the batch will be redelivered.",
    code="NotAttempted",
)

_service: BindService | None = None
_service_lock = threading.Lock()


def service() -> BindService:
    """The instance's service (settings validated, HTTP session opened) — built once, also
    when the first invocations arrive together (instance concurrency > 1): two services would
    mean two memory stores, and one order could be bound by each."""
    global _service  # noqa: PLW0603 - one per instance, reused by warm invocations
    if _service is None:
        with _service_lock:
            if _service is None:
                settings = get_settings()
                configure(settings.log_level)
                _service = BindService(settings)
                # Which release this instance runs: the code package has no package metadata.
                log("instance_started", version=__version__, python=sys.version.split()[0])
    return _service


def _service_or_error() -> BindService | ConfigurationError:
    """The service, or the configuration problem that prevents it (logged once per call)."""
    try:
        return service()
    except ConfigurationError as error:
        log("configuration_error", logging.ERROR, code=error.code, reason=error.message)
        return error


def warm_up() -> None:
    """Ahead of the first request: build the service, connect to Dyplsapi and check the
    idempotency store. A problem is logged, not raised (that would fail every start); each
    invocation then answers it, naming the setting to fix."""
    svc = _service_or_error()
    if isinstance(svc, ConfigurationError):
        return
    svc.client.preconnect()
    try:
        svc.check_store()
    except AxnError as error:
        log(
            "idempotency_store_check_failed", logging.WARNING, code=error.code, reason=error.message
        )


def reset() -> None:
    """Drop the instance state (tests, and settings changes)."""
    global _service  # noqa: PLW0603
    _service = None


def _request_id(context: Any) -> str:
    return str(getattr(context, "request_id", "") or "") or f"local-{os.urandom(16).hex()}"


def handle(event: Any, context: Any) -> Any:
    request_id = _request_id(context)
    try:
        invocation = parse_event(event)
    except AxnError as error:
        log("event_rejected", logging.WARNING, code=error.code, reason=error.message)
        return direct_body(Outcome.from_error(error, request_id))
    except Exception as exc:  # a defect in an adapter: the event may be fine, so redeliver
        log_defect(exc, "parse_event")
        raise TransientFailureError(
            f"The event could not be read ({type(exc).__name__}); redeliver it."
        ) from None
    try:
        if isinstance(invocation, HttpRequest):
            return _serve_http(invocation, context, request_id)
        if isinstance(invocation, Batch):
            return _serve_batch(invocation, context, request_id)
        if isinstance(invocation, SweepRequest):
            return _serve_sweep(invocation, context, request_id)
        return _serve_direct(invocation, context, request_id)
    except TransientFailureError:
        raise
    except Exception as exc:  # a defect outside the service: answered, or redelivered
        log_defect(exc, "handle")
        if isinstance(invocation, Batch):  # never answer a batch that was not fully reported
            raise TransientFailureError(
                f"The batch could not be reported ({type(exc).__name__}); redeliver it. Records "
                "already bound are replayed, not bound again."
            ) from None
        error = UnexpectedError(
            f"Unexpected internal error ({type(exc).__name__}); quote RequestId when reporting it."
        )
        outcome = Outcome.from_error(error, request_id)
        if isinstance(invocation, HttpRequest):
            return http_response(outcome)
        return direct_body(outcome)


def _bind(
    svc: BindService | ConfigurationError,
    payload: Any,
    context: Any,
    request_id: str,
    idempotency_key: str | None = None,
    *,
    announce_failures: bool = True,
    trigger: str = "direct",
) -> Outcome:
    if isinstance(svc, ConfigurationError):
        return Outcome.from_error(svc, request_id)
    budget = svc.budget(context)
    outcome = svc.bind(
        payload,
        context=context,
        budget=budget,
        request_id=request_id,
        idempotency_key=idempotency_key,
        announce_failures=announce_failures,
        trigger=trigger,
    )
    return _announce(svc, outcome, budget)


def _announce(svc: BindService, outcome: Outcome, budget: Any) -> Outcome:
    """The delivery step: announce the outcome where AXN_PUBLISH_TO says (nothing otherwise)."""
    if svc.announcer is None:
        return outcome
    return svc.announcer.deliver(outcome, budget)


def _serve_direct(req: DirectRequest, context: Any, request_id: str) -> dict[str, Any]:
    svc = _service_or_error()  # once: a configuration problem is logged once
    outcome = _bind(svc, req.payload, context, request_id)
    asynchronous = not isinstance(svc, ConfigurationError) and svc.settings.direct_async
    if asynchronous and (outcome.transient or outcome.body.get("Announced") is False):
        # FC retries an asynchronous invocation only when it fails.
        raise TransientFailureError(
            f"{outcome.code}: {outcome.body.get('Message', '')} (redelivery requested)"
        )
    return direct_body(outcome)


def _serve_http(req: HttpRequest, context: Any, request_id: str) -> dict[str, Any]:
    try:
        payload = bind_payload(req)
    except AxnError as error:
        log("http_rejected", logging.INFO, code=error.code, method=req.method, status=error.status)
        headers = {"Allow": "POST"} if error.status == 405 else None
        return http_response(Outcome.from_error(error, request_id), headers)
    outcome = _bind(
        _service_or_error(),
        payload,
        context,
        request_id,
        idempotency_key=req.header("idempotency-key"),
        announce_failures=False,  # an HTTP caller is told; the order flow hears of bindings only
        trigger="http",
    )
    return http_response(outcome)


def _serve_batch(batch: Batch, context: Any, request_id: str) -> dict[str, Any]:
    """Bind every record on its own; report each; raise once at the end if any needs redelivery."""
    svc = _service_or_error()
    if isinstance(svc, ConfigurationError):
        raise TransientFailureError(f"{len(batch.records)} record(s) not processed: {svc.message}")
    budget = svc.budget(context)
    entries: list[dict[str, Any]] = []
    for index, record in enumerate(batch.records):
        if record.error is not None:
            outcome = Outcome.from_error(record.error, request_id)
        elif index > 0 and not budget.can_start_call():
            outcome = Outcome.from_error(NOT_ATTEMPTED, request_id)
        else:
            outcome = svc.bind(
                record.payload,
                context=context,
                budget=budget,
                request_id=request_id,
                field_map=svc.settings.field_map if record.foreign else None,
                message_id=record.id,
                content_key=True,  # a raising batch is redelivered whole: never bind twice
                trigger=batch.source,
            )
            outcome = _announce(svc, outcome, budget)
        entries.append(report_entry(index, record.id, outcome, request_id))
    report = batch_report(batch.source, entries, request_id)
    log("batch", source=batch.source, records=len(entries), code=report["Code"])
    failure = redelivery(report)
    if failure is not None:
        raise failure
    return report


def _serve_sweep(req: SweepRequest, context: Any, request_id: str) -> dict[str, Any]:
    """Republish what an outage held back; raise (so that FC retries) when the store fails."""
    svc = _service_or_error()
    if isinstance(svc, ConfigurationError):
        raise TransientFailureError(f"The sweep did not run: {svc.message}")
    if svc.announcer is None:
        return {
            "Code": "OK",
            "Message": "AXN_PUBLISH_TO is not set: nothing is announced, so nothing is owed.",
            "RequestId": request_id,
        }
    try:
        counts = svc.announcer.sweep(svc.budget(context))
    except AxnError as error:
        log("sweep_failed", logging.ERROR, code=error.code, reason=error.message)
        raise TransientFailureError(f"The sweep stopped: {error.code}: {error.message}") from None
    log(
        "sweep",
        logging.WARNING if counts["Held"] or counts["Expired"] else logging.INFO,
        source=req.source,
        **{k.lower(): v for k, v in counts.items() if k != "HeldRecords"},
    )
    unresolved = counts["Failed"] + counts["Held"] + counts["Expired"] + counts["Remaining"]
    code = "OK" if not unresolved else "PartialFailure"
    message = (
        f"{counts['Checked']} owed outcome(s) checked: {counts['Announced']} announced, "
        f"{counts['Failed']} still failing, {counts['Dropped']} with nothing to announce, "
        f"{counts['InFlight']} still being bound; {counts['Held']} binding(s) held by an unknown "
        "outcome"
        + (
            f" (the oldest {counts['HeldOldestSeconds']} s old: check each AttemptId in "
            "HeldRecords with QuerySubscriptionDetail, then clear its record with "
            "python -m tools.idem)"
            if counts["Held"]
            else ""
        )
        + f"; {counts['Expired']} record(s) expired before their outcome was announced; "
        f"{counts['Remaining']} left for the next sweep."
    )
    return {"Code": code, "Message": message, "RequestId": request_id, **counts}
