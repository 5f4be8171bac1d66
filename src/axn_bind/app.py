"""The invocation pipeline: event bytes → trigger adapter → service → delivery.

Nothing raised here reaches the platform except :class:`TransientFailureError`, which asks
Function Compute (or EventBridge) to redeliver.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from typing import Any

from .config import get_settings
from .delivery import http_response
from .dypls import Deadline
from .errors import AxnError, ConfigurationError, DeadlineExceededError, TransientFailureError
from .log import configure, log
from .service import BOUND, FAILED, REJECTED, BindService, Outcome
from .triggers import Batch, parse_event
from .triggers.http import HttpRequest, bind_payload

# A record of a batch is started only with time for a healthy call left: a full connect + read
# timeout, capped at this many seconds so that short functions still make progress.
RECORD_MIN_SECONDS = 1.0
NOT_ATTEMPTED = DeadlineExceededError(
    "Not attempted: too little of the function's time was left; the batch will be redelivered.",
    code="NotAttempted",
)

_service: BindService | None = None


def service() -> BindService:
    """The instance's service (settings validated, HTTP session opened) — built once."""
    global _service  # noqa: PLW0603 - one per instance, reused by warm invocations
    if _service is None:
        settings = get_settings()
        configure(settings.log_level)
        _service = BindService(settings)
    return _service


def _service_or_error() -> BindService | ConfigurationError:
    """The service, or the configuration problem that prevents it (logged once per call)."""
    try:
        return service()
    except ConfigurationError as error:
        log("configuration_error", logging.ERROR, code=error.code, reason=error.message)
        return error


def warm_up() -> None:
    """Build the service ahead of the first request. A configuration problem is logged, not
    raised (that would fail every start); each invocation then answers it with a 500 that names
    the setting to fix."""
    _service_or_error()


def reset() -> None:
    """Drop the instance state (tests, and settings changes)."""
    global _service  # noqa: PLW0603
    _service = None


def _request_id(context: Any) -> str:
    return str(getattr(context, "request_id", "") or "") or f"local-{uuid.uuid4()}"


def handle(event: Any, context: Any) -> Any:
    request_id = _request_id(context)
    try:
        invocation = parse_event(event)
    except AxnError as error:
        log("event_rejected", logging.WARNING, code=error.code, reason=error.message)
        return Outcome.from_error(error, request_id).body
    try:
        if isinstance(invocation, HttpRequest):
            return _serve_http(invocation, context, request_id)
        if isinstance(invocation, Batch):
            return _serve_batch(invocation, context, request_id)
        return _bind(invocation.payload, context, request_id).body
    except TransientFailureError:
        raise
    except Exception as exc:  # a defect: answer it, never let it reach the platform
        log(
            "unexpected_failure",
            logging.ERROR,
            error_type=type(exc).__name__,
            error=str(exc)[:500],
            traceback="".join(traceback.format_tb(exc.__traceback__))[-4000:],
        )
        error = AxnError(
            f"Unexpected internal error ({type(exc).__name__}); quote RequestId when reporting it."
        )
        outcome = Outcome.from_error(error, request_id)
        if isinstance(invocation, HttpRequest):
            return http_response(outcome)
        return outcome.body


def _bind(
    payload: Any, context: Any, request_id: str, idempotency_key: str | None = None
) -> Outcome:
    svc = _service_or_error()
    if isinstance(svc, ConfigurationError):
        return Outcome.from_error(svc, request_id)
    deadline = Deadline.from_context(context, svc.settings.deadline_margin)
    return svc.bind(
        payload,
        context=context,
        deadline=deadline,
        request_id=request_id,
        idempotency_key=idempotency_key,
    )


def _serve_http(req: HttpRequest, context: Any, request_id: str) -> dict[str, Any]:
    try:
        payload = bind_payload(req)
    except AxnError as error:
        log("http_rejected", logging.INFO, code=error.code, method=req.method, status=error.status)
        headers = {"Allow": "POST"} if error.status == 405 else None
        return http_response(Outcome.from_error(error, request_id), headers)
    return http_response(
        _bind(payload, context, request_id, idempotency_key=req.header("idempotency-key"))
    )


def _serve_batch(batch: Batch, context: Any, request_id: str) -> dict[str, Any]:
    """Bind every record on its own; report each; raise once at the end if any needs redelivery."""
    svc = _service_or_error()
    if isinstance(svc, ConfigurationError):
        raise TransientFailureError(f"{len(batch.records)} record(s) not processed: {svc.message}")
    settings = svc.settings
    deadline = Deadline.from_context(context, settings.deadline_margin)
    needed = min(settings.connect_timeout + settings.read_timeout, RECORD_MIN_SECONDS)
    entries: list[dict[str, Any]] = []
    for index, record in enumerate(batch.records):
        if record.error is not None:
            outcome = Outcome.from_error(record.error, request_id)
        elif index > 0 and deadline.remaining() < needed:
            outcome = Outcome.from_error(NOT_ATTEMPTED, request_id)
        else:
            outcome = svc.bind(
                record.payload,
                context=context,
                deadline=deadline,
                request_id=request_id,
                field_map=settings.field_map if record.foreign else None,
                message_id=record.id,
                content_key=True,  # a raising batch is redelivered whole: never bind twice
            )
        entries.append(_report_entry(index, record.id, outcome, request_id))
    counts = {r: sum(1 for e in entries if e["Result"] == r) for r in (BOUND, REJECTED, FAILED)}
    report = {
        "Code": "OK" if counts[BOUND] == len(entries) else "PartialFailure",
        "Message": f"{len(entries)} record(s): {counts[BOUND]} bound, {counts[REJECTED]} "
        f"rejected, {counts[FAILED]} failed",
        "RequestId": request_id,
        "Source": batch.source,
        "Records": entries,
    }
    log("batch", source=batch.source, records=len(entries), **counts)
    if counts[FAILED]:
        failed = ", ".join(
            f"{e['Id'] or '#' + str(e['Index'])} ({e['Code']})"
            for e in entries
            if e["Result"] == FAILED
        )
        raise TransientFailureError(
            f"{counts[FAILED]} of {len(entries)} record(s) need redelivery: {failed}. "
            f"{counts[BOUND]} bound, {counts[REJECTED]} rejected for good."
        )
    return report


def _report_entry(index: int, record_id: str | None, outcome: Outcome, request_id: str) -> dict:
    """One line of the batch report: identity, result, and the Dyplsapi-shaped body."""
    entry: dict[str, Any] = {"Index": index, "Id": record_id, "Result": outcome.result}
    if outcome.replayed:
        entry["Replayed"] = True
    entry.update(outcome.body)
    if entry.get("RequestId") == request_id:  # only Dyplsapi's own request ids are worth keeping
        del entry["RequestId"]
    return entry
