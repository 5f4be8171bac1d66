"""What an exchange with Dyplsapi means: a pure function from what happened on the wire to a
:class:`Verdict`, tested row by row (``tests/unit/test_classify.py``).

The rule that keeps one binding per order: **anything that may have bound is unknown**. A 2xx
answer is a binding only when it is HTTP 200, ``Code: OK`` and a complete ``SecretBindDTO``; it
is a refusal only when its code is one this project knows to bind nothing. Every other 2xx (an
empty body, JSON without ``Code``, ``202 OK``, an unheard-of code) may have bound: unknown.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

from ..backoff import hint_seconds
from ..errors import Kind
from ..log import scrub
from . import codes
from .transport import Answered, Exchange, NoAnswer, NotSent

MAX_MESSAGE = 300
# A gateway message that echoes the request (V1's "server string to sign is:…", a canonical
# request) carries every parameter, phone numbers included: it is cut, in any letter case.
_ECHO = re.compile(
    r"[\s.;,]*(?:server\s+)?(?:string[\s_-]*to[\s_-]*sign|canonical[\s_-]*request)\b.*",
    re.IGNORECASE | re.DOTALL,
)


class Verdict(NamedTuple):
    """The meaning of one exchange. ``kind`` is None for a binding."""

    kind: Kind | None
    code: str
    status: int  # the HTTP status this function answers with
    message: str  # safe to answer and to log: no request echo, phone numbers masked
    request_id: str | None = None  # Dyplsapi's
    retry: bool = False  # safe to send again within the invocation
    retry_after: float | None = None  # the gateway's hint, in seconds
    binding: dict[str, str] | None = None  # SecretBindDTO of a binding
    attempt: str | None = None  # the attempt's own name: signature nonce @ signing time
    attempts: int = 1  # how many were sent in all (retries included)
    upstream_ms: int | None = None  # how long the last one took on the wire

    @property
    def bound(self) -> bool:
        return self.kind is None


def safe_message(text: Any) -> str:
    """An upstream message as it may be passed on: echo cut, numbers masked, length capped."""
    cleaned = scrub(_ECHO.sub("", str(text or "")).strip())
    return cleaned if len(cleaned) <= MAX_MESSAGE else cleaned[: MAX_MESSAGE - 1] + "…"


def retry_after_seconds(headers: Any) -> float | None:
    """The gateway's wait hint: ``x-acs-retry-after`` in ms, else ``Retry-After`` in seconds."""
    hint = hint_seconds(headers.get("x-acs-retry-after"), per_second=1000)
    if hint is not None:
        return hint
    return hint_seconds(headers.get("retry-after"))


def _binding(body: dict[str, Any]) -> dict[str, str] | None:
    dto = body.get("SecretBindDTO")
    if not isinstance(dto, dict) or not dto.get("SecretNo") or not dto.get("SubsId"):
        return None
    return {
        "Extension": str(dto.get("Extension") or ""),
        "SecretNo": str(dto["SecretNo"]),
        "SubsId": str(dto["SubsId"]),
    }


def _body(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def classify(exchange: Exchange) -> Verdict:
    """The verdict on ``exchange``; never raises."""
    if isinstance(exchange, NotSent):
        return Verdict(
            Kind.UNAVAILABLE,
            "UpstreamUnavailable",
            503,
            f"Could not reach Dyplsapi ({exchange.reason}); nothing was sent. Check "
            "DYPLS_ENDPOINT and the function's network access.",
            retry=True,
        )
    if isinstance(exchange, NoAnswer):
        if exchange.timed_out:
            return Verdict(
                Kind.UNKNOWN,
                "UpstreamTimeout",
                504,
                "Dyplsapi did not answer in time; the binding may or may not exist. "
                "DYPLS_READ_TIMEOUT sets the wait.",
            )
        return Verdict(
            Kind.UNKNOWN,
            "UpstreamConnectionLost",
            502,
            f"The connection to Dyplsapi broke after the request was sent ({exchange.reason}); "
            "the binding may or may not exist.",
        )
    return _answered(exchange)


def _answered(answer: Answered) -> Verdict:
    status = answer.status
    body = _body(answer.body)
    code = str(body.get("Code") or "") if body is not None else ""
    request_id = (str(body.get("RequestId") or "") or None) if body is not None else None
    message = safe_message(body.get("Message")) if body is not None else ""
    success = 200 <= status < 300
    if body is not None and status == 200 and code == "OK":
        binding = _binding(body)
        if binding is not None:
            return Verdict(None, "OK", 200, message or "OK", request_id, binding=binding)
    known = codes.lookup(code) if code and code != "OK" else None
    if success and known is None:
        if code == "OK" and status != 200:
            what = f"HTTP {status} (not 200) with Code OK"
        elif code == "OK":
            what = f"HTTP {status} OK without a complete SecretBindDTO"
        elif code:
            what = f"HTTP {status} with the unknown code {code}"
        elif body is not None:
            what = f"HTTP {status} without a Code"
        else:
            what = f"HTTP {status} with a body that is not a JSON object"
        return Verdict(
            Kind.UNKNOWN,
            "UnreadableResponse",
            502,
            f"Dyplsapi answered {what}; the binding may exist. Check before binding again.",
            request_id,
        )
    if known is None:
        if status >= 500:
            known = codes.UNKNOWN
        elif status == 429:
            known = codes.THROTTLED
        elif status in (401, 403):
            known = codes.CREDENTIALS
        elif 300 <= status < 400:
            known = codes.ENDPOINT
        else:
            known = codes.REQUEST_BUG
    if code == "OK":  # "OK" on a failure status is no success: never passed on as the Code
        code = ""
    shown = code or f"HTTP {status}"
    said = f": {message.rstrip('.。')}." if message and known.pass_message else "."
    text = " ".join(p for p in (f"Dyplsapi answered {shown}{said}", known.hint) if p)
    return Verdict(
        known.kind,
        code or ("InternalError" if status >= 500 else "UnexpectedResponse"),
        known.status,
        text,
        request_id,
        retry=known.retry,
        retry_after=retry_after_seconds(answer.headers) if known.kind is Kind.THROTTLED else None,
    )
