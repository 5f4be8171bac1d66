"""The Dyplsapi client: signs, sends, classifies the answer and retries only where that is safe.

Retried (fresh nonce and timestamp each time, exponential backoff with full jitter, bounded by
attempts and by the invocation's remaining time): gateway throttling, ``isv.FLOW_LIMIT``,
``SignatureNonceUsed`` and connection failures that happened before the request was sent.
Never retried: anything after which a binding may exist (read timeout, HTTP 5xx, ``isp.*``,
a connection dropped after sending) — those raise with ``Kind.UNKNOWN``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
)

from .config import Credentials, Settings
from .errors import (
    AxnError,
    DeadlineExceededError,
    Kind,
    UpstreamConnectionLostError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    classify_upstream,
)
from .log import log
from .signing import canonical_query, new_nonce, sign_v1, sign_v3, utc_timestamp

MIN_ATTEMPT_SECONDS = 0.5  # never start a call with less time than this left
_STRING_TO_SIGN = re.compile(r"\s*server string to sign is:.*", re.DOTALL)


class Deadline:
    """The point, on the monotonic clock, by which the invocation must have answered."""

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + seconds

    @classmethod
    def from_context(cls, context: Any, margin: float) -> Deadline:
        """``context.function.timeout`` minus ``margin``; unlimited when the context has none."""
        timeout = getattr(getattr(context, "function", None), "timeout", None)
        try:
            return cls(float(timeout) - margin) if timeout else cls(None)
        except (TypeError, ValueError):
            return cls(None)

    def remaining(self) -> float:
        return float("inf") if self._end is None else self._end - time.monotonic()

    def require_call_time(self) -> float:
        """The time left; DeadlineExceededError when it is too little to start a call."""
        left = self.remaining()
        if left < MIN_ATTEMPT_SECONDS:
            raise DeadlineExceededError(
                "Too little of the function's time was left to call Dyplsapi; nothing was "
                "sent. Raise the function timeout or retry."
            )
        return left


def _before_send(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before any byte of the request left this process."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError))


def _retry_after_seconds(response: requests.Response) -> float | None:
    raw = response.headers.get("x-acs-retry-after")  # milliseconds
    if raw and raw.strip().isdigit():
        return int(raw) / 1000
    raw = response.headers.get("retry-after")  # seconds
    if raw and raw.strip().isdigit():
        return float(raw)
    return None


class DyplsClient:
    """One ``requests.Session`` per instance, reused across warm invocations."""

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or requests.Session()
        self.session.mount(settings.endpoint, HTTPAdapter(pool_maxsize=4, max_retries=0))
        self.session.trust_env = False  # no proxy or netrc surprises in the data path

    def _sign(self, action: str, params: dict[str, str], creds: Credentials) -> Any:
        if self.settings.signature_version == "v1":
            return sign_v1(
                method="POST",
                action=action,
                params=params,
                credentials=creds,
                timestamp=utc_timestamp(),
                nonce=new_nonce(),
            )
        return sign_v3(
            method="POST",
            host=self.settings.host,
            action=action,
            params=params,
            credentials=creds,
            date=utc_timestamp(),
            nonce=new_nonce(),
        )

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def call(
        self, action: str, params: dict[str, str], creds: Credentials, deadline: Deadline
    ) -> dict[str, Any]:
        """Send ``action`` and return the body of an ``OK`` answer, or raise an AxnError."""
        s = self.settings
        attempt = 0
        while True:
            attempt += 1
            budget = deadline.require_call_time()
            signed = self._sign(action, params, creds)
            url = f"{s.endpoint}/?{canonical_query(signed.params)}"
            started = time.monotonic()
            try:
                response = self.session.post(
                    url,
                    headers=signed.headers,
                    data=signed.body,
                    timeout=(min(s.connect_timeout, budget), min(s.read_timeout, budget)),
                    allow_redirects=False,
                )
            except requests.ConnectionError as exc:
                if _before_send(exc):
                    error: AxnError = UpstreamUnavailableError(
                        f"Could not connect to Dyplsapi at {s.host}; nothing was sent. "
                        "Check DYPLS_ENDPOINT and the function's network access."
                    )
                    if self._wait_to_retry(attempt, None, deadline, action, error.code):
                        continue
                    raise error from None
                raise UpstreamConnectionLostError(
                    "The connection to Dyplsapi broke after the request was sent; the binding "
                    "may or may not exist."
                ) from None
            except requests.Timeout:
                raise self._timeout() from None
            except requests.RequestException as exc:
                raise UpstreamConnectionLostError(
                    f"The call to Dyplsapi failed after sending ({type(exc).__name__}); the "
                    "binding may or may not exist."
                ) from None
            elapsed_ms = round((time.monotonic() - started) * 1000)
            body = self._parse(response)
            code = str(body.get("Code", ""))
            request_id = body.get("RequestId")
            log(
                "dypls_call",
                action=action,
                attempt=attempt,
                http_status=response.status_code,
                code=code,
                upstream_request_id=request_id,
                elapsed_ms=elapsed_ms,
            )
            if response.status_code == 200 and code == "OK":
                return body
            cls = classify_upstream(code, response.status_code)
            retry_after = _retry_after_seconds(response)
            message = _STRING_TO_SIGN.sub("", str(body.get("Message") or "")).strip()
            error = UpstreamError(
                " ".join(p for p in (f"Dyplsapi answered {code}: {message}", cls.hint) if p),
                code=code,
                status=cls.status,
                kind=cls.kind,
                request_id=request_id,
                retry_after=max(1, math.ceil(retry_after or 1))
                if cls.kind is Kind.THROTTLED
                else None,
            )
            if cls.retry and self._wait_to_retry(
                attempt, 0.0 if cls.fresh_nonce_only else retry_after, deadline, action, code
            ):
                continue
            raise error

    def _wait_to_retry(
        self, attempt: int, hint: float | None, deadline: Deadline, action: str, code: str
    ) -> bool:
        """Sleep before the next attempt; False when attempts or time are used up."""
        if attempt >= self.settings.max_attempts:
            return False
        delay = self._backoff(attempt) if hint is None else hint
        if deadline.remaining() - delay < MIN_ATTEMPT_SECONDS + self.settings.connect_timeout:
            return False
        delay_ms = round(delay * 1000)
        log(
            "dypls_retry",
            logging.WARNING,
            action=action,
            attempt=attempt,
            code=code,
            delay_ms=delay_ms,
        )
        time.sleep(delay)
        return True

    def _timeout(self) -> UpstreamTimeoutError:
        return UpstreamTimeoutError(
            "Dyplsapi did not answer in time; the binding may or may not exist. "
            "DYPLS_READ_TIMEOUT sets the wait."
        )

    @staticmethod
    def _parse(response: requests.Response) -> dict[str, Any]:
        try:
            body = json.loads(response.content or b"{}")
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
        # Not JSON: after a 200 a binding may exist; otherwise it is a gateway failure.
        status = response.status_code
        return {
            "Code": "UnreadableResponse"
            if status < 300
            else ("InternalError" if status >= 500 else "UnexpectedResponse"),
            "Message": f"HTTP {response.status_code} with a body that is not a JSON object",
        }
