"""A private redis-server process on a free loopback port with its own directory, for local tools
(``make loadfault``). It can be crashed (SIGKILL) and started again on the same port and
directory, which is what a restart of the instance looks like to the function.

The test suite uses it too (``tests/redisproc.py`` adds pytest's skip and fail); it needs only
the standard library and a ``redis-server`` binary on PATH.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

# Records survive a crash: AOF with an fsync after every write, and no eviction (what the
# function's durability check, AXN_STORE_DURABILITY=enforce, asks of a Redis store).
DURABLE = (
    "--maxmemory-policy", "noeviction", "--appendonly", "yes", "--appendfsync", "always",
    "--save", "",
)  # fmt: skip


class RedisServerError(RuntimeError):
    """redis-server is missing, or did not start."""


def redis_server_binary() -> str:
    """The redis-server binary on PATH; raises RedisServerError naming how to get one."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerError(
            "redis-server is not on PATH; install it (e.g. apt-get install redis-server)."
        )
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server on 127.0.0.1 in ``directory``; ``start`` after ``crash`` reuses the port
    and the directory (so the AOF written before the crash is read back)."""

    def __init__(
        self, directory: Path, args: tuple[str, ...] = DURABLE, binary: str | None = None
    ) -> None:
        self.binary = binary or redis_server_binary()
        self.directory = directory
        self.args = args
        self.port = free_port()
        self.log = directory / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, password: str | None = None) -> str:
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING (an AOF still loading does not)."""
        if self.proc is not None:
            raise RedisServerError("redis-server is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(  # noqa: S603 - the redis-server binary found on PATH
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--logfile", str(self.log), "--daemonize", "no",
             *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
                raise RedisServerError(f"redis-server on port {self.port} did not start:\n{tail}")
            time.sleep(0.01)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                reply = conn.recv(64)
        except OSError:
            return False
        # +PONG, or -NOAUTH from a server with a password: up. -LOADING: still reading its AOF.
        return bool(reply) and not reply.startswith(b"-LOADING")

    def crash(self) -> None:
        """SIGKILL: no shutdown and no final save; only what reached the disk survives."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown, which saves only what the configuration says to save."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            raise RedisServerError("redis-server is not running")
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """Stop the server if it runs (SIGKILL); safe to call twice."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
