"""An HTTP webhook, signed per Standard Webhooks.

The body is the event's JSON text; ``webhook-id`` is the event id, so a receiver de-duplicates a
republished event; ``webhook-timestamp`` is the sending time (Unix seconds) and
``webhook-signature`` is ``v1,`` + Base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where the
key is the Base64-decoded part of the ``whsec_…`` secret (``AXN_WEBHOOK_SECRET``).

A 2xx answer is delivered; 410 means the receiver wants no more events (not retried); 429 and 5xx
are retried after a backoff that honours ``Retry-After``, within the attempts and the time given;
other answers are refused for good. The URL is taken exactly as given: ``https://…``, or
``http://`` to a loopback host for local use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests

from ..config import _is_loopback
from ..errors import ConfigurationError, PublishError
from .event import Event

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
RETRIED = frozenset({429, 500, 502, 503, 504})
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


def webhook_key(secret: str | None) -> bytes:
    """The HMAC key from a ``whsec_<base64>`` secret; ConfigurationError names the setting."""
    if not secret:
        raise ConfigurationError(
            "AXN_WEBHOOK_SECRET is empty: a webhook target needs the whsec_… secret its "
            "receiver verifies signatures with."
        )
    text = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ConfigurationError(
            "AXN_WEBHOOK_SECRET must be whsec_ followed by Base64 of at least 16 random bytes "
            "(e.g. whsec_ + `openssl rand -base64 32`); the value set is not (it is not shown)."
        )
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds, from a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError, OverflowError):
        return None


class WebhookTarget:
    def __init__(
        self,
        url: str,
        secret: str | None,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        max_wait: float = 10.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("https", "http") or not host:
            raise ConfigurationError("AXN_PUBLISH_TO: a webhook target must be an https:// URL.")
        if parts.scheme == "http" and not _is_loopback(host):
            raise ConfigurationError(
                f"AXN_PUBLISH_TO: a webhook may use plain http:// only for a loopback host; use "
                f"https:// for {host}."
            )
        self.url = url
        # Shown in logs and answers: no user:password, no query (it may carry a token).
        self.name = urlunsplit(
            (parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", "")
        )
        self.key = webhook_key(secret)
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.session = session or requests.Session()
        self.session.trust_env = False
        self.clock = clock
        self.sleep = sleep

    def send(self, event: Event, *, timeout: float) -> None:
        end = self.clock() + timeout
        for attempt in range(1, self.attempts + 1):
            left = end - self.clock()
            if left <= 0:
                raise PublishError(
                    "no time was left to deliver the event", target=self.name, retryable=True
                )
            now = int(self.clock())
            headers = {
                "content-type": CONTENT_TYPE,
                "webhook-id": event.id,
                "webhook-timestamp": str(now),
                "webhook-signature": sign(self.key, event.id, now, event.text),
            }
            try:
                response = self.session.post(
                    self.url,
                    data=event.text.encode(),
                    headers=headers,
                    timeout=(min(5.0, left), left),
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                problem, hint = f"no answer ({type(exc).__name__})", None
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return
                if status == 410:
                    raise PublishError(
                        "the receiver answered 410 Gone: it wants no more events",
                        target=self.name,
                        retryable=False,
                    )
                if status not in RETRIED:
                    raise PublishError(
                        f"the receiver refused the event with HTTP {status}",
                        target=self.name,
                        retryable=False,
                    )
                problem = f"HTTP {status}"
                hint = retry_after(response.headers.get("retry-after"), self.clock())
            if attempt == self.attempts:
                break
            jitter = random.uniform(0.5, 1.0)  # noqa: S311 - spreads retries, not a secret
            wait = hint if hint is not None else jitter * self.backoff * 2 ** (attempt - 1)
            wait = min(wait, self.max_wait)
            if self.clock() + wait >= end:
                break
            self.sleep(math.ceil(wait * 1000) / 1000)
        raise PublishError(
            f"not delivered after {attempt} attempt(s): {problem}", target=self.name, retryable=True
        )
