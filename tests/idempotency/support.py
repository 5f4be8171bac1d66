"""Helpers shared by the idempotency tests: Redis availability, clocks, faulty servers."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

from axn_bind.idempotency import IdempotencyStore

ENV_URL = "AXN_TEST_REDIS_URL"


def redis_test_url() -> str | None:
    """The Redis a developer named for the tests (``AXN_TEST_REDIS_URL``), in the database of
    this test process: under pytest-xdist, worker N uses the named database plus N, so that
    workers never flush each other's records. None when no URL is set: the tests then start a
    redis-server of their own (tests/conftest.py)."""
    url = os.environ.get(ENV_URL)
    if not url:
        return None
    return worker_database(url, os.environ.get("PYTEST_XDIST_WORKER", ""))


def worker_database(url: str, worker: str) -> str:
    """``url`` moved to the database of xdist ``worker`` (``gw0``: the named one, ``gw1``: the
    next, …); unchanged outside xdist."""
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if path and not path.isdigit():
        pytest.fail(f"{ENV_URL} must end in a database number, such as /13", pytrace=False)
    database = int(path or 0) + int(worker[2:])
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextlib.contextmanager
def exclusive_database(url: str, timeout: float = 120.0) -> Iterator[None]:
    """Hold a per-database lock file while a test uses (and flushes) the test Redis database.

    Two test sessions on one machine (a second venv, an editor's test runner) would otherwise
    flush each other's records mid-test. Test by test, they now take turns.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    parts = urlsplit(url)
    name = hashlib.sha256(f"{parts.hostname}:{parts.port}{parts.path}".encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"axn-idempotency-redis-{name}.lock")
    with open(path, "a+b") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Another test session held {path} for {timeout:g} s.")
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def redis_unavailable(url: str | None, reason: str) -> NoReturn:
    """Skip (locally) or fail (under CI=true) because the test Redis cannot be used: ``url`` is
    the one AXN_TEST_REDIS_URL named (the hint names its host and port), or None when none was
    set and no redis-server could be started."""
    if url is None:
        message = (
            f"No Redis for the tests ({reason}). Install redis-server (Debian/Ubuntu: "
            "apt-get install redis-server; macOS: brew install redis): the tests start one of "
            f"their own on a free port. Or set {ENV_URL}=redis://HOST:PORT/DB to use a server "
            "you run (only that database is used, and it is flushed)."
        )
    else:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        message = (
            f"Redis is not reachable at {host}:{port} ({reason}), the server {ENV_URL} names. "
            f"Start one with: redis-server --port {port}  "
            f"(or unset {ENV_URL}: with redis-server installed, the tests start their own)."
        )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} CI=true: the Redis tests must run, not skip.", pytrace=False)
    pytest.skip(message)


@dataclass
class FakeClock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """A store plus a way to let time pass for it (a fake clock, or real time for Redis)."""

    name: str
    store: IdempotencyStore
    wait: Callable[[float], None]
    now: Callable[[], float]


class DropReplyProxy:
    """A TCP proxy in front of Redis that can lose one reply: the command runs, the client
    never hears back and sees the connection close (what a network blip or a frozen FC instance
    does). ``drop_next_reply()`` arms it for the next reply on any connection."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed = threading.Event()
        self.dropped = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def drop_next_reply(self) -> None:
        self._armed.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_RDWR)

    def _replies(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                if self._armed.is_set():
                    self._armed.clear()
                    self.dropped += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


class SilentServer:
    """Accepts connections and never answers: every command times out."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()
