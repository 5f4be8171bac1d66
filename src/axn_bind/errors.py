"""Every failure the function can report, as values: a code, a message, an HTTP status and a class.

Local failures are raised as :class:`AxnError` subclasses. Upstream Dyplsapi codes are classified by
:func:`classify_upstream`, one table for the whole project, so that the HTTP path, the batch report and
the idempotency store agree on what a code means.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


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


class UpstreamError(AxnError):
    """Dyplsapi answered with something other than a binding; ``code`` is its code, passed through."""


class UpstreamTimeoutError(AxnError):
    code = "UpstreamTimeout"
    status = 504
    kind = Kind.UNKNOWN


class UpstreamUnavailableError(AxnError):
    """The request never reached Dyplsapi (connection refused, DNS, connect timeout)."""

    code = "UpstreamUnavailable"
    status = 503
    kind = Kind.UNAVAILABLE


class UpstreamConnectionLostError(AxnError):
    """The connection broke after the request was sent: a binding may exist."""

    code = "UpstreamConnectionLost"
    status = 502
    kind = Kind.UNKNOWN


class DeadlineExceededError(AxnError):
    """Not enough of the invocation's time was left to make (or repeat) the call safely."""

    code = "DeadlineExceeded"
    status = 504
    kind = Kind.UNAVAILABLE


class TransientFailureError(Exception):
    """Raised to Function Compute on purpose so that it (or EventBridge) redelivers the event.

    It is the only exception the handler lets reach the platform. Its message lists the records
    that need another delivery and never carries a phone number.
    """


# --------------------------------------------------------------------------------------------
# Upstream code table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamClass:
    """How an upstream code is handled."""

    status: int
    kind: Kind
    retry: bool = False  # retried inside the invocation (only where nothing can have been bound)
    hint: str = ""  # what to do, appended to the upstream message
    fresh_nonce_only: bool = False  # retry at once, no backoff


_CALLER = UpstreamClass(400, Kind.REJECTED)
_THROTTLED = UpstreamClass(429, Kind.THROTTLED, retry=True)
_UNKNOWN = UpstreamClass(
    502, Kind.UNKNOWN, hint="The binding may or may not exist; check before binding again."
)
_CREDENTIALS = UpstreamClass(
    500,
    Kind.CONFIG,
    hint="Check ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET / "
    "ALIBABA_CLOUD_SECURITY_TOKEN (or the function's role).",
)
_SIGNING = UpstreamClass(
    500,
    Kind.CONFIG,
    hint="The signature was rejected: check the access key secret and DYPLS_SIGNATURE_VERSION.",
)
_CLOCK = UpstreamClass(500, Kind.CONFIG, hint="The instance clock differs from the service's.")
_ACCOUNT = UpstreamClass(
    500,
    Kind.CONFIG,
    hint="The account cannot use Dyplsapi: activate the product and check the account.",
)
_RAM = UpstreamClass(
    500, Kind.CONFIG, hint="Grant the function's role dypls:BindAxnExtension (see ram-policy.json)."
)
_ENDPOINT = UpstreamClass(500, Kind.CONFIG, hint="Check DYPLS_ENDPOINT.")
_REQUEST_BUG = UpstreamClass(
    500, Kind.CONFIG, hint="The gateway refused the request's form; report it as a defect."
)

UPSTREAM_CODES: dict[str, UpstreamClass] = {
    "isv.BIND_CONFLICT": UpstreamClass(409, Kind.REJECTED),
    "isv.NO_AVAILABLE_NUMBER": UpstreamClass(503, Kind.REJECTED),
    "isv.FLOW_LIMIT": _THROTTLED,
    "Throttling": _THROTTLED,
    "Throttling.User": _THROTTLED,
    "Throttling.Api": _THROTTLED,
    "SignatureNonceUsed": UpstreamClass(
        500, Kind.CONFIG, retry=True, fresh_nonce_only=True, hint="Nonces kept colliding."
    ),
    **dict.fromkeys(
        (
            "isv.EXPIRE_DATE_ILLEGAL",
            "isv.MOBILE_NUMBER_ILLEGAL",
            "isv.INVALID_PARAMETERS",
            "isv.ILLEGAL_ARGUMENT",
            "isv.FORBIDDEN_ACTION",
            "isv.NO_NOT_EXIST",
            "isv.POOLKEY_NOT_EXISTS",
            "isv.SUBS_NOT_EXIST",
        ),
        _CALLER,
    ),
    **dict.fromkeys(
        (
            "isv.OUT_OF_SERVICE",
            "isv.PRODUCT_UN_SUBSCRIPT",
            "isv.PRODUCT_UNSUBSCRIBE",
            "isv.ACCOUNT_NOT_EXISTS",
            "isv.ACCOUNT_ABNORMAL",
        ),
        _ACCOUNT,
    ),
    "isp.RAM_PERMISSION_DENY": _RAM,
    "Forbidden.RAM": _RAM,
    "Forbidden": _RAM,
    "isv.PARTNER_NOT_EXIST": _UNKNOWN,
    "UnreadableResponse": _UNKNOWN,  # HTTP 2xx without a readable body: a binding may exist
    "InternalError": _UNKNOWN,
    "ServiceUnavailable": _UNKNOWN,
    "SignatureDoesNotMatch": _SIGNING,
    "IncompleteSignature": _SIGNING,
    "InvalidAccessKeyId.NotFound": _CREDENTIALS,
    "InvalidAccessKeyId.Inactive": _CREDENTIALS,
    "InvalidTimeStamp.Expired": _CLOCK,
    "InvalidTimeStamp.Format": _REQUEST_BUG,
    "IllegalTimestamp": _REQUEST_BUG,
    "MissingParameter": _REQUEST_BUG,
    "InvalidParameter": _REQUEST_BUG,
    "InvalidParameter.Format": _REQUEST_BUG,
    "UnsupportedHTTPMethod": _REQUEST_BUG,
    "InvalidVersion": _ENDPOINT,
    "InvalidApi.NotFound": _ENDPOINT,
    "InvalidProduct.NotFound": _ENDPOINT,
}

_PREFIXES: tuple[tuple[str, UpstreamClass], ...] = (
    ("Throttling", _THROTTLED),
    ("InvalidSecurityToken", _CREDENTIALS),
    ("InvalidAccessKeyId", _CREDENTIALS),
    ("InvalidTimeStamp", _CLOCK),
    ("isp.", _UNKNOWN),  # platform trouble: the binding may or may not exist
    ("isv.", _CALLER),  # other business codes are about the request
)


def classify_upstream(code: str, http_status: int) -> UpstreamClass:
    """The handling of an upstream ``code`` that arrived with ``http_status``."""
    found = UPSTREAM_CODES.get(code)
    if found is not None:
        return found
    for prefix, cls in _PREFIXES:
        if code.startswith(prefix):
            return cls
    if http_status >= 500:
        return _UNKNOWN
    if http_status == 429:
        return _THROTTLED
    if http_status in (401, 403):
        return _CREDENTIALS
    return _REQUEST_BUG
