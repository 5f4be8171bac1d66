"""An EventBridge custom event bus (``eventbridge://<bus-name>``), through its PutEvents API,
signed here without the SDK.

``POST https://{AccountId}.eventbridge.{region}.aliyuncs.com/openapi/putEvents`` with
``content-type: application/cloudevents-batch+json; charset=utf-8`` and a JSON array holding the
one event: the event's own fields (``data`` inline, ``datacontenttype: application/json``) plus
the extension ``aliyuneventbusname`` that names the bus. Region and account are FC_REGION and
FC_ACCOUNT_ID, which Function Compute sets; ``?endpoint=https://host[:port]`` replaces the
endpoint (a VPC endpoint, or ``http://`` to a loopback receiver in tests).

Signature (the SDK's "acs" scheme)::

    StringToSign = METHOD \\n content-md5 \\n content-type \\n date \\n
                   + every header starting with x-acs, sorted, as "key:value\\n"
                   + path [? sorted query]
    authorization: acs:<AccessKeyId>:<Base64(HMAC-SHA1(secret, StringToSign))>

With role (STS) credentials, ``x-acs-accesskey-id`` and ``x-acs-security-token`` are added before
signing, so both are signed. ``x-eventbridge-version`` and ``host`` are sent but not signed.

Outcomes: HTTP 200 carries ``FailedEntryCount`` and ``EntryList``, and a refused event arrives as
200 too, so every answer is read entry by entry: the event is delivered only when its entry has no
``ErrorCode``. HTTP 403 (AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId,
SecurityTokenInvalid, ...) and other 4xx are refused for good; 429 and 5xx are retried (honouring
``Retry-After`` when given), as are network errors, within the attempts and the time given.
Consumers de-duplicate on (source, id), so sending an event again is safe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from ..backoff import retry_after
from ..config import Credentials
from ..errors import ConfigurationError, PublishError
from ..log import scrub
from . import query_options
from .event import Event
from .http import RETRIED, HttpTarget, Retry, endpoint

PATH = "/openapi/putEvents"
CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8"
API_VERSION = "2015-06-06"  # x-eventbridge-version, as the official SDK sends it
BUS_EXTENSION = "aliyuneventbusname"
MAX_EVENT_BYTES = 64 * 1024
MAX_SOURCE = 128
MAX_TYPE = 64
# Error codes of a failed entry inside a 200 answer that may succeed when the same event is sent
# again: the service was busy or failed on its side. Any other entry code describes the event or
# the bus (a field it refuses, a size, a bus that does not exist, a permission on the bus): the
# same bytes would be refused again, so retrying would only spend the publish time. An unknown
# code is taken as such a refusal for the same reason. Either way the outcome stays owed in the
# outbox, so the sweep sends it again later (after an operator's fix, for a refusal).
RETRYABLE_ENTRY_CODES = frozenset(
    {
        "TooManyRequests",
        "Throttling",
        "ThrottlingException",
        "Throttling.User",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceBusy",
        "Timeout",
    }
)
_BUS = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,126}")
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_USAGE = "eventbridge://<bus-name>[?endpoint=https://host]"


def canonical_resource(path: str, query: Mapping[str, str] | None = None) -> str:
    """The path, then ``?k=v&…`` sorted by key when there is a query (values as sent)."""
    if not query:
        return path
    return path + "?" + "&".join(f"{k}={query[k]}" for k in sorted(query))


def string_to_sign(
    method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str] | None = None
) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    signed = "".join(f"{k}:{lower[k]}\n" for k in sorted(k for k in lower if k.startswith("x-acs")))
    return (
        f"{method.upper()}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n"
        f"{lower.get('date', '')}\n{signed}{canonical_resource(path, query)}"
    )


def signature(secret: str, text: str) -> str:
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def signed_headers(
    *, host: str, credentials: Credentials, date: str, nonce: str, method: str = "POST"
) -> dict[str, str]:
    """Every header of a PutEvents request, ``authorization`` included."""
    headers = {
        "date": date,
        "host": host,
        "accept": "application/json",
        "content-type": CONTENT_TYPE,
        "x-acs-signature-nonce": nonce,
        "x-acs-signature-method": "HMAC-SHA1",
        "x-acs-signature-version": "1.0",
        "x-eventbridge-version": API_VERSION,
    }
    if credentials.security_token:
        headers["x-acs-accesskey-id"] = credentials.access_key_id
        headers["x-acs-security-token"] = credentials.security_token
    mac = signature(credentials.access_key_secret, string_to_sign(method, PATH, headers))
    headers["authorization"] = f"acs:{credentials.access_key_id}:{mac}"
    return headers


def put_events_body(event: Event, bus: str) -> bytes:
    """The request body: a JSON array holding the event with the bus extension."""
    entry = {**event.body, BUS_EXTENSION: bus}
    return json.dumps([entry], ensure_ascii=False, separators=(",", ":")).encode()


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"AXN_PUBLISH_TO: {message}")


class EventBridgeTarget(HttpTarget):
    def __init__(self, url: str, *, env: Mapping[str, str] | None = None, **options: Any) -> None:
        parts = urlsplit(url.strip())
        # The bus name is the URL's authority; netloc keeps its case (hostname would lower it).
        bus = parts.netloc
        if parts.scheme.lower() != "eventbridge" or not _BUS.fullmatch(bus):
            raise _fail(
                f"an eventbridge target is {_USAGE}; the bus name is 1 to 127 letters, digits "
                "and hyphens, starting with a letter or a digit (no user, password or port)."
            )
        if bus == "default" or bus.startswith("eventbridge-reserved-"):
            raise _fail(
                "an eventbridge target names a custom event bus; 'default' and names starting "
                "with 'eventbridge-reserved-' are reserved by EventBridge."
            )
        if parts.path not in ("", "/") or parts.fragment:
            raise _fail(f"an eventbridge target is {_USAGE}, without a path.")
        self.bus = bus
        # Shown in logs and answers: the bus only, never the query.
        self.name = f"eventbridge://{bus}"
        given = query_options(parts.query, self.name, ("endpoint",))
        self.endpoint = endpoint(
            self.name,
            given.get("endpoint"),
            env,
            "https://{account}.eventbridge.{region}.aliyuncs.com",
        )
        self.host = urlsplit(self.endpoint).netloc
        self.url = self.endpoint + PATH
        super().__init__(**options)
        self.attempts = max(1, self.attempts)

    def _error(self, message: str, retryable: bool) -> PublishError:
        return PublishError(message, target=self.name, retryable=retryable)

    def _check(self, event: Event, body: bytes) -> None:
        """What EventBridge would refuse whatever the attempt: not sent, not retried."""
        fields = event.body
        if len(str(fields.get("source") or "")) > MAX_SOURCE:
            raise self._error(f"the event's source is longer than {MAX_SOURCE} characters", False)
        if len(str(fields.get("type") or "")) > MAX_TYPE:
            raise self._error(f"the event's type is longer than {MAX_TYPE} characters", False)
        if len(body) > MAX_EVENT_BYTES:
            raise self._error(
                f"the event is {len(body)} bytes; EventBridge takes at most {MAX_EVENT_BYTES}",
                False,
            )

    def send(self, event: Event, *, timeout: float) -> None:
        body = put_events_body(event, self.bus)
        self._check(event, body)

        def attempt(_number: int, left: float) -> None:
            # Read at every attempt: FC rotates the role's credentials while an instance lives.
            credentials = self.credentials()
            headers = signed_headers(
                host=self.host,
                credentials=credentials,
                date=formatdate(self.clock(), usegmt=True),
                nonce=uuid.uuid4().hex,
            )
            response = self.post(body, headers, left)
            status, text = response.status, response.body
            if 200 <= status < 300:
                problem, retryable = self._entry_failure(event, text, credentials)
                if problem is None:
                    return
                if not retryable:
                    raise self._error(problem, False)
                raise Retry(problem)
            problem = self._http_failure(status, text)
            if status not in RETRIED:
                raise self._error(problem, False)
            raise Retry(problem, retry_after(response.headers.get("retry-after"), self.clock()))

        self.deliver(timeout, attempt)

    @staticmethod
    def _json(text: bytes) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return None

    @staticmethod
    def _code(value: Any, missing: str = "(no code)") -> str:
        """A code or request id fit to show: short identifiers; anything else is not echoed."""
        text = str(value or "")
        return text if _CODE.fullmatch(text) else missing

    def _http_failure(self, status: int, text: bytes) -> str:
        """What a non-200 answer says. Only the code and request id are shown: the message of a
        SignatureDoesNotMatch answer may quote the string to sign, security token included."""
        answer = self._json(text)
        answer = answer if isinstance(answer, dict) else {}
        code = self._code(answer.get("code") or answer.get("Code"))
        request_id = self._code(answer.get("requestId") or answer.get("RequestId"), "unknown")
        return f"EventBridge answered HTTP {status} {code} (request {request_id})"

    def _entry_failure(
        self, event: Event, text: bytes, credentials: Credentials
    ) -> tuple[str | None, bool]:
        """(None, _) when the event's entry was accepted; else what failed and whether sending
        the same event again may succeed."""
        answer = self._json(text)
        if not isinstance(answer, dict):
            # Accepted or not cannot be told: sending again is safe (consumers de-duplicate).
            return "EventBridge answered HTTP 200 with a body that is not a PutEvents result", True
        request_id = self._code(answer.get("RequestId"), "unknown")
        entries = answer.get("EntryList")
        entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        failed_count = answer.get("FailedEntryCount")
        if not isinstance(failed_count, int) or isinstance(failed_count, bool):
            return (
                f"EventBridge answered HTTP 200 without FailedEntryCount (request {request_id})",
                True,
            )
        # One event is sent per request: its entry is the one with its id, else the only one.
        mine = [e for e in entries if e.get("EventId") == event.id]
        if not mine and len(entries) == 1 and not entries[0].get("EventId"):
            mine = entries
        failed = [e for e in mine if e.get("ErrorCode") or e.get("ErrorMessage")]
        if failed:
            entry = failed[0]
            code = self._code(entry.get("ErrorCode"))
            detail = self._redact(str(entry.get("ErrorMessage") or ""), credentials)
            detail = f": {detail}" if detail else ""
            return (
                f"EventBridge refused the event (FailedEntryCount {failed_count}, entry "
                f"{code}{detail}; request {request_id})",
                code in RETRYABLE_ENTRY_CODES,
            )
        if failed_count > 0:
            # A failure is counted but not matched to this event's entry: not known to be in.
            return (
                f"EventBridge answered FailedEntryCount {failed_count} without this event's "
                f"entry (request {request_id})",
                True,
            )
        return None, True

    @staticmethod
    def _redact(text: str, credentials: Credentials) -> str:
        """An entry's message, short, without phone numbers or anything of the credentials."""
        for secret in (credentials.access_key_secret, credentials.security_token):
            if secret:
                text = text.replace(secret, "[redacted]")
        text = scrub(" ".join(text.split()))
        return text if len(text) <= 200 else text[:199] + "…"
