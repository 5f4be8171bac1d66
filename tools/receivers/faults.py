"""Answers that misbehave on purpose, written straight to a receiver's socket: what a slow or
hostile endpoint can do to a client that waits for its answer and reads it.

    m = rx.misbehave("drip")       # any receiver here: its next request gets this answer
    ...
    m.written                      # bytes of the answer written before the client went away
    m.outcome                      # "client went away", "complete" or "stopped"

Kinds (``interval`` in seconds, ``size`` in bytes):

- ``drip``: the status line and headers at once, then a body of ``size`` bytes (default 64), one
  byte every ``interval``: each read gets something well within any per-read timeout;
- ``drip-status``: the whole answer, status line first, one byte every ``interval``;
- ``flood``: 200 with ``Content-Length: size`` (default 800 MiB) and that many bytes;
- ``flood-chunked``: 200, chunked, 64 KiB chunks and never the last one (``size`` at most);
- ``gzip-bomb``: 200 with ``Content-Encoding: gzip, gzip`` and a body of about 10 KB that
  inflates to 4 GiB (gzip members of zeros, gzipped again), whatever the request asked for.

The floods are written from one 64 KiB buffer, so the receiver itself stays small.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler

KiB = 1024
MiB = 1024 * KiB
BLOCK = bytes(64 * KiB)
KINDS = ("drip", "drip-status", "flood", "flood-chunked", "gzip-bomb")


@cache
def gzip_bomb() -> bytes:
    """About 10 KB that inflate (twice) to 4 GiB of zeros: 4096 gzip members of 1 MiB each,
    concatenated (which gzip allows), then gzipped again."""
    member = gzip.compress(bytes(MiB), 9, mtime=0)
    return gzip.compress(member * 4096, 9, mtime=0)


def head(status: int, *fields: str) -> bytes:
    lines = [f"HTTP/1.1 {status} Scripted", "Content-Type: application/json", *fields]
    return ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode()


@dataclass
class Misbehaviour:
    kind: str
    interval: float = 0.5
    size: int | None = None
    status: int = 200
    written: int = 0  # bytes of the answer written before the client went away
    outcome: str = ""
    seconds: float = 0.0  # how long the answer was being written
    ended: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.kind!r} is not one of {KINDS}")

    def play(self, sock: socket.socket, stop: threading.Event) -> None:
        """Write the answer to ``sock`` until it is complete, the client goes away or ``stop``
        is set; record what was written."""
        started = time.monotonic()
        try:
            self._play(sock, stop)
            self.outcome = "stopped" if stop.is_set() else "complete"
        except OSError:  # a broken pipe or a reset: the client closed the connection
            self.outcome = "client went away"
        finally:
            self.seconds = time.monotonic() - started
            self.ended.set()

    def _write(self, sock: socket.socket, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            sent = sock.send(view)
            self.written += sent
            view = view[sent:]

    def _drip(self, sock: socket.socket, data: bytes, stop: threading.Event) -> None:
        for index in range(len(data)):
            if index and stop.wait(self.interval):
                return
            self._write(sock, data[index : index + 1])

    def _play(self, sock: socket.socket, stop: threading.Event) -> None:
        if self.kind == "drip":
            size = 64 if self.size is None else self.size
            self._write(sock, head(self.status, f"Content-Length: {size}"))
            stop.wait(self.interval)
            self._drip(sock, b" " * size, stop)
        elif self.kind == "drip-status":
            size = 8 if self.size is None else self.size
            self._drip(sock, head(self.status, f"Content-Length: {size}") + b" " * size, stop)
        elif self.kind == "flood":
            size = 800 * MiB if self.size is None else self.size
            self._write(sock, head(self.status, f"Content-Length: {size}"))
            left = size
            while left > 0 and not stop.is_set():
                piece = memoryview(BLOCK)[: min(left, len(BLOCK))]
                self._write(sock, piece)
                left -= len(piece)
        elif self.kind == "flood-chunked":
            size = 800 * MiB if self.size is None else self.size
            self._write(sock, head(self.status, "Transfer-Encoding: chunked"))
            chunk = f"{len(BLOCK):x}\r\n".encode() + BLOCK + b"\r\n"
            sent = 0
            while sent < size and not stop.is_set():
                self._write(sock, chunk)
                sent += len(BLOCK)
        else:
            body = gzip_bomb()
            fields = ("Content-Encoding: gzip, gzip", f"Content-Length: {len(body)}")
            self._write(sock, head(self.status, *fields) + body)


class Misbehaving:
    """Mixed into a receiver: ``misbehave(kind, …)`` scripts the answer to its next request (the
    request is still checked and recorded as usual; only the answer is replaced)."""

    lock: threading.Lock

    def __init__(self) -> None:
        self.misbehaviours: list[Misbehaviour] = []
        self.stopping = threading.Event()  # set when the receiver stops: a drip ends then

    def misbehave(self, kind: str, **options: float | int) -> Misbehaviour:
        """Answer the next request with ``kind`` (see :mod:`tools.receivers.faults`)."""
        misbehaviour = Misbehaviour(kind, **options)  # type: ignore[arg-type]
        with self.lock:
            self.misbehaviours.append(misbehaviour)
        return misbehaviour

    def misbehaved(self, handler: BaseHTTPRequestHandler) -> bool:
        """Play the next scripted answer on ``handler``'s connection, if there is one; True when
        it did (the handler then writes nothing of its own)."""
        with self.lock:
            misbehaviour = self.misbehaviours.pop(0) if self.misbehaviours else None
        if misbehaviour is None:
            return False
        handler.close_connection = True
        misbehaviour.play(handler.connection, self.stopping)
        return True
