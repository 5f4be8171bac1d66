"""What the HTTP targets (webhook, EventBridge, MNS, FC) share: where the endpoint is, and how
one event is sent in bounded attempts.

Each target keeps its own rules: how it signs, which answers are delivered, which are refused for
good and which are worth another attempt. An attempt says so by returning (delivered), raising
PublishError (refused) or raising :class:`Retry` (not delivered yet); :meth:`HttpTarget.deliver`
does the rest.

Every exchange goes through the Dyplsapi client's :class:`~axn_bind.dypls.transport.Transport`
(one per target): the time an attempt is given covers all of it, the answer's last byte included,
however slowly a receiver drips it, and at most 64 KiB of an answer is read (a target looks only
at a status, a few headers and a short body); an answer that passes that is cut, its connection
closed. Either way the attempt ends in :class:`Retry`, the event is owed and sent again later.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping

from ..backoff import backoff
from ..config import Credentials, credentials_from, fc_location
from ..dypls.transport import Answered, Transport
from ..errors import ConfigurationError, PublishError
from ..urls import is_loopback, split
from .event import Event

REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+")
ACCOUNT = re.compile(r"[0-9]{1,32}")
# The answers after which a target sends the event again (after the wait they ask for): too many
# requests, and the server errors that mean "not now". Webhook, EventBridge and FC retry these.
RETRIED = frozenset({429, 500, 502, 503, 504})
# MNS retries more: 408 Request Timeout too, and every 5xx (a status has three digits), besides
# its throttling error codes.
MNS_RETRIED = RETRIED | {408, *range(500, 1000)}


def parse_endpoint(value: str, name: str) -> str:
    """``scheme://host[:port]`` from the ``?endpoint=`` option of the target ``name``: https://,
    or plain http:// to a loopback host; no credentials, path or query. Read once
    (:func:`axn_bind.urls.split`) and rebuilt from that reading. ConfigurationError otherwise,
    never quoting a credential."""
    said = f"AXN_PUBLISH_TO: {name}'s ?endpoint="
    parts = split(value.strip(), said, credentials=False)
    if parts.scheme not in ("https", "http") or not parts.host:
        raise ConfigurationError(f"{said} must be an https:// URL: https://host[:port].")
    if parts.scheme == "http" and not is_loopback(parts.host):
        raise ConfigurationError(
            f"{said} may use plain http:// only for a loopback host; use https:// for {parts.host}."
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{said} must not carry a path or query: it is scheme://host[:port] only."
        )
    return parts.origin


def endpoint(name: str, option: str | None, env: Mapping[str, str] | None, default: str) -> str:
    """The endpoint of the target ``name``: its ``?endpoint=`` option when given, else
    ``default`` with ``{account}`` and ``{region}`` taken from FC_ACCOUNT_ID and FC_REGION (which
    Function Compute sets) in ``env`` (default: the process environment)."""
    if option is not None:
        return parse_endpoint(option, name)
    region, account = fc_location(env)
    if not (REGION.fullmatch(region) and ACCOUNT.fullmatch(account)):
        example = default.format(account="<account>", region="<region>")
        raise ConfigurationError(
            f"AXN_PUBLISH_TO: {name} needs FC_REGION and FC_ACCOUNT_ID (Function Compute sets "
            f"them) to find its endpoint; set both, or give the endpoint with ?endpoint={example}."
        )
    return default.format(account=account, region=region)


class Retry(Exception):
    """Raised by an attempt that did not deliver the event when another attempt may.

    ``problem`` says what happened (never a secret); ``after`` is the wait the answer asked for,
    in seconds (0 for at once), or None for the usual backoff."""

    def __init__(self, problem: str, after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.after = after


class HttpTarget:
    """A target that sends over its own transport (connection pool), in attempts. A subclass
    sets ``name`` and ``url`` and calls :meth:`deliver` with its attempt."""

    name: str
    url: str

    def __init__(
        self,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        max_wait: float = 10.0,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.attempts = attempts
        self.backoff = backoff  # the wait after the first attempt, doubled after each next one
        self.max_wait = max_wait  # the longest wait between two attempts
        self.transport = transport or Transport()  # no proxy or .netrc from the environment
        self.clock = clock
        self.sleep = sleep

    def utf8(self, event: Event) -> bytes:
        """The event's JSON text as UTF-8; PublishError (not retryable) when it is not valid."""
        try:
            return event.text.encode("utf-8")
        except UnicodeEncodeError:
            raise PublishError(
                "the event is not valid UTF-8 text", target=self.name, retryable=False
            ) from None

    def credentials(self, env: Mapping[str, str] | None = None) -> Credentials:
        """The credentials to sign with, read now from ``env`` (default: the process
        environment); PublishError (not retryable) naming the variables, never a value."""
        try:
            return credentials_from(env)
        except ConfigurationError as error:
            raise PublishError(
                f"cannot sign the request: {error.message}", target=self.name, retryable=False
            ) from None

    def post(
        self,
        data: bytes,
        headers: Mapping[str, str],
        left: float,
        connect: float = 5.0,
        url: str | None = None,
    ) -> Answered:
        """POST ``data`` to ``url`` (default: the target's; redirects not followed), connecting
        within ``connect`` seconds, all of it over within ``left``: the answer's status, headers
        (names in lower case) and body, of at most the transport's MAX_ANSWER bytes in all. Retry when no
        complete answer came: not sent, no answer, or one cut at the deadline or the size limit,
        with a short fixed reason (never the URL: it may carry a token)."""
        sent = {  # the transport sets these two itself
            name: value
            for name, value in headers.items()
            if name.lower() not in ("content-length", "user-agent")
        }
        exchange = self.transport.send(
            url or self.url,
            sent,
            data,
            connect_timeout=min(connect, left),
            read_timeout=left,
            end=self.transport.clock() + left,
        )
        if isinstance(exchange, Answered):
            return exchange
        raise Retry(f"no answer ({exchange.reason})")

    def deliver(self, timeout: float, attempt: Callable[[int, float], None]) -> None:
        """Call ``attempt(number, seconds_left)`` until it returns, within ``attempts`` and
        ``timeout`` seconds. After each :class:`Retry` but the last it waits what the answer
        asked for, else a jittered exponential backoff, at most ``max_wait``; a wait that would
        end past the deadline stops the attempts. PublishError (retryable) when none delivered."""
        end = self.clock() + timeout
        problem = "not sent"
        number = 0
        for number in range(1, self.attempts + 1):
            left = end - self.clock()
            if left <= 0:
                raise PublishError(
                    "no time was left to deliver the event", target=self.name, retryable=True
                )
            try:
                attempt(number, left)
            except Retry as retry:
                problem, after = retry.problem, retry.after
            else:
                return
            if number == self.attempts:
                break
            if after is None:
                wait = backoff(number, self.backoff, self.max_wait)
            else:
                wait = min(after, self.max_wait)
            if self.clock() + wait >= end:
                break
            if wait > 0:
                self.sleep(math.ceil(wait * 1000) / 1000)
        raise PublishError(
            f"not delivered after {number} attempt(s): {problem}", target=self.name, retryable=True
        )
