"""Another Function Compute function, invoked asynchronously with a de-duplication id.

``fc://<function>`` invokes an FC 3.0 function through the 2023-03-30 API, signed here with the
project's own V3 signer; ``fc2://<service>/<function>`` invokes an FC 2.0 function through the
``aliyun-fc2`` SDK (:mod:`.fc2`). Options, on either form:

- ``qualifier=<version or alias>``: the version or alias to invoke (default: LATEST);
- ``endpoint=https://…`` (or ``http://`` to a loopback host, for tests): the FC endpoint to use
  instead of ``https://{FC_ACCOUNT_ID}.{FC_REGION}.fc.aliyuncs.com``.

The FC 3.0 request::

    POST /2023-03-30/functions/{function}/invocations[?qualifier=…]
    content-type: application/octet-stream              body: the event's JSON text, as it is
    x-fc-invocation-type: Async
    x-fc-async-task-id: axn-<event id>
    host, x-acs-action: InvokeFunction, x-acs-version: 2023-03-30, x-acs-date,
    x-acs-signature-nonce, x-acs-content-sha256, [x-acs-security-token], authorization

signed with ACS3-HMAC-SHA256 (:func:`axn_bind.signing.sign_v3`, the canonical URI being the
path), with the action and version headers the official ``alibabacloud-fc20230330`` SDK sends. The
signature covers host, content-type and every ``x-acs-*`` header; the two ``x-fc-*`` headers
travel unsigned, as V3 allows.

**De-duplication.** Every attempt, retry and republish of one event carries the same async task
id, derived from the event id (:func:`task_id`), so FC accepts the event once: a second submission
is refused with 409, which this target takes as delivered. This holds when the target function has
async tasks enabled (FC 3.0 ``asyncTask``; FC 2.0 stateful async invocation); without them FC
ignores the id and a republished event may run twice, so the receiving function should still
de-duplicate on the event's (``source``, ``id``). Two qualifiers of one function share the task
ids, so one function is one target: its ``name`` is ``fc://<function>`` without the query, and
``AXN_PUBLISH_TO`` refuses the same name twice.

**Answers.** 202 (any 2xx) is delivered and so is 409 (already accepted); 429, 5xx and network
errors (a connection refused, a timed-out attempt) are retried after a backoff that honours
``Retry-After``, within the attempts and the time given, and each attempt is capped at
``attempt_timeout`` so that a lost answer leaves time for a retry (which the task id makes safe);
every other answer (a missing function, a refused signature or permission, a payload over FC's
128 KB async limit) is refused for good.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..backoff import retry_after
from ..config import Credentials
from ..errors import ConfigurationError, PublishError
from ..log import log
from ..signing import canonical_query, new_nonce, sign_v3, utc_timestamp
from . import query_options
from .event import Event, event_id
from .http import RETRIED, HttpTarget, Retry, endpoint

API_VERSION = "2023-03-30"
ACTION = "InvokeFunction"
CONTENT_TYPE = "application/octet-stream"
MAX_ASYNC_BODY = 128 * 1024  # FC's limit on an asynchronous invocation's payload
ALREADY_ACCEPTED = 409  # a duplicate async task id: FC has the event already
# FC service, function and alias names: a letter or underscore, then letters, digits, _ and -.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
QUALIFIER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")  # a version number, an alias, LATEST
# An async task id: starts with a letter or underscore; letters, digits, _ and -; ≤ 128 chars.
TASK_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
TASK_PREFIX = "axn-"
OPTIONS = ("qualifier", "endpoint")
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,63}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# What to fix, for the refusals an operator can act on.
HINTS = {
    "FunctionNotFound": "create the function, or correct its name or region",
    "ServiceNotFound": "create the service, or correct its name or region",
    "AliasNotFound": "create the alias, or correct ?qualifier=",
    "VersionNotFound": "publish the version, or correct ?qualifier=",
    "AccessDenied": "grant the function's role fc:InvokeFunction on the target function",
    "InvalidAccessKeyID": "the function's credentials are not valid here",
    "InvalidAccessKeyId": "the function's credentials are not valid here",
    "InvalidSecurityToken": "the function's STS token was not accepted",
    "SignatureNotMatch": "the request signature was not accepted",
    "SignatureDoesNotMatch": "the request signature was not accepted",
    "RequestTimeTooSkewed": "the function's clock is too far from FC's",
}


def task_id(eid: str) -> str:
    """The async task id for the event ``eid``: ``axn-`` + the id when FC takes that as a task
    id (the ids this function makes, UUID-shaped, always are), else ``axn-`` + a digest of it.
    The same event always gets the same task id, and the prefix makes it start with a letter."""
    candidate = TASK_PREFIX + eid
    if TASK_ID.fullmatch(candidate):
        return candidate
    return TASK_PREFIX + event_id("fc-async-task", eid)


@dataclass(frozen=True)
class Answer:
    """What FC answered to one attempt."""

    status: int
    code: str | None = None
    request_id: str | None = None
    retry_after: str | None = None


def answer_of(
    status: int, headers: Mapping[str, str], content: bytes, *, code_keys: tuple[str, ...]
) -> Answer:
    """An :class:`Answer` from an HTTP answer: the error code from the JSON body (under the first
    of ``code_keys`` present), the request id from ``x-fc-request-id`` or the body."""
    body: object = None
    if status >= 300 and content:
        try:
            body = json.loads(content[:8192])
        except ValueError:
            body = None
    fields = body if isinstance(body, dict) else {}
    code = next((fields[k] for k in code_keys if isinstance(fields.get(k), str)), None)
    lower = {k.lower(): v for k, v in headers.items()}
    rid = lower.get("x-fc-request-id") or fields.get("RequestId") or fields.get("requestId")
    return Answer(
        status,
        code if isinstance(code, str) and _CODE.fullmatch(code) else None,
        rid if isinstance(rid, str) and _REQUEST_ID.fullmatch(rid) else None,
        lower.get("retry-after"),
    )


@dataclass(frozen=True)
class Parsed:
    """An fc:// or fc2:// target, parsed."""

    names: tuple[str, ...]  # (function,) or (service, function)
    name: str  # the target's name: scheme://names, no query
    qualifier: str | None
    endpoint: str


def parse_target(url: str, scheme: str, count: int, usage: str, env: Mapping[str, str]) -> Parsed:
    """Read ``scheme://name[/name]?options`` (``count`` names). The names go in the URL's host
    and path as written: FC names are case-sensitive, so the host is not lower-cased."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        raise ConfigurationError(f"{usage}.") from None
    if "@" in parts.netloc + parts.path:  # user:password@, a password holding "/" included
        raise ConfigurationError(
            f"{usage}; it carries no credentials (the function signs with its role's STS "
            "credentials): remove the user:password part."
        )
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    names = (parts.netloc, *(path.split("/") if path else ()))
    if parts.scheme.lower() != scheme or parts.fragment or len(names) != count:
        raise ConfigurationError(f"{usage}.")
    for item in names:
        if not NAME.fullmatch(item):
            raise ConfigurationError(
                f"{usage}; a service or function name starts with a letter or _ and holds only "
                "letters, digits, _ and - (128 characters at most)."
            )
    name = f"{scheme}://" + "/".join(names)
    options = query_options(parts.query, name, OPTIONS)
    qualifier = options.get("qualifier")
    if qualifier is not None and not QUALIFIER.fullmatch(qualifier):
        raise ConfigurationError(
            f"AXN_PUBLISH_TO: {name}'s ?qualifier= must be a version number or an alias name "
            "(letters, digits, _ and -)."
        )
    url = endpoint(name, options.get("endpoint"), env, "https://{account}.{region}.fc.aliyuncs.com")
    return Parsed(names, name, qualifier, url)


class AsyncInvokeTarget(HttpTarget):
    """What both FC APIs share: the URL's form, the payload, the task id, the credentials and
    the attempts. A subclass names its scheme, its number of names and its usage line, and
    sends one attempt (:meth:`_invoke`)."""

    scheme = ""
    count = 1
    usage = ""

    def __init__(
        self,
        url: str,
        *,
        attempt_timeout: float = 3.0,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        env = os.environ if env is None else env
        parsed = parse_target(url, self.scheme, self.count, self.usage, env)
        self.names = parsed.names
        self.name = parsed.name  # shown in logs and answers; the key deliveries are recorded by
        self.qualifier = parsed.qualifier
        self.endpoint = parsed.endpoint
        self.host = urlsplit(parsed.endpoint).netloc
        self.env = env
        self.attempt_timeout = attempt_timeout
        super().__init__(**options)

    def _invoke(self, body: bytes, task: str, creds: Credentials, limit: float) -> Answer:
        """Send one attempt within ``limit`` seconds; return FC's answer or raise Retry."""
        raise NotImplementedError

    def _body(self, event: Event) -> bytes:
        body = self.utf8(event)
        if len(body) > MAX_ASYNC_BODY:
            raise PublishError(
                f"the event is {len(body)} bytes; an asynchronous invocation takes at most "
                f"{MAX_ASYNC_BODY} (128 KB)",
                target=self.name,
                retryable=False,
            )
        return body

    def _refused(self, answer: Answer) -> PublishError:
        what = f"HTTP {answer.status}" + (f" {answer.code}" if answer.code else "")
        hint = HINTS.get(answer.code or "")
        tail = (f"; {hint}" if hint else "") + (
            f" (RequestId {answer.request_id})" if answer.request_id else ""
        )
        return PublishError(
            f"FC refused the invocation with {what}{tail}",
            target=self.name,
            retryable=False,
        )

    def send(self, event: Event, *, timeout: float) -> None:
        body = self._body(event)
        task = task_id(event.id)
        creds = self.credentials(self.env)

        def attempt(number: int, left: float) -> None:
            answer = self._invoke(body, task, creds, min(self.attempt_timeout, left))
            if 200 <= answer.status < 300:
                return
            if answer.status == ALREADY_ACCEPTED:
                log(
                    "publish_already_accepted",
                    target=self.name,
                    event_id=event.id,
                    task_id=task,
                    attempt=number,
                )
                return
            if answer.status not in RETRIED:
                raise self._refused(answer)
            problem = f"HTTP {answer.status}" + (f" {answer.code}" if answer.code else "")
            raise Retry(problem, retry_after(answer.retry_after, self.clock()))

        self.deliver(timeout, attempt)


class FcTarget(AsyncInvokeTarget):
    """``fc://<function>[?qualifier=…][&endpoint=…]``: an FC 3.0 function, invoked async."""

    scheme = "fc"
    count = 1
    usage = (
        "AXN_PUBLISH_TO: an FC 3.0 function target is fc://<function> (options: "
        "?qualifier=<version or alias>, ?endpoint=)"
    )

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.function = self.names[0]
        self.path = f"/{API_VERSION}/functions/{self.function}/invocations"
        self.params = {"qualifier": self.qualifier} if self.qualifier else {}
        query = canonical_query(self.params)
        self.url = self.endpoint + self.path + (f"?{query}" if query else "")

    def _invoke(self, body: bytes, task: str, creds: Credentials, limit: float) -> Answer:
        signed = sign_v3(
            method="POST",
            host=self.host,
            action=ACTION,
            params=self.params,
            credentials=creds,
            date=utc_timestamp(),
            nonce=new_nonce(),
            version=API_VERSION,
            body=body,
            content_type=CONTENT_TYPE,
            path=self.path,
        )
        headers = {**signed.headers, "x-fc-invocation-type": "Async", "x-fc-async-task-id": task}
        response = self.post(body, headers, limit, connect=limit)
        return answer_of(
            response.status, response.headers, response.body[:8192], code_keys=("Code", "ErrorCode")
        )
