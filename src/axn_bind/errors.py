"""Every failure the function can report, as values: a code, a message, an HTTP status and a class.

Local failures are :class:`AxnError` subclasses. Upstream Dyplsapi codes are classified in
:mod:`axn_bind.dypls.codes`, one table for the whole project, so that the HTTP path, the batch
report and the idempotency record agree on what a code means.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from .log import clean, scrub


class Kind(str, Enum):
    """What a failure means for the caller and for redelivery."""

    REJECTED = (
        "rejected"  # permanent: the request itself is wrong or cannot be served; do not retry
    )
    CONFIG = "config"  # the deployment is misconfigured; retry after an operator fixes it
    THROTTLED = "throttled"  # still throttled after the retries allowed; retry later
    UNAVAILABLE = "unavailable"  # provably reached nobody (connection refused, store down); retry
    UNKNOWN = "unknown"  # the request may have created a binding; the outcome is unknown

    @property
    def transient(self) -> bool:
        """True when a redelivery of the same message could succeed."""
        return self is not Kind.REJECTED


class AxnError(Exception):
    """A failure with everything needed to answer the caller."""

    code: str = "InternalError"
    status: int = 500
    kind: Kind = Kind.CONFIG

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        kind: Kind | None = None,
        request_id: str | None = None,
        errors: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind
        self.request_id = request_id
        self.errors = errors
        self.retry_after = retry_after

    def body(self, request_id: str) -> dict[str, Any]:
        """The Dyplsapi-shaped error body."""
        out: dict[str, Any] = {
            "Code": self.code,
            "Message": self.message,
            "RequestId": self.request_id or request_id,
        }
        if self.errors:
            out["Errors"] = self.errors
        return out


class RequestValidationError(AxnError):
    """The bind request breaks a rule; ``errors`` lists each field and what is wrong with it."""

    code = "InvalidParameter"
    status = 400
    kind = Kind.REJECTED

    MAX_ERRORS = 20  # a request with thousands of unknown fields gets a short answer

    @classmethod
    def from_fields(cls, errors: list[dict[str, str]]) -> RequestValidationError:
        """The error for ``[{"Field", "Message"}, …]``, its message summing them all up (the
        first MAX_ERRORS of them, then how many more)."""
        if len(errors) > cls.MAX_ERRORS:
            more = len(errors) - cls.MAX_ERRORS
            errors = [
                *errors[: cls.MAX_ERRORS],
                {"Field": "(request)", "Message": f"and {more} more problem(s) not listed"},
            ]
        summary = ""
        for problem in (f"{e['Field']} {e['Message']}" for e in errors):
            # "…did you mean PhoneNoA? TtlSeconds …": no "?;" and no "?." in the sentence.
            summary += ("" if not summary else " " if summary.endswith("?") else "; ") + problem
        end = "" if summary.endswith(("?", ".")) else "."
        return cls(f"Invalid bind request: {summary}{end}", errors=errors)


class MalformedRequestError(AxnError):
    """The body could not be read as a bind request (bad JSON, bad Base64, too deep)."""

    code = "MalformedRequest"
    status = 400
    kind = Kind.REJECTED


class PayloadTooLargeError(AxnError):
    code = "PayloadTooLarge"
    status = 413
    kind = Kind.REJECTED


class MethodNotAllowedError(AxnError):
    code = "MethodNotAllowed"
    status = 405
    kind = Kind.REJECTED


class NotFoundError(AxnError):
    code = "NotFound"
    status = 404
    kind = Kind.REJECTED


class UnsupportedEventError(AxnError):
    """The event bytes match no trigger shape this function serves."""

    code = "UnsupportedEvent"
    status = 400
    kind = Kind.REJECTED


class ConfigurationError(AxnError):
    """A setting is missing or wrong. The message names the setting and never echoes a secret."""

    code = "InvalidConfiguration"
    status = 500
    kind = Kind.CONFIG


class UnexpectedError(AxnError):
    """A defect. Whether a call was made is not known, so its record is kept as unknown."""

    code = "InternalError"
    status = 500
    kind = Kind.UNKNOWN


class IdempotencyKeyReusedError(AxnError):
    """The key was used before for a request with other data."""

    code = "IdempotencyKeyReused"
    status = 409
    kind = Kind.REJECTED


class IdempotencyInProgressError(AxnError):
    """Another invocation holds the key and may be calling Dyplsapi right now."""

    code = "IdempotencyInProgress"
    status = 409
    kind = Kind.UNAVAILABLE


class OutcomeUnknownError(AxnError):
    """An earlier attempt with the key may have bound, and re-execution is not allowed."""

    code = "OutcomeUnknown"
    status = 409
    kind = Kind.UNKNOWN


class DeadlineExceededError(AxnError):
    """Not enough of the invocation's time was left to make (or repeat) the call safely."""

    code = "DeadlineExceeded"
    status = 504
    kind = Kind.UNAVAILABLE


class PublishError(AxnError):
    """An event was not delivered to a target. ``retryable``: trying again later may succeed
    (a timeout, 429, 5xx); otherwise the target refused it for good (410, 4xx, bad config)."""

    code = "PublishFailed"
    status = 502
    kind = Kind.UNAVAILABLE

    def __init__(self, message: str, *, target: str, retryable: bool) -> None:
        super().__init__(f"{target}: {message}")
        self.target = target
        self.retryable = retryable


class TransientFailureError(Exception):
    """Raised to Function Compute on purpose so that it (or EventBridge) redelivers the event.

    It is the only exception the handler lets reach the platform, and FC logs its message: the
    message lists the records that need another delivery and is scrubbed here, whatever it was
    made from (phone numbers masked, lone surrogates replaced, length capped).
    """

    MAX_MESSAGE = 2000

    def __init__(self, message: str) -> None:
        text = clean(scrub(str(message)))
        if len(text) > self.MAX_MESSAGE:
            text = text[: self.MAX_MESSAGE - 1] + "…"
        super().__init__(text)
