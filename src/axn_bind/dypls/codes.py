"""The one table of Dyplsapi's codes: what each means for the caller, for retries and for the
idempotency record. Business codes arrive on HTTP 200; gateway codes on 4xx/5xx.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import Kind


class CodeClass(NamedTuple):
    """How an upstream code is handled."""

    status: int  # the HTTP status this function answers with
    kind: Kind
    retry: bool = False  # retried inside the invocation: only where nothing can have been bound
    hint: str = ""  # what to do, appended to the upstream message
    # The upstream message is passed on (scrubbed and capped) only where it helps the caller. A
    # signing, credential or request-format failure gets this project's own words alone: such
    # gateway messages may echo the request, its phone numbers and, under V1 with STS, the token.
    pass_message: bool = True


CALLER = CodeClass(400, Kind.REJECTED)
THROTTLED = CodeClass(429, Kind.THROTTLED, retry=True)
UNKNOWN = CodeClass(
    502, Kind.UNKNOWN, hint="The binding may or may not exist; check before binding again."
)
CREDENTIALS = CodeClass(
    500,
    Kind.CONFIG,
    hint="The credentials were refused: check ALIBABA_CLOUD_ACCESS_KEY_ID, "
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET and ALIBABA_CLOUD_SECURITY_TOKEN (or the function's role).",
    pass_message=False,
)
SIGNING = CodeClass(
    500,
    Kind.CONFIG,
    hint="The signature was rejected: check ALIBABA_CLOUD_ACCESS_KEY_SECRET (it must belong to "
    "ALIBABA_CLOUD_ACCESS_KEY_ID; or the function's role) and DYPLS_SIGNATURE_VERSION (v3 or "
    "v1). With AXN_LOG_LEVEL=DEBUG the string that was signed is logged, masked.",
    pass_message=False,
)
CLOCK = CodeClass(
    500,
    Kind.CONFIG,
    hint="The instance clock differs from the service's by more than it allows.",
    pass_message=False,
)
ACCOUNT = CodeClass(
    500,
    Kind.CONFIG,
    hint="The account cannot use Dyplsapi: activate the product and check the account.",
)
RAM = CodeClass(
    500, Kind.CONFIG, hint="Grant the function's role dypls:BindAxnExtension (see ram-policy.json)."
)
ENDPOINT = CodeClass(500, Kind.CONFIG, hint="Check DYPLS_ENDPOINT.", pass_message=False)
REQUEST_BUG = CodeClass(
    500,
    Kind.CONFIG,
    hint="The gateway refused the request's form; report it as a defect.",
    pass_message=False,
)
# The same request reached the gateway twice (each attempt has a fresh nonce and nothing below
# retries): the other copy may have bound.
NONCE_REUSED = CodeClass(
    502,
    Kind.UNKNOWN,
    hint="The gateway saw this request twice (a network or proxy retransmission); the other copy "
    "may have bound. Check before binding again.",
)

CODES: dict[str, CodeClass] = {
    "isv.BIND_CONFLICT": CodeClass(409, Kind.REJECTED),
    # Nothing was bound and the same request can succeed once the pool has a free number: the
    # key is released (never replayed) and a batch record is redelivered.
    "isv.NO_AVAILABLE_NUMBER": CodeClass(
        503,
        Kind.UNAVAILABLE,
        hint="Nothing was bound; retry later with the same key, or add numbers to the pool.",
    ),
    "isv.FLOW_LIMIT": THROTTLED,
    "Throttling": THROTTLED,
    "Throttling.User": THROTTLED,
    "Throttling.Api": THROTTLED,
    "SignatureNonceUsed": NONCE_REUSED,
    # Expiration passed this function's own check (more than 60 s ahead by its clock), so the
    # refusal means Dyplsapi's clock and the function's disagree, or the lead was used up on the
    # way. Nothing was bound: the key is released, never replayed, so a retry after the clock is
    # fixed (or a TtlSeconds request, judged afresh) binds; a fixed Expiration that has come too
    # near is refused by the function's own check from then on, which ends the redeliveries.
    "isv.EXPIRE_DATE_ILLEGAL": CodeClass(
        503,
        Kind.UNAVAILABLE,
        hint="Nothing was bound. Expiration was more than 60 s ahead by this function's clock: "
        "check the clock (NTP) or allow more lead time, then retry with the same key.",
    ),
    **dict.fromkeys(
        (
            "isv.MOBILE_NUMBER_ILLEGAL",
            "isv.INVALID_PARAMETERS",
            "isv.ILLEGAL_ARGUMENT",
            "isv.FORBIDDEN_ACTION",
            "isv.NO_NOT_EXIST",
            "isv.POOLKEY_NOT_EXISTS",
            "isv.SUBS_NOT_EXIST",
        ),
        CALLER,
    ),
    **dict.fromkeys(
        (
            "isv.OUT_OF_SERVICE",
            "isv.PRODUCT_UN_SUBSCRIPT",
            "isv.PRODUCT_UNSUBSCRIBE",
            "isv.ACCOUNT_NOT_EXISTS",
            "isv.ACCOUNT_ABNORMAL",
        ),
        ACCOUNT,
    ),
    "isp.RAM_PERMISSION_DENY": RAM,
    "Forbidden.RAM": RAM,
    "Forbidden": RAM,
    "isv.PARTNER_NOT_EXIST": UNKNOWN,
    "InternalError": UNKNOWN,
    "ServiceUnavailable": UNKNOWN,
    "SignatureDoesNotMatch": SIGNING,
    "IncompleteSignature": SIGNING,
    "InvalidAccessKeyId.NotFound": CREDENTIALS,
    "InvalidAccessKeyId.Inactive": CREDENTIALS,
    "InvalidTimeStamp.Expired": CLOCK,
    "InvalidTimeStamp.Format": REQUEST_BUG,
    "IllegalTimestamp": REQUEST_BUG,
    "MissingParameter": REQUEST_BUG,
    "InvalidParameter": REQUEST_BUG,
    "InvalidParameter.Format": REQUEST_BUG,
    "UnsupportedHTTPMethod": REQUEST_BUG,
    "InvalidVersion": ENDPOINT,
    "InvalidApi.NotFound": ENDPOINT,
    "InvalidProduct.NotFound": ENDPOINT,
}

PREFIXES: tuple[tuple[str, CodeClass], ...] = (
    ("Throttling", THROTTLED),
    ("InvalidSecurityToken", CREDENTIALS),
    ("InvalidAccessKeyId", CREDENTIALS),
    ("InvalidTimeStamp", CLOCK),
    ("isp.", UNKNOWN),  # platform trouble: the binding may or may not exist
    ("isv.", CALLER),  # other business codes: the service refused the request
)


def lookup(code: str) -> CodeClass | None:
    """The class of a code this project knows (by name or by prefix); None for any other."""
    found = CODES.get(code)
    if found is not None:
        return found
    for prefix, cls in PREFIXES:
        if code.startswith(prefix):
            return cls
    return None
