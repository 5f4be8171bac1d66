"""An HTTP webhook, signed per Standard Webhooks.

The body is the event's JSON text; ``webhook-id`` is the event id, so a receiver de-duplicates a
republished event; ``webhook-timestamp`` is the sending time (Unix seconds) and
``webhook-signature`` is ``v1,`` + Base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), where the
key is the Base64-decoded part of the ``whsec_…`` secret (``AXN_WEBHOOK_SECRET``).

A 2xx answer is delivered; 410 means the receiver wants no more events (not retried); 429 and 5xx
are retried after a backoff that honours ``Retry-After``, within the attempts and the time given;
other answers are refused for good. The URL is ``https://…``, or ``http://`` to a loopback host
for local use; it is read once (:func:`axn_bind.urls.split`) and requests are sent to the URL
rebuilt from that reading, so the host checked is the host connected to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any
from urllib.parse import unquote

from ..backoff import retry_after
from ..errors import ConfigurationError, PublishError
from ..urls import is_loopback, split
from .event import Event
from .http import RETRIED, HttpTarget, Retry

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
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


def basic_authorization(userinfo: str) -> str | None:
    """The ``Authorization`` header of a URL's percent-encoded ``user:password``, or None."""
    if not userinfo:
        return None
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode("latin-1", "replace")
    return "Basic " + base64.b64encode(pair).decode()


class WebhookTarget(HttpTarget):
    def __init__(self, url: str, secret: str | None, **options: Any) -> None:
        parts = split(url.strip(), "AXN_PUBLISH_TO: a webhook target")
        if parts.scheme not in ("https", "http") or not parts.host:
            raise ConfigurationError("AXN_PUBLISH_TO: a webhook target must be an https:// URL.")
        if parts.scheme == "http" and not is_loopback(parts.host):
            raise ConfigurationError(
                f"AXN_PUBLISH_TO: a webhook may use plain http:// only for a loopback host; use "
                f"https:// for {parts.host}."
            )
        # What was checked, rebuilt: the place connected to. user:password@ is sent as HTTP
        # Basic authorization (as requests sent it), made once here, not on every attempt.
        self.url = parts._replace(userinfo="").text()
        self.authorization = basic_authorization(parts.userinfo)
        # Shown in logs and answers: no user:password, no query (it may carry a token).
        self.name = parts.origin + parts.path
        self.key = webhook_key(secret)
        super().__init__(**options)

    def send(self, event: Event, *, timeout: float) -> None:
        def attempt(_number: int, left: float) -> None:
            now = int(self.clock())
            headers = {
                "content-type": CONTENT_TYPE,
                "webhook-id": event.id,
                "webhook-timestamp": str(now),
                "webhook-signature": sign(self.key, event.id, now, event.text),
            }
            if self.authorization:
                headers["authorization"] = self.authorization
            response = self.post(event.text.encode(), headers, left)
            status = response.status
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
            hint = retry_after(response.headers.get("retry-after"), self.clock())
            raise Retry(f"HTTP {status}", hint)

        self.deliver(timeout, attempt)
