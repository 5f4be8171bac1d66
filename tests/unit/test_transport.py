"""The transport against real sockets: how far an exchange got decides whether it may be retried.

Time is an injected clock, so the tests prove *why* an exchange ended (the deadline passed on the
clock it was given) without depending on how fast this machine is.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc

from axn_bind.dypls.classify import classify
from axn_bind.dypls.transport import MAX_ANSWER, Answered, NoAnswer, NotSent, Transport
from axn_bind.errors import Kind
from tests.rawserver import OK_JSON, RawServer, http_answer, read_request
from tools.receivers.faults import MiB, Misbehaviour, gzip_bomb


class TickingClock:
    """Advances by ``step`` seconds every time it is read."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.now += self.step
            return self.now


def send(transport: Transport, url: str, *, read_timeout: float = 5.0, within: float = 5.0):
    return transport.send(
        url + "/?Action=x",
        {"content-type": "application/json"},
        b"",
        connect_timeout=2.0,
        read_timeout=read_timeout,
        end=transport.clock() + within,
    )


def test_a_complete_answer_is_answered():
    with RawServer(lambda conn, _: (read_request(conn), conn.sendall(http_answer()))) as server:
        result = send(Transport(), server.url)
    assert isinstance(result, Answered)
    assert (result.status, result.body) == (200, OK_JSON)


def test_a_dripping_answer_is_cut_at_the_deadline_not_per_read():
    sent: list[int] = []

    def drip(conn: socket.socket, _: int) -> None:
        read_request(conn)
        body = b" " * 400
        conn.sendall(http_answer(body)[: -len(body)])  # status and headers at once
        for count in range(len(body)):
            conn.sendall(b" ")  # then one byte at a time, each well within any read timeout
            sent.append(count + 1)
            threading.Event().wait(0.01)

    clock = TickingClock(step=0.25)  # each read of the clock is a quarter second later
    with RawServer(drip) as server:
        result = send(Transport(clock=clock), server.url, read_timeout=30, within=3.0)
        threading.Event().wait(0.1)
    assert isinstance(result, NoAnswer) and result.timed_out
    assert sent and sent[-1] < 400  # the client hung up long before the answer was complete


def test_an_answer_that_never_comes_ends_at_the_read_timeout_after_sending():
    with RawServer(lambda conn, _: (read_request(conn), threading.Event().wait(2))) as server:
        result = send(Transport(), server.url, read_timeout=0.2)
    assert isinstance(result, NoAnswer) and result.timed_out


def test_a_silent_server_is_left_at_the_exchange_end_not_after_the_read_timeout():
    """The socket waits only until the exchange's end, even when the read timeout is longer."""

    def late(conn: socket.socket, _: int) -> None:
        read_request(conn)
        threading.Event().wait(1.5)  # past the exchange's end, well within the read timeout
        conn.sendall(http_answer())

    with RawServer(late) as server:
        result = send(Transport(), server.url, read_timeout=30, within=0.3)
    assert isinstance(result, NoAnswer) and result.timed_out  # not the answer sent at 1.5 s


def test_a_connection_closed_after_the_request_was_read_is_no_answer():
    with RawServer(lambda conn, _: read_request(conn)) as server:  # reads, then closes
        result = send(Transport(), server.url)
    assert isinstance(result, NoAnswer) and not result.timed_out


def test_connection_refused_is_not_sent():
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    result = send(Transport(), f"http://127.0.0.1:{port}")
    assert result == NotSent("connection refused")


def test_a_failed_tls_handshake_is_not_sent():
    def not_tls(conn: socket.socket, _: int) -> None:
        conn.recv(4096)  # the ClientHello
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is no TLS server\r\n")

    with RawServer(not_tls) as server:
        result = send(Transport(), f"https://127.0.0.1:{server.port}")
    assert result == NotSent("TLS handshake failed")


def stale_after_first(conn: socket.socket, index: int) -> None:
    """Connection 0 answers once, then swallows the next request (a connection that died while
    the instance was frozen); any later connection answers."""
    read_request(conn)
    conn.sendall(http_answer())
    if index == 0:
        read_request(conn)  # read, never answered: the request went into a dead connection
        return
    read_request(conn)


def test_a_pooled_connection_idle_for_long_is_not_reused():
    clock = TickingClock()
    with RawServer(stale_after_first) as server:
        transport = Transport(clock=clock)
        assert isinstance(send(transport, server.url), Answered)
        clock.now += 10  # the instance was frozen between two invocations
        second = send(transport, server.url)
    assert isinstance(second, Answered)  # sent on a fresh connection
    assert server.connections == 2


def test_a_recently_used_connection_is_reused():
    # The counterpart of the test above, showing what reusing a dead connection costs: the
    # request is sent and never answered, an unknown outcome.
    clock = TickingClock()
    with RawServer(stale_after_first) as server:
        transport = Transport(clock=clock)
        assert isinstance(send(transport, server.url), Answered)
        clock.now += 1
        second = send(transport, server.url)
    assert isinstance(second, NoAnswer)
    assert server.connections == 1


def test_no_time_left_sends_nothing():
    with RawServer(lambda conn, _: read_request(conn)) as server:
        transport = Transport()
        result = send(transport, server.url, within=0)
    assert isinstance(result, NotSent)
    assert server.connections == 0


def test_urllib3_never_resends_on_its_own():
    """Only the retry policy decides what is sent again: the pool's own retries are off."""
    transport = Transport()
    with RawServer(lambda conn, _: None) as server:  # accepts, then closes without a word
        result = send(transport, server.url)
        threading.Event().wait(0.1)
    assert isinstance(result, NoAnswer)
    assert server.connections == 1


def test_proxy_settings_in_the_environment_are_not_followed(monkeypatch):
    """The data path goes straight to Dyplsapi: no proxy from the environment sees it."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")  # a proxy that refuses everything
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with RawServer(lambda conn, _: (read_request(conn), conn.sendall(http_answer()))) as server:
        result = send(Transport(), server.url)
    assert isinstance(result, Answered)


def test_preconnect_leaves_a_ready_connection_that_the_first_call_uses():
    """The initializer connects ahead of time: the first call finds the connection in the pool
    and makes no handshake of its own."""
    with RawServer(lambda conn, _: (read_request(conn), conn.sendall(http_answer()))) as server:
        transport = Transport()
        assert transport.preconnect(server.url + "/", timeout=1) is None
        threading.Event().wait(0.05)
        assert server.connections == 1
        assert isinstance(send(transport, server.url), Answered)
    assert server.connections == 1


def test_preconnect_to_nothing_reports_why_and_sends_nothing():
    transport = Transport()
    assert transport.preconnect("http://127.0.0.1:9/", timeout=1) == "connection refused"
    assert isinstance(send(transport, "http://127.0.0.1:9"), NotSent)


def test_an_answer_that_closes_its_connection_is_read_to_its_end():
    """``Connection: close`` (or HTTP/1.0) with the body in a later packet: the connection lets go
    of its socket once the headers are read, and the body must still arrive whole."""

    def closing(conn: socket.socket, _: int) -> None:
        read_request(conn)
        answer = http_answer(close=True)
        conn.sendall(answer[: -len(OK_JSON)])
        threading.Event().wait(0.05)
        conn.sendall(OK_JSON)

    with RawServer(closing) as server:
        transport = Transport()
        first, second = send(transport, server.url), send(transport, server.url)
    assert first == second
    assert isinstance(first, Answered) and first.body == OK_JSON
    assert server.connections == 2


def measured(call):
    """``call()``, its seconds, and the peak of Python memory it allocated, in bytes."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = call()
    finally:
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, seconds, peak


def misbehaving_then_answering(misbehaviour: Misbehaviour, stop: threading.Event):
    """Connection 0 gets ``misbehaviour``; any later one a normal answer."""

    def serve(conn: socket.socket, index: int) -> None:
        read_request(conn)
        if index == 0:
            misbehaviour.play(conn, stop)
        else:
            conn.sendall(http_answer())

    return serve


def test_an_answer_over_the_size_limit_is_cut_as_no_answer_and_its_connection_not_reused():
    """A Dyplsapi-style call answered 200 with an 800 MiB body: cut at 64 KiB without reserving
    the body's size, judged like a connection that broke after the request was sent (a binding
    may exist), and the next call gets a fresh connection."""
    flood, stop = Misbehaviour("flood"), threading.Event()
    with RawServer(misbehaving_then_answering(flood, stop)) as server:
        transport = Transport()
        result, seconds, peak = measured(lambda: send(transport, server.url))
        flood.ended.wait(5)
        after = send(transport, server.url)
        stop.set()
    assert result == NoAnswer("answer cut at 64 KiB", timed_out=False)
    verdict = classify(result)
    assert (verdict.kind, verdict.code, verdict.retry) == (
        Kind.UNKNOWN,
        "UpstreamConnectionLost",
        False,
    )
    assert "may or may not exist" in verdict.message
    assert seconds < 2 and peak < 2 * MiB
    assert flood.outcome == "client went away" and flood.written < 64 * MiB  # of 800 MiB
    assert isinstance(after, Answered) and server.connections == 2


def test_a_chunked_answer_without_end_is_cut_at_the_size_limit():
    flood, stop = Misbehaviour("flood-chunked"), threading.Event()
    with RawServer(misbehaving_then_answering(flood, stop)) as server:
        result, seconds, peak = measured(lambda: send(Transport(), server.url))
        flood.ended.wait(5)
        stop.set()
    assert result == NoAnswer("answer cut at 64 KiB", timed_out=False)
    assert seconds < 2 and peak < 2 * MiB
    assert flood.outcome == "client went away" and flood.written < 64 * MiB


def test_the_size_limit_counts_the_whole_answer_to_the_byte():
    answer = http_answer(b"x" * 60_000, close=True)  # each call on a connection of its own
    with RawServer(lambda conn, _: (read_request(conn), conn.sendall(answer))) as server:
        transport = Transport()

        def call(limit: int):
            return transport.send(
                server.url + "/", {}, b"", connect_timeout=2, read_timeout=5,
                end=transport.clock() + 5, max_answer=limit,
            )  # fmt: skip

        fits, over = call(len(answer)), call(len(answer) - 1)
    assert isinstance(fits, Answered) and fits.body == b"x" * 60_000
    assert over == NoAnswer(f"answer cut at {len(answer) - 1} bytes", timed_out=False)
    assert len(answer) < MAX_ANSWER  # an answer this size passes by default


def test_a_compressed_answer_is_read_as_it_came_not_inflated():
    """The request asks for identity; an answer gzipped (twice) anyway, 10 KB that would inflate
    to 4 GiB, is taken as the bytes that came."""
    bomb, stop = Misbehaviour("gzip-bomb"), threading.Event()
    requests: list[bytes] = []

    def serve(conn: socket.socket, _: int) -> None:
        requests.append(read_request(conn))
        bomb.play(conn, stop)

    gzip_bomb()  # made before the measure
    with RawServer(serve) as server:
        result, seconds, peak = measured(lambda: send(Transport(), server.url))
    assert b"\r\nAccept-Encoding: identity\r\n" in requests[0]
    assert isinstance(result, Answered) and result.body == gzip_bomb()
    assert result.headers["content-encoding"] == "gzip, gzip"
    assert seconds < 2 and peak < 2 * MiB
