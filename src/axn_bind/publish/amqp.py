"""ApsaraMQ for RabbitMQ (or any RabbitMQ) over AMQP 0-9-1, with pika.

The target URL::

    amqp://USERNAME:PASSWORD@HOST:5672/VHOST?exchange=EXCHANGE&routing_key=KEY
    amqps://USERNAME:PASSWORD@HOST:5671/VHOST?exchange=EXCHANGE&routing_key=KEY   (TLS)

For ApsaraMQ for RabbitMQ:

- ``HOST`` is the instance's endpoint as the console shows it (Instance Details, Endpoint
  Information): the VPC endpoint for a function attached to the instance's VPC, else the public
  one. The port is 5672 for ``amqp://`` and 5671 for ``amqps://`` when the URL gives none.
- ``USERNAME`` and ``PASSWORD`` are a *static username and password* of the instance (console:
  Static Accounts, or the CreateAccount API), made from a RAM user's AccessKey pair: the username
  is Base64 of ``2:<instance id>:<AccessKey id>`` and the password is Base64 too, so both may hold
  ``/``, ``+`` and ``=``. Put each in the URL percent-encoded, e.g.
  ``urllib.parse.quote(value, safe="")``. They stay valid until the pair is deleted in the console
  or the AccessKey behind it is disabled; then the broker refuses the login (not retried). The
  function's own STS credentials are not used: AMQP authenticates with this pair alone, and what
  it may do is what the RAM user behind it may do.
- ``VHOST`` is the name of a vhost created in the instance, as the URL's path: ``/order-flow``.
  An empty path or ``/`` means RabbitMQ's default vhost ``/`` (``%2F``); a ``/`` inside a vhost
  name is written ``%2F``.
- ``exchange`` names an exchange that exists in that vhost (this target never declares one) and
  ``routing_key`` the key its bindings route on (empty when omitted). ``exchange=`` left empty is
  the default exchange, which routes to the queue named by ``routing_key``.

Every event is published with publisher confirms, ``mandatory`` (a message that no queue receives
is a failure, not a silent drop) and persistent delivery: ``message_id`` is the event id (the
same on every republish, so consumers de-duplicate on it), ``type`` the event type,
``content_type`` ``application/cloudevents+json``, and the body the event's JSON text. One
connection is kept per target (ApsaraMQ asks for long-lived connections) and opened again after
a failure; ``send`` is bounded by its ``timeout``, connecting and the confirm included.

``name`` is the URL without its username and password; it keeps the vhost, the exchange and the
routing key, which tell two targets on one broker apart (the announcer records deliveries under
it) and hold no secret. The password never appears in a name, an error or a log line.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pika
from pika.adapters.select_connection import SelectConnection
from pika.adapters.utils import connection_workflow as workflow

from ..backoff import backoff
from ..errors import ConfigurationError, PublishError
from .event import Event

CONTENT_TYPE = "application/cloudevents+json"
PORTS = {"amqp": 5672, "amqps": 5671}
QUERY_KEYS = ("exchange", "routing_key")
MAX_SHORTSTR = 255  # AMQP short strings (vhost, exchange, routing key): at most 255 bytes
CONNECT_TIMEOUT = 5.0  # longest wait for TCP, TLS and the AMQP handshake together
MIN_ATTEMPT = 1.0  # the least time one attempt is given when there is that much left
IDLE_LIMIT = 30.0  # a connection left unused longer than this is replaced, not reused:
# Function Compute freezes an instance between invocations, so its heartbeats went unanswered
# and the broker may have dropped it without a word reaching this side.

# Channel and connection close codes that retrying cannot cure (AMQP 0-9-1 reply codes):
# 403 ACCESS_REFUSED (the user may not write to the exchange), 404 NOT_FOUND (no such exchange),
# 406 PRECONDITION_FAILED (e.g. a message larger than the broker accepts), 530 NOT_ALLOWED (no
# such vhost, or no access to it) -- except ApsaraMQ's throttling, which closes the channel with
# 530 "denied for too many requests" and lifts after a backoff.
PERMANENT_CODES = {403: "access refused", 404: "not found", 406: "precondition failed"}
NOT_ALLOWED = 530
THROTTLED_TEXT = "too many requests"

# pika reports every failure at ERROR in a format of its own; here each one reaches the caller
# once, as a PublishError (which the announcer logs as a JSON line). An operator who sets the
# "pika" logger's level keeps what was set.
if logging.getLogger("pika").level == logging.NOTSET:
    logging.getLogger("pika").setLevel(logging.CRITICAL)


class _Failure(Exception):
    """One attempt failed: ``reason`` is safe to show (no credentials)."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass
class _Opening:
    """How the connection's opening ended."""

    done: bool = False
    error: BaseException | None = None


@dataclass
class _Publishing:
    """One publish awaiting the broker's confirm."""

    tag: int
    done: bool = False
    nacked: bool = False
    returned: str | None = None  # reply code and text of a Basic.Return (unroutable)


@dataclass
class _Address:
    """AXN_PUBLISH_TO's amqp(s):// URL, parsed."""

    scheme: str
    host: str
    port: int
    vhost: str
    username: str = field(repr=False)
    password: str = field(repr=False)
    exchange: str
    routing_key: str


def _bad(message: str) -> ConfigurationError:
    return ConfigurationError(f"AXN_PUBLISH_TO: {message}")


def parse_url(url: str) -> _Address:
    """The parts of an ``amqp://`` / ``amqps://`` target URL; ConfigurationError says what to fix
    and never echoes the URL (it holds the password)."""
    form = "amqp[s]://user:password@host[:port]/vhost?exchange=NAME&routing_key=KEY"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise _bad(
            f"an AMQP target must be {form}, with the username and password percent-encoded "
            "(the URL given cannot be read; it is not shown)."
        ) from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in PORTS or not host:
        raise _bad(f"an AMQP target must be {form}.")
    if "@" in parts.path or "@" in parts.query:
        raise _bad(
            "the username or password of the AMQP target holds an unencoded '/', '?' or '#': "
            "percent-encode both (urllib.parse.quote(value, safe='')); the URL is not shown."
        )
    if parts.username is None or not parts.password:
        raise _bad(
            f"an AMQP target needs the username and password in the URL: {form} "
            "(for ApsaraMQ, a static username and password of the instance)."
        )
    if parts.fragment:
        raise _bad("an AMQP target URL takes no #fragment.")
    raw_path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if "/" in raw_path:
        raise _bad(
            "an AMQP target's path is one vhost name; write a '/' inside it as %2F "
            "(the default vhost '/' is %2F or an empty path)."
        )
    vhost = unquote(raw_path) or "/"
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _bad(f"the AMQP target's query must be exchange=…&routing_key=…: {form}.") from None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key not in QUERY_KEYS:
            raise _bad(
                f"an AMQP target takes only exchange= and routing_key= in its query, not "
                f"{key[:40]!r}."
            )
        if key in query:
            raise _bad(f"the AMQP target's query gives {key}= twice.")
        query[key] = value
    if "exchange" not in query:
        raise _bad(
            f"an AMQP target must name its exchange: {form} "
            "(exchange= left empty is the default exchange, routing to the queue named by "
            "routing_key)."
        )
    exchange, routing_key = query["exchange"], query.get("routing_key", "")
    if not exchange and not routing_key:
        raise _bad(
            "with the default exchange (exchange= empty) the AMQP target needs routing_key= "
            "naming the queue."
        )
    for what, value in (("vhost", vhost), ("exchange", exchange), ("routing_key", routing_key)):
        if len(value.encode()) > MAX_SHORTSTR:
            raise _bad(f"the AMQP target's {what} is longer than {MAX_SHORTSTR} bytes.")
    return _Address(
        scheme=scheme,
        host=host,
        port=port or PORTS[scheme],
        vhost=vhost,
        username=unquote(parts.username),
        password=unquote(parts.password),
        exchange=exchange,
        routing_key=routing_key,
    )


def _close_reason(code: int, text: str, what: str = "channel") -> tuple[str, bool]:
    """What the broker's closing of a channel or connection (``what``) means, and whether
    retrying may cure it."""
    if code == NOT_ALLOWED and THROTTLED_TEXT in text.lower():
        return f"the broker throttled the publisher ({code}: {text})", True
    if code == NOT_ALLOWED:
        return f"the broker does not allow it ({code}: {text})", False
    if code in PERMANENT_CODES:
        return f"the broker refused the message: {PERMANENT_CODES[code]} ({code}: {text})", False
    # 320 CONNECTION_FORCED (a broker restart), 541 INTERNAL_ERROR, frame errors and the like.
    return f"the broker closed the {what} ({code}: {text})", True


def _tls_context() -> ssl.SSLContext:
    """Certificate and host name checked, against the system's CAs and certifi's (which
    requests brings along), so that a runtime image without a CA bundle still verifies."""
    context = ssl.create_default_context()
    with contextlib.suppress(ImportError, OSError):
        import certifi

        context.load_verify_locations(certifi.where())
    return context


def _innermost(error: BaseException) -> BaseException:
    """The cause pika wraps in its connection-workflow exceptions."""
    seen = 0
    while seen < 8:
        seen += 1
        if isinstance(error, workflow.AMQPConnectionWorkflowFailed) and error.exceptions:
            error = error.exceptions[-1]
        elif isinstance(error, workflow.AMQPConnectorPhaseErrorBase) and error.exception:
            error = error.exception
        elif (
            type(error) is pika.exceptions.AMQPConnectionError
            and error.args
            and isinstance(error.args[0], BaseException)
        ):
            error = error.args[0]
        else:
            break
    return error


class AmqpTarget:
    def __init__(
        self,
        url: str,
        *,
        attempts: int = 3,
        backoff: float = 0.2,
        max_wait: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        address = parse_url(url)
        self.address = address
        host = f"[{address.host}]" if ":" in address.host else address.host
        route = urlencode(
            {"exchange": address.exchange, "routing_key": address.routing_key}, quote_via=quote
        )
        # Shown in logs and answers: no username or password.
        self.name = (
            f"{address.scheme}://{host}:{address.port}/{quote(address.vhost, safe='')}?{route}"
        )
        self.attempts = attempts
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self._lock = threading.Lock()  # a pika connection serves one thread at a time
        self._conn: SelectConnection | None = None
        self._channel: Any = None
        self._publishing: _Publishing | None = None
        self._tag = 0  # the delivery tag of the last message published on the channel
        self._used = 0.0
        self._conn_error: BaseException | None = None
        self._channel_error: BaseException | None = None
        self._blocked = False

    # --- sending -------------------------------------------------------------------------------

    def send(self, event: Event, *, timeout: float) -> None:
        end = time.monotonic() + timeout
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=event.id,
            type=event.type,
        )
        body = event.text.encode("utf-8")
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            raise PublishError(
                "no time was left: another delivery held the connection",
                target=self.name,
                retryable=True,
            )
        try:
            self._send(body, properties, end)
        finally:
            self._lock.release()

    def _send(self, body: bytes, properties: pika.BasicProperties, end: float) -> None:
        made = 0
        problem = "no time was left to deliver the event"
        while made < self.attempts:
            left = end - time.monotonic()
            if left <= 0:
                break
            made += 1
            # An even share of the time left, so that a stalled connection leaves time for
            # another on a fresh one; the last attempt takes all that remains.
            share = left if made == self.attempts else left / (self.attempts - made + 1)
            try:
                self._attempt(
                    body, properties, time.monotonic() + max(share, min(left, MIN_ATTEMPT))
                )
            except _Failure as failure:
                if not failure.retryable:
                    raise PublishError(failure.reason, target=self.name, retryable=False) from None
                problem = failure.reason
            else:
                return
            if made == self.attempts:
                break
            wait = backoff(made, self.backoff, self.max_wait)
            if time.monotonic() + wait >= end:
                break
            self.sleep(wait)
        raise PublishError(
            f"not delivered after {made} attempt(s): {problem}", target=self.name, retryable=True
        )

    def _attempt(self, body: bytes, properties: pika.BasicProperties, end: float) -> None:
        self._open(end)
        assert self._conn is not None and self._channel is not None
        self._tag += 1
        state = self._publishing = _Publishing(self._tag)
        try:
            self._channel.basic_publish(
                self.address.exchange,
                self.address.routing_key,
                body,
                properties=properties,
                mandatory=True,
            )
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._drop()
            raise _Failure(
                f"the connection failed while publishing ({type(exc).__name__})", retryable=True
            ) from None
        try:
            self._run(lambda: state.done, end, "the broker's confirm")
        finally:
            self._publishing = None
        self._used = time.monotonic()
        if state.returned is not None:
            # mandatory: no queue is bound for this routing key. Retrying cannot help until
            # someone binds one, and a message no queue holds would be lost, not delivered.
            raise _Failure(
                f"the message was unroutable: no queue is bound to exchange "
                f"{self.address.exchange!r} for routing key {self.address.routing_key!r} "
                f"({state.returned})",
                retryable=False,
            )
        if state.nacked:
            # A nack is the broker saying it could not take the message (an internal error or
            # a full queue that rejects publishes): it may take it later.
            raise _Failure("the broker nacked the message", retryable=True)

    # --- the connection and its channel ---------------------------------------------------------

    def _open(self, end: float) -> None:
        conn = self._conn
        if conn is not None and (
            not conn.is_open or self._blocked or time.monotonic() - self._used > IDLE_LIMIT
        ):
            self._drop()
        elif conn is not None:
            # Read what arrived while the connection was idle (a close from the broker) before
            # writing to it.
            self._spin(conn, 0)
            if not conn.is_open or self._conn_error is not None or self._blocked:
                self._drop()
        if self._conn is None:
            self._connect(end)
        if self._channel is None or not self._channel.is_open:
            self._open_channel(end)

    def _connect(self, end: float) -> None:
        a = self.address
        left = max(0.01, min(end - time.monotonic(), CONNECT_TIMEOUT))
        ssl_options = None
        if a.scheme == "amqps":
            ssl_options = pika.SSLOptions(_tls_context(), server_hostname=a.host)
        params = pika.ConnectionParameters(
            host=a.host,
            port=a.port,
            virtual_host=a.vhost,
            credentials=pika.PlainCredentials(a.username, a.password, erase_on_connect=False),
            ssl_options=ssl_options,
            connection_attempts=1,
            retry_delay=0,
            socket_timeout=left,
            stack_timeout=left,
            blocked_connection_timeout=CONNECT_TIMEOUT,
            client_properties={"connection_name": "axn-bind"},
        )
        opening = _Opening()

        def opened(_conn: Any) -> None:
            opening.done = True
            _conn.ioloop.stop()

        def failed(_conn: Any, error: BaseException) -> None:
            opening.done, opening.error = True, error
            _conn.ioloop.stop()

        self._conn_error = None
        self._blocked = False
        self._conn = SelectConnection(
            params,
            on_open_callback=opened,
            on_open_error_callback=failed,
            on_close_callback=self._on_connection_closed,
        )
        self._conn.add_on_connection_blocked_callback(self._on_blocked)
        self._conn.add_on_connection_unblocked_callback(self._on_unblocked)
        self._run(lambda: opening.done, end, "the connection to open")
        if opening.error is not None:
            self._drop()
            raise self._open_failure(opening.error)
        self._used = time.monotonic()

    def _open_failure(self, error: BaseException) -> _Failure:
        cause = _innermost(error)
        if isinstance(
            cause,
            pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError,
        ):
            # A wrong username or password (or a static pair deleted, or its AccessKey
            # disabled) stays wrong however often it is tried.
            return _Failure(
                "the broker refused the login: check the username and password "
                "(for ApsaraMQ, the instance's static username and password)",
                retryable=False,
            )
        if isinstance(cause, pika.exceptions.ProbableAccessDeniedError):
            text = self._safe(str(cause.args[0]) if cause.args else "")
            if THROTTLED_TEXT in text.lower():
                return _Failure(f"the broker throttled the connection ({text})", retryable=True)
            # No such vhost, or the user may not use it: an operator must create or grant it.
            return _Failure(
                f"the broker refused vhost {self.address.vhost!r}: it does not exist or the user "
                f"may not use it ({text})",
                retryable=False,
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            # The certificate does not match the host (or is not trusted): a wrong endpoint in
            # the URL, which retrying does not change.
            return _Failure(
                f"TLS: the broker's certificate was not accepted for {self.address.host} "
                f"({cause.verify_message or 'verification failed'})",
                retryable=False,
            )
        if isinstance(cause, workflow.AMQPConnectorStackTimeout):
            return _Failure("timed out connecting to the broker", retryable=True)
        if isinstance(cause, socket.gaierror):
            return _Failure(f"cannot resolve {self.address.host}", retryable=True)
        if isinstance(cause, ConnectionRefusedError):
            return _Failure("the broker refused the connection", retryable=True)
        if isinstance(cause, pika.exceptions.ConnectionClosed):
            text = self._safe(cause.reply_text)
            reason, retryable = _close_reason(cause.reply_code, text, "connection")
            return _Failure(reason, retryable=retryable)
        # Unreachable networks, resets, TLS handshakes cut short, a broker still starting.
        return _Failure(f"cannot connect to the broker ({type(cause).__name__})", retryable=True)

    def _open_channel(self, end: float) -> None:
        assert self._conn is not None
        opening = _Opening()

        def opened(channel: Any) -> None:
            self._channel = channel
            channel.add_on_close_callback(self._on_channel_closed)
            channel.add_on_return_callback(self._on_return)
            channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=selected)

        def selected(_frame: Any) -> None:
            opening.done = True
            self._wake()

        self._channel_error = None
        self._channel = None
        self._tag = 0
        try:
            self._conn.channel(on_open_callback=opened)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._drop()
            raise _Failure(
                f"cannot open a channel ({type(exc).__name__})", retryable=True
            ) from None
        self._run(lambda: opening.done, end, "the channel to open")

    # --- pika's callbacks -----------------------------------------------------------------------

    def _on_connection_closed(self, conn: Any, error: BaseException) -> None:
        if conn is self._conn:
            self._conn_error = error
        conn.ioloop.stop()

    def _on_channel_closed(self, channel: Any, error: BaseException) -> None:
        if channel is not self._channel:
            return
        self._channel_error = error
        self._wake()

    def _on_return(self, _channel: Any, method: Any, _properties: Any, _body: bytes) -> None:
        if self._publishing is not None:
            self._publishing.returned = f"{method.reply_code}: {method.reply_text}"

    def _on_confirm(self, frame: Any) -> None:
        state, method = self._publishing, frame.method
        if state is None:
            return
        if method.delivery_tag == state.tag or (
            method.multiple and method.delivery_tag >= state.tag
        ):
            state.nacked = isinstance(method, pika.spec.Basic.Nack)
            state.done = True
            self._wake()

    def _on_blocked(self, conn: Any, _frame: Any) -> None:
        if conn is self._conn:
            self._blocked = True
        conn.ioloop.stop()

    def _on_unblocked(self, conn: Any, _frame: Any) -> None:
        if conn is self._conn:
            self._blocked = False

    def _wake(self) -> None:
        if self._conn is not None:
            self._conn.ioloop.stop()

    # --- the I/O loop ---------------------------------------------------------------------------

    @staticmethod
    def _spin(conn: Any, seconds: float) -> None:
        """Run ``conn``'s I/O loop until a callback stops it or ``seconds`` have passed (0: only
        what is already waiting on the socket)."""
        loop = conn.ioloop
        timer = loop.call_later(max(0.0, seconds), loop.stop)
        try:
            loop.start()
        finally:
            loop.remove_timeout(timer)

    def _run(self, done: Callable[[], bool], end: float, what: str) -> None:
        """Run the connection's I/O loop until ``done()`` or ``end``; a close, a block or the
        end raises _Failure (and drops the connection where its state is no longer known)."""
        conn = self._conn
        assert conn is not None
        while True:
            if done():
                return
            if self._conn_error is not None or conn.is_closed or conn.is_closing:
                error = self._conn_error
                self._drop()
                if isinstance(error, pika.exceptions.ConnectionClosedByBroker):
                    text = self._safe(error.reply_text)
                    reason, retryable = _close_reason(error.reply_code, text, "connection")
                    raise _Failure(reason, retryable=retryable)
                raise _Failure(
                    f"the connection was lost waiting for {what} "
                    f"({type(error).__name__ if error else 'closed'})",
                    retryable=True,
                )
            if self._channel_error is not None:
                error, self._channel, self._channel_error = self._channel_error, None, None
                if isinstance(error, pika.exceptions.ChannelClosedByBroker):
                    text = self._safe(error.reply_text)
                    reason, retryable = _close_reason(error.reply_code, text, "channel")
                    raise _Failure(reason, retryable=retryable)
                self._drop()  # closed by neither side on purpose: start afresh
                raise _Failure(
                    f"the channel closed waiting for {what} ({type(error).__name__})",
                    retryable=True,
                )
            if self._blocked:
                self._drop()
                raise _Failure(
                    "the broker blocks publishers (connection.blocked: a resource alarm)",
                    retryable=True,
                )
            left = end - time.monotonic()
            if left <= 0:
                # What the broker made of the last frame is unknown: start afresh next time.
                self._drop()
                raise _Failure(f"timed out waiting for {what}", retryable=True)
            self._spin(conn, left)

    def close(self) -> None:
        """Close the connection politely (the next ``send`` opens another)."""
        with self._lock:
            self._drop(wait=1.0)

    def _drop(self, wait: float = 0.0) -> None:
        """Forget the connection: close it, waiting at most ``wait`` seconds for the broker's
        answer, then cut the socket."""
        conn, self._conn, self._channel = self._conn, None, None
        self._blocked, self._conn_error, self._channel_error = False, None, None
        if conn is None:
            return
        try:
            if not (conn.is_closed or conn.is_closing):
                conn.close()
            end = time.monotonic() + wait
            while not conn.is_closed and time.monotonic() < end:
                self._spin(conn, end - time.monotonic())
            if not conn.is_closed:
                conn._adapter_disconnect_stream()  # pika's only way to cut the socket at once
                self._spin(conn, 0)
                self._spin(conn, 0)
        except Exception:  # noqa: S110 - a connection being dropped may fail in any way
            pass
        finally:
            with contextlib.suppress(Exception):
                conn.ioloop.close()

    def _safe(self, text: str) -> str:
        """A broker's reply text, shortened, with the username and password blanked out."""
        for secret, mask in (
            (self.address.password, "<password>"),
            (self.address.username, "<user>"),
        ):
            if secret:
                text = text.replace(secret, mask)
        return text[:200]
