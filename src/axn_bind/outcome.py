"""What happened to one bind request, and the three shapes it is answered in: the HTTP response
struct, the plain body of a direct invocation, and the batch report.

An :class:`Outcome` is made once (from a binding, an error, an upstream verdict or a stored
record) and never changed; :meth:`Outcome.with_fields` makes a new one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import AxnError, Kind, TransientFailureError
from .log import clean, scrub

if TYPE_CHECKING:
    from .dypls.classify import Verdict
    from .idempotency import Record

BOUND, REJECTED, FAILED = "bound", "rejected", "failed"
KEEP, KEEP_UNKNOWN, RELEASE = "keep", "keep-unknown", "release"


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k) if isinstance(k, str) else k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def dump_body(body: dict[str, Any]) -> str:
    """The one JSON text form of a body: what is answered, stored and replayed byte for byte."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class Outcome(NamedTuple):
    """One bind request's result, in the Dyplsapi response shape. ``kind`` is None when bound."""

    status: int
    body: dict[str, Any]
    kind: Kind | None = None
    headers: Mapping[str, str] = MappingProxyType({})
    text: str | None = None  # exact body text of a replay
    replayed: bool = False
    upstream_request_id: str | None = None  # Dyplsapi's RequestId, when the call reached it
    record: str | None = None  # the idempotency record (axn:idem:…) holding it, when keyed
    event: str | None = None  # the announcement of this outcome (CloudEvents JSON), if any
    announced: tuple[str, ...] = ()  # targets that have received ``event``
    attempts: int | None = None  # Dyplsapi attempts made for it (none for a replay or an error)
    upstream_ms: int | None = None  # the last attempt's time on the wire

    @property
    def result(self) -> str:
        """bound | rejected (permanent: do not redeliver) | failed (transient: redeliver)."""
        if self.kind is None:
            return BOUND
        return FAILED if self.kind.transient else REJECTED

    @property
    def transient(self) -> bool:
        return self.result == FAILED

    @property
    def record_as(self) -> str:
        """What the idempotency record does with this outcome: keep it and replay it, keep it
        as unknown (a binding may exist), or release the key (provably nothing was bound)."""
        if self.kind is None or self.kind is Kind.REJECTED:
            return KEEP
        if self.kind is Kind.UNKNOWN:
            return KEEP_UNKNOWN
        return RELEASE

    @property
    def code(self) -> str | None:
        return self.body.get("Code")

    def body_text(self) -> str:
        return self.text if self.text is not None else dump_body(self.body)

    def with_fields(self, **fields: Any) -> Outcome:
        """The same outcome with ``fields`` added to its body."""
        return self._replace(body={**self.body, **fields}, text=None)

    @classmethod
    def from_error(cls, error: AxnError, request_id: str) -> Outcome:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        # Text from a caller or from upstream JSON may hold lone surrogates; no answer, record
        # or event may carry one (it cannot be written as UTF-8): each way in cleans its text.
        return cls(
            error.status,
            _clean(error.body(request_id)),
            error.kind,
            headers,
            upstream_request_id=error.request_id,
        )

    @classmethod
    def from_verdict(cls, verdict: Verdict, request_id: str) -> Outcome:
        if verdict.binding is not None and verdict.kind is None:
            return cls(
                200,
                _clean(
                    {
                        "Code": "OK",
                        "Message": verdict.message or "OK",
                        "RequestId": verdict.request_id or request_id,
                        "SecretBindDTO": dict(verdict.binding),
                    }
                ),
                upstream_request_id=verdict.request_id,
                attempts=verdict.attempts,
                upstream_ms=verdict.upstream_ms,
            )
        assert verdict.kind is not None
        headers = {}
        if verdict.kind is Kind.THROTTLED:
            headers["Retry-After"] = str(max(1, math.ceil(verdict.retry_after or 1)))
        body = _clean(
            {
                "Code": verdict.code,
                "Message": verdict.message,
                "RequestId": verdict.request_id or request_id,
            }
        )
        if verdict.kind is Kind.UNKNOWN and verdict.attempt:
            body["AttemptId"] = verdict.attempt  # kept in the record: names a possible orphan
        return cls(
            verdict.status,
            body,
            verdict.kind,
            headers,
            upstream_request_id=verdict.request_id,
            attempts=verdict.attempts,
            upstream_ms=verdict.upstream_ms,
        )

    @classmethod
    def replay(cls, record: Record, key: str | None = None, now: float | None = None) -> Outcome:
        """The stored answer, byte for byte; a binding whose ``Expiration`` has passed by ``now``
        (epoch seconds) is answered with ``"Expired": true`` added, never as if it were live."""
        text = clean(record.response or "{}")
        status = record.status or 200
        kind = None if status == 200 else Kind.REJECTED
        body = json.loads(text)
        if now is not None and kind is None and _expired(body.get("Expiration"), now):
            body["Expired"] = True
            text = dump_body(body)
        return cls(
            status,
            body,
            kind,
            text=text,
            replayed=True,
            upstream_request_id=record.upstream_request_id,
            record=key,
            event=record.event,
            announced=record.announced,
        )


def _expired(expiration: Any, now: float) -> bool:
    """Whether a stored ``Expiration`` ('yyyy-MM-dd HH:mm:ss', Asia/Shanghai) is past ``now``."""
    if not isinstance(expiration, str):
        return False  # an answer stored before the field was kept: nothing to judge by
    from .models import parse_expiration  # the bind's own reading of Expiration

    try:
        return parse_expiration(expiration).timestamp() <= now
    except ValueError:
        return False


# -- the three answer shapes ----------------------------------------------------------------


def http_response(outcome: Outcome, extra_headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``{statusCode, headers, isBase64Encoded, body}`` with a JSON body, as FC and API Gateway need."""
    headers = {"Content-Type": "application/json; charset=utf-8", **outcome.headers}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    if extra_headers:
        headers.update(extra_headers)
    return {
        "statusCode": outcome.status,
        "headers": headers,
        "isBase64Encoded": False,
        "body": outcome.body_text(),  # a replay is the stored text, byte for byte
    }


def direct_body(outcome: Outcome) -> dict[str, Any]:
    """The answer to a direct invocation: the body itself (FC serialises it)."""
    return dict(outcome.body)


def report_entry(index: int, record_id: str | None, outcome: Outcome, request_id: str) -> dict:
    """One line of a batch report: identity, result, and the Dyplsapi-shaped body."""
    # The Id is the message's identity as the platform gave it, and any text can be in it: it is
    # shown scrubbed (the idempotency key is derived from the original, unchanged).
    shown = clean(scrub(record_id)) if record_id is not None else None
    entry: dict[str, Any] = {"Index": index, "Id": shown, "Result": outcome.result}
    if outcome.replayed:
        entry["Replayed"] = True
    entry.update(outcome.body)
    if entry.get("RequestId") == request_id:  # only Dyplsapi's own request ids are worth keeping
        del entry["RequestId"]
    return entry


def batch_report(source: str, entries: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    """The report of a whole batch (see :func:`redelivery` for what is raised with it)."""
    n = _counts(entries)
    return {
        "Code": "OK" if n[BOUND] == len(entries) else "PartialFailure",
        "Message": f"{len(entries)} record(s): {n[BOUND]} bound, {n[REJECTED]} rejected, "
        f"{n[FAILED]} failed",
        "RequestId": request_id,
        "Source": source,
        "Records": entries,
    }


def _counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    return {r: sum(1 for e in entries if e["Result"] == r) for r in (BOUND, REJECTED, FAILED)}


def redelivery(report: dict[str, Any]) -> TransientFailureError | None:
    """The exception that asks for the batch again, or None when no record needs it: a record
    that failed, or one whose outcome could not be announced (it is republished, not redone)."""
    entries = report["Records"]
    n = _counts(entries)
    unannounced = [e for e in entries if e.get("Announced") is False]
    if not n[FAILED] and not unannounced:
        return None
    parts = []
    if n[FAILED]:
        failed = ", ".join(f"{_name(e)} ({e['Code']})" for e in entries if e["Result"] == FAILED)
        parts.append(f"{n[FAILED]} of {len(entries)} record(s) need redelivery: {failed}.")
    if unannounced:
        names = ", ".join(f"{_name(e)} ({e['Result']})" for e in unannounced)
        parts.append(f"{len(unannounced)} outcome(s) not yet announced: {names}.")
    return TransientFailureError(
        " ".join(parts) + f" {n[BOUND]} bound, {n[REJECTED]} rejected for good."
    )


def _name(entry: dict[str, Any]) -> str:
    return entry["Id"] or "#" + str(entry["Index"])
