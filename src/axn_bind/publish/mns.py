"""An MNS (Simple Message Queue) queue or topic, over the MNS API 2015-06-06, signed by hand.

``mns://queue/<name>`` sends each event with SendMessage, ``mns://topic/<name>`` publishes it
with PublishMessage, to ``https://{FC_ACCOUNT_ID}.mns.{FC_REGION}.aliyuncs.com``. Options:

- ``base64=true|false``: whether the message body is the Base64 of the event's UTF-8 JSON text.
  Queue bodies are Base64 by default (as both official SDKs send them and FC's MNS queue trigger
  decodes them by default); topic bodies are the JSON text itself by default.
- ``endpoint=https://…`` (or ``http://`` to a loopback host, for tests): the MNS endpoint to use
  instead of the one FC_REGION and FC_ACCOUNT_ID give.

The request is ``POST /queues/{Q}/messages`` (or ``/topics/{T}/messages``) with the body
``<?xml version="1.0" encoding="utf-8"?><Message xmlns="http://mns.aliyuncs.com/doc/v1/">
<MessageBody>…</MessageBody></Message>`` (the message body XML-escaped, at most 64 KB) and the
headers ``content-type``, ``date`` (RFC 1123, GMT), ``x-mns-version: 2015-06-06`` and
``authorization: MNS <AccessKeyId>:<Base64(HMAC-SHA1(secret, StringToSign))>``, where::

    StringToSign = METHOD "\\n" Content-MD5 "\\n" Content-Type "\\n" Date "\\n"
                   + each x-mns-* header, lower-cased and sorted, as "name:value\\n"
                   + the resource path

(no Content-MD5 is sent, so its line is empty). With STS credentials the token goes in the
``security-token`` header, added after signing and not signed. MNS answers 201 with
``<Message><MessageId>…</MessageId>…</Message>``.

Failures: TimeExpired is signed again at once with a fresh date (by the server's clock, read
from its ``Date`` header); QpsLimitExceeded, 429, 408, 5xx and network errors are retried after a
backoff (honouring ``Retry-After``) within the attempts and the time given; every other answer (a
missing queue or topic, a refused signature or permission, a malformed message) is refused for
good. MNS does not de-duplicate: a retry after a lost answer may deliver the event twice, under
one id, and consumers de-duplicate on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from ..backoff import retry_after
from ..errors import ConfigurationError, PublishError
from . import query_options
from .event import Event
from .http import MNS_RETRIED, HttpTarget, Retry, endpoint

API_VERSION = "2015-06-06"
CONTENT_TYPE = "text/xml;charset=utf-8"
XMLNS = "http://mns.aliyuncs.com/doc/v1/"
MAX_BODY = 64 * 1024  # bytes of MessageBody, as MNS stores it (after Base64 when applied)

# kind in the URL -> (path segment of the API, what the API calls the resource)
KINDS = {"queue": ("queues", "queue"), "topic": ("topics", "topic")}
# MNS queue and topic names: a letter, then letters, digits and hyphens; 256 characters at most.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,255}")
# Characters XML 1.0 cannot carry, even escaped (a raw body holding one is refused by MNS).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
THROTTLED = frozenset({"QpsLimitExceeded", "TooManyRequests"})
TIME_EXPIRED = "TimeExpired"
# What to fix, for the refusals an operator can act on.
HINTS = {
    "QueueNotExist": "create the queue, or correct its name or region",
    "TopicNotExist": "create the topic, or correct its name or region",
    "AccessDenied": "grant the function's role the MNS action on this resource",
    "InvalidAccessKeyId": "the function's credentials are not valid here",
    "SignatureDoesNotMatch": "the request signature was not accepted",
}
_CODE = re.compile(r"<Code>\s*([A-Za-z0-9.]{1,64})\s*</Code>")
_REQUEST_ID = re.compile(r"<RequestId>\s*([A-Za-z0-9-]{1,64})\s*</RequestId>")
_MESSAGE_ID = re.compile(r"<MessageId>\s*([^<\s]{1,128})\s*</MessageId>")


def string_to_sign(
    method: str, resource: str, headers: Mapping[str, str], content_md5: str = ""
) -> str:
    """The text MNS signs: method, Content-MD5, Content-Type, Date, x-mns-* headers, resource."""
    lower = {k.lower(): v for k, v in headers.items()}
    mns = "".join(f"{k}:{lower[k]}\n" for k in sorted(lower) if k.startswith("x-mns-"))
    return (
        f"{method}\n{content_md5}\n{lower.get('content-type', '')}\n{lower.get('date', '')}\n"
        f"{mns}{resource}"
    )


def authorization(
    access_key_id: str,
    secret: str,
    method: str,
    resource: str,
    headers: Mapping[str, str],
    content_md5: str = "",
) -> str:
    """The ``authorization`` header value: ``MNS <AccessKeyId>:<signature>``."""
    text = string_to_sign(method, resource, headers, content_md5)
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return f"MNS {access_key_id}:{base64.b64encode(mac).decode()}"


def message_xml(body: str) -> bytes:
    """The request body carrying ``body`` (already Base64-encoded when that applies)."""
    text = escape(body, {"\r": "&#13;"})  # a raw CR would be read back as LF
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Message xmlns="{XMLNS}">'
        f"<MessageBody>{text}</MessageBody></Message>"
    ).encode()


def _server_time(value: str | None) -> float | None:
    """The time in an HTTP ``Date`` header, or None."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError):
        return None


def _flag(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigurationError(f"AXN_PUBLISH_TO: {name}'s ?base64= must be true or false.")


class MnsTarget(HttpTarget):
    def __init__(
        self, url: str, *, env: Mapping[str, str] | None = None, **http_options: Any
    ) -> None:
        usage = (
            "AXN_PUBLISH_TO: an MNS target is mns://queue/<name> or mns://topic/<name> "
            "(options: ?base64=true|false, ?endpoint=)"
        )
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise ConfigurationError(f"{usage}.") from None
        if parts.username is not None or parts.password is not None:
            raise ConfigurationError(
                f"{usage}; it carries no credentials (the function signs with its role's "
                "STS credentials): remove the user:password part."
            )
        kind = (parts.hostname or "").lower()
        segments = parts.path.split("/")
        if (
            parts.scheme.lower() != "mns"
            or kind not in KINDS
            or port is not None
            or parts.fragment
            or len(segments) != 2
            or segments[0]
        ):
            raise ConfigurationError(f"{usage}.")
        queue_name = segments[1]
        if not NAME.fullmatch(queue_name):
            raise ConfigurationError(
                f"{usage}; the {kind} name must start with a letter and hold only letters, "
                "digits and hyphens (256 characters at most)."
            )
        self.kind = kind
        self.queue_name = queue_name
        # Shown in logs and answers, and the key under which deliveries are recorded: stable.
        self.name = f"mns://{kind}/{queue_name}"
        options = query_options(parts.query, self.name, ("base64", "endpoint"))
        self.base64 = (
            _flag(options["base64"], self.name) if "base64" in options else kind == "queue"
        )
        env = os.environ if env is None else env
        self.endpoint = endpoint(
            self.name, options.get("endpoint"), env, "https://{account}.mns.{region}.aliyuncs.com"
        )
        self.resource = f"/{KINDS[kind][0]}/{queue_name}/messages"
        self.url = self.endpoint + self.resource
        self.env = env
        super().__init__(**http_options)
        self.skew = 0.0  # MNS's clock minus ours, learnt from a TimeExpired answer

    def _body(self, event: Event) -> bytes:
        """The request body for ``event``; PublishError (not retryable) when MNS cannot take it."""
        raw = self.utf8(event)
        if self.base64:
            body = base64.b64encode(raw).decode("ascii")
            size = len(body)
        else:
            if NOT_XML.search(event.text):
                raise PublishError(
                    "the event holds characters an XML message cannot carry; "
                    "send it Base64 (?base64=true)",
                    target=self.name,
                    retryable=False,
                )
            body, size = event.text, len(raw)
        if size > MAX_BODY:
            raise PublishError(
                f"the message body is {size} bytes{' in Base64' if self.base64 else ''}; "
                f"MNS takes at most {MAX_BODY} (64 KB)",
                target=self.name,
                retryable=False,
            )
        return message_xml(body)

    def _refused(self, status: int, code: str | None, request_id: str | None) -> PublishError:
        what = f"HTTP {status}" + (f" {code}" if code else "")
        hint = HINTS.get(code or "")
        tail = (f"; {hint}" if hint else "") + (f" (RequestId {request_id})" if request_id else "")
        return PublishError(
            f"MNS refused the message with {what}{tail}", target=self.name, retryable=False
        )

    def send(self, event: Event, *, timeout: float) -> None:
        data = self._body(event)
        creds = self.credentials(self.env)

        def attempt(_number: int, left: float) -> None:
            headers = {
                "content-type": CONTENT_TYPE,
                "date": formatdate(self.clock() + self.skew, usegmt=True),
                "x-mns-version": API_VERSION,
            }
            headers["authorization"] = authorization(
                creds.access_key_id, creds.access_key_secret, "POST", self.resource, headers
            )
            if creds.security_token:  # added after signing: MNS does not sign it
                headers["security-token"] = creds.security_token
            response = self.post(data, headers, left)
            text = response.body[:4096].decode("utf-8", "replace")
            status = response.status
            if status == 201 and _MESSAGE_ID.search(text):
                return
            found = _CODE.search(text)
            code = found.group(1) if found else None
            problem = f"HTTP {status}" + (f" {code}" if code else "")
            if code == TIME_EXPIRED:
                server = _server_time(response.headers.get("date"))
                if server is not None:  # sign by MNS's clock from now on
                    self.skew = server - self.clock()
                raise Retry(problem, 0.0)  # sign again at once, with a fresh date
            if status in MNS_RETRIED or code in THROTTLED:
                raise Retry(problem, retry_after(response.headers.get("retry-after"), self.clock()))
            if 200 <= status < 300:
                raise PublishError(
                    f"an answer MNS does not give (HTTP {status} without a MessageId); the "
                    "message may or may not have arrived",
                    target=self.name,
                    retryable=True,
                )
            rid = _REQUEST_ID.search(text)
            raise self._refused(status, code, rid.group(1) if rid else None)

        self.deliver(timeout, attempt)
