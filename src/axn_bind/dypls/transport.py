"""Sending one signed request and telling exactly how far it got.

An exchange ends in one of three ways, and the difference decides whether a retry is safe:

- :class:`Answered`: a complete HTTP answer arrived (any status, any body);
- :class:`NotSent`: it failed before any byte of the request left this process (DNS, refused,
  connect timeout, a TLS handshake that failed): nothing can have been bound;
- :class:`NoAnswer`: the request was sent, then the connection broke or the time ran out before
  the whole answer arrived: a binding may exist.

The stage is tracked by the connection itself (connect → sent), not guessed from exception
types. The exchange's end is a **total** limit: every socket read waits at most until then, so
an answer that drips in slowly is cut at the deadline rather than each read getting a fresh
timeout. The answer is bounded in size too: at most ``max_answer`` bytes of it (status line,
headers and body as they arrive; 64 KiB unless told) are read, and one that would pass that is
cut and its connection closed: NoAnswer, as when the connection breaks. Nor is it decompressed:
the request asks for ``Accept-Encoding: identity`` (http.client's default), so a compressed
answer is one nobody asked for, taken as the bytes that came.

Pooled connections idle for longer than ``idle_seconds`` are closed before reuse: a keep-alive
connection left over from before FC froze the instance may be dead without either side knowing,
and a request written into it would end as an unknown outcome.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

# The deployed package leaves out charset_normalizer (tools/package.py, LEFT_OUT): requests
# would only use it to guess the encoding of Response.text, which this client never reads. The
# one warning requests gives at import when it is missing is expected, not news for the logs.
warnings.filterwarnings(
    "ignore", "Unable to find acceptable character detection dependency", module="requests"
)

import requests  # noqa: E402 - after the filter
from requests.adapters import HTTPAdapter  # noqa: E402
from urllib3.connection import HTTPConnection, HTTPSConnection  # noqa: E402
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool  # noqa: E402
from urllib3.util import Timeout  # noqa: E402

IDLE_SECONDS = 4.0  # pooled connections idle longer than this are not reused
# The most of an answer that is read: a Dyplsapi answer (JSON of a few hundred bytes, headers of
# about as many) or a publish target's (a status, a few headers, a short error body) is far
# below it; a receiver that sends more cannot hold the function's memory.
MAX_ANSWER = 64 * 1024
_BUFFER = io.DEFAULT_BUFFER_SIZE  # what the reader may hold ahead of what was asked for
USER_AGENT = "axn-bind (python-requests)"
NOT_STARTED, CONNECTING, CONNECTED, SENT = "not started", "connecting", "connected", "sent"


class Answered(NamedTuple):
    """A complete HTTP answer: any status, any body."""

    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class NotSent(NamedTuple):
    """Nothing of the request left this process: nothing can have been bound."""

    reason: str  # what failed, e.g. "connection refused", "TLS handshake failed"


class NoAnswer(NamedTuple):
    """The request was sent, and no complete answer came back: a binding may exist."""

    reason: str
    timed_out: bool  # the deadline or the read timeout ended it (else the connection broke)


Exchange = Answered | NotSent | NoAnswer


class _Progress(threading.local):
    """What the connection serving this thread's current exchange has done so far."""

    stage: str = NOT_STARTED
    end: float = float("inf")
    read_timeout: float = float("inf")
    clock: Callable[[], float] = time.monotonic
    connection: Any = None
    room: float = float("inf")  # bytes of the answer that may still be read (< 0: it was cut)


_progress = _Progress()


class _TooLarge(OSError):
    """The answer passed the exchange's size limit."""


def _cut() -> OSError:
    _progress.room = -1
    return _TooLarge("the answer passed its size limit")


class _DeadlineReader(io.RawIOBase):
    """Socket reads that never wait past the exchange's end, nor read past its size limit.

    It holds the socket open as the reader socket.makefile() gives http.client does: an answer
    that closes its connection (``Connection: close``, HTTP/1.0) gets its socket closed by the
    connection as soon as the headers are read, and the body must still be readable. (A plain
    RawIOBase rather than socket.SocketIO: a microsecond less on every call.)"""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        sock._io_refs += 1  # type: ignore[attr-defined] # the socket closes after this does

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock._decref_socketios()  # type: ignore[attr-defined]

    def readinto(self, buffer: Any) -> int:
        left = _progress.end - _progress.clock()
        if left <= 0:
            raise TimeoutError("the exchange's deadline passed")
        self._sock.settimeout(min(left, 3600.0))
        count = self._sock.recv_into(buffer)
        room = _progress.room - count
        if room < 0:
            raise _cut()
        _progress.room = room
        return count


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp.close()  # the plain makefile() reader; replaced by one that keeps the deadline
        self.fp = io.BufferedReader(_DeadlineReader(sock))

    def _safe_read(self, amt: int) -> bytes:
        # A body (or chunk) of ``amt`` bytes is read into one buffer of that size, allocated
        # first: one that cannot fit is cut before that, not after 800 MiB were reserved.
        if amt > _progress.room + _BUFFER:
            raise _cut()
        return super()._safe_read(amt)


class _Tracked:
    """Mixed into urllib3's connections: records the stage and the last use."""

    response_class = _DeadlineResponse
    last_used: float = 0.0

    def connect(self) -> None:
        _progress.stage = CONNECTING
        _progress.connection = self
        super().connect()  # type: ignore[misc]
        _progress.stage = CONNECTED

    def send(self, data: Any) -> None:
        if self.sock is None:  # type: ignore[attr-defined]
            self.connect()
        if _progress.stage != SENT:  # the answer is awaited at most read_timeout from here
            _progress.stage = SENT
            _progress.end = min(_progress.end, _progress.clock() + _progress.read_timeout)
        _progress.connection = self
        super().send(data)  # type: ignore[misc]


class _HTTPConnection(_Tracked, HTTPConnection):
    pass


class _HTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _Retiring:
    """Mixed into urllib3's pools: a connection idle for too long is closed, not reused."""

    idle_seconds = IDLE_SECONDS

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        if conn.sock is not None and _progress.clock() - conn.last_used > self.idle_seconds:
            conn.close()
        return conn


class _HTTPPool(_Retiring, HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_Retiring, HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def __init__(self, idle_seconds: float, **kwargs: Any) -> None:
        self._idle_seconds = idle_seconds
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        idle = self._idle_seconds
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("Pool", (_HTTPPool,), {"idle_seconds": idle}),
            "https": type("Pool", (_HTTPSPool,), {"idle_seconds": idle}),
        }


def _reason(exc: BaseException) -> str:
    """A short, fixed description of a transport failure (never the URL: it holds parameters)."""
    text = f"{type(exc).__name__} {exc}".lower()
    for needle, reason in (
        ("ssl", "TLS handshake failed"),
        ("certificate", "TLS handshake failed"),
        ("refused", "connection refused"),
        ("name resolution", "host name not resolved"),
        ("nodename", "host name not resolved"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("reset", "connection reset"),
        ("aborted", "connection aborted"),
        ("closed", "connection closed"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__


class Transport:
    """One requests ``HTTPAdapter`` per instance; :meth:`send` never raises for network trouble."""

    def __init__(
        self,
        *,
        pool_size: int = 4,
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        # requests' own transport: the adapter builds the connection pool (TLS verified against
        # certifi's CA bundle, as requests does) and the request goes to that pool's urlopen.
        # Session.send and HTTPAdapter.send would add about 0.3 ms per call on top (settings,
        # hooks and environment merged, the URL parsed again, a Response with its cookie jar
        # built, the body streamed through iter_content) for nothing this client uses; see the
        # README's performance section. No proxy or netrc from the environment either.
        self.adapter = _Adapter(idle_seconds, pool_maxsize=pool_size, max_retries=0)
        self._pools: dict[str, Any] = {}  # origin (scheme://host:port) -> its pool

    def _pool(self, origin: str) -> Any:
        pool = self._pools.get(origin)
        if pool is None:
            request = requests.PreparedRequest()
            request.method, request.url = "POST", origin + "/"
            pool = self.adapter.get_connection_with_tls_context(request, verify=True)
            self._pools[origin] = pool
        return pool

    def send(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
        end: float,
        max_answer: int = MAX_ANSWER,
    ) -> Exchange:
        """POST ``body`` to ``url``. Connecting may take ``connect_timeout``; once sent, the
        whole answer must arrive within ``read_timeout``; and all of it is over by ``end``
        (on ``clock``), whatever the server's pace. An answer longer than ``max_answer`` bytes
        (all of it, as it arrives) is cut: NoAnswer, since the request was sent."""
        progress = _progress
        progress.stage, progress.end, progress.clock = NOT_STARTED, end, self.clock
        progress.read_timeout, progress.room = read_timeout, max_answer
        progress.connection = None
        left = end - self.clock()
        if left <= 0:
            return NotSent("no time was left to send")
        origin, target = _split(url)
        sent_headers = {"User-Agent": USER_AGENT, **headers, "Content-Length": str(len(body))}
        try:
            response = self._pool(origin).urlopen(
                "POST",
                target,
                body=body,
                headers=sent_headers,
                retries=False,  # the client decides what is retried (dypls.retry)
                redirect=False,
                assert_same_host=False,
                timeout=Timeout(connect=min(connect_timeout, left), read=left),
                preload_content=True,  # the whole body, then the connection goes back
                decode_content=False,  # identity was asked for: no inflating a small body
            )
            answered = Answered(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.data,
            )
        except Exception as exc:  # every failure is classified by the stage it reached
            if progress.stage in (NOT_STARTED, CONNECTING):
                return NotSent(_reason(exc))
            if progress.room < 0:
                return NoAnswer(f"answer cut at {_size(max_answer)}", timed_out=False)
            reason = _reason(exc)
            return NoAnswer(reason, timed_out=reason == "timed out" or self.clock() >= end)
        finally:
            if progress.connection is not None:
                progress.connection.last_used = self.clock()
            progress.connection = None
        return answered

    def preconnect(self, url: str, timeout: float) -> str | None:
        """Open a connection to ``url``'s host (TCP and, for https, TLS) and leave it in the pool
        that :meth:`send` takes its connections from, so that the first call does not wait for
        the handshake. Sends nothing. Returns why it failed, or None."""
        try:
            pool = self._pool(_split(url)[0])
            conn = pool._get_conn()
            try:
                if conn.sock is None:
                    conn.timeout = timeout
                    conn.connect()
                conn.last_used = self.clock()
            finally:
                pool._put_conn(conn)
        except Exception as exc:  # the first call connects then, and says what failed
            return _reason(exc)
        finally:
            _progress.connection = None
        return None

    def close(self) -> None:
        self.adapter.close()
        self._pools.clear()


def _size(count: int) -> str:
    return f"{count // 1024} KiB" if count % 1024 == 0 else f"{count} bytes"


def _split(url: str) -> tuple[str, str]:
    """``https://host:port/path?query`` → (``https://host:port``, ``/path?query``)."""
    scheme, _, rest = url.partition("://")
    host, slash, target = rest.partition("/")
    return f"{scheme}://{host}", slash + target if slash else "/"
