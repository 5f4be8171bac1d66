"""redis-server processes of a test's own, on free loopback ports with their own directories
(never the shared test Redis), killed on teardown. Without a ``redis-server`` binary the tests
that use them skip, except under ``CI=true``, where they fail."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

# appendfsync always: a crash right after a write must not lose it. (With the default everysec,
# Redis may hold a write back for up to 2 s while an fsync is slow, and a crash in that window
# loses it; the README names that window.)
DURABLE = (
    "--maxmemory-policy", "noeviction", "--appendonly", "yes", "--appendfsync", "always",
    "--save", "",
)  # fmt: skip
MEMORY_ONLY = ("--maxmemory-policy", "noeviction", "--appendonly", "no", "--save", "")


def redis_server_binary() -> str:
    """The redis-server binary; skips (locally) or fails (CI=true) without one."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = (
            "redis-server is not on PATH: these tests start their own servers "
            "(install it, e.g. apt-get install redis-server)."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} CI=true: they must run, not skip.", pytrace=False)
        pytest.skip(message)
    return binary


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisProcess:
    """One redis-server on 127.0.0.1 with its own directory; can be crashed and started again
    on the same port and directory, which is what a restart of the instance looks like."""

    def __init__(self, binary: str, directory: Path, args: tuple[str, ...]) -> None:
        self.binary = binary
        self.directory = directory
        self.args = args
        self.port = _free_port()
        self.log = directory / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, password: str | None = None) -> str:
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 5.0) -> None:
        """Start the server and wait until it answers (an AOF still loading does not count)."""
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
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
                pytest.fail(f"redis-server on port {self.port} did not start:\n{tail}")
            time.sleep(0.005)

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
        """SIGKILL: no shutdown, no final save; whatever is not on disk yet is lost."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown, which saves only what the configuration says to save."""
        self._signal(signal.SIGTERM)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None, "not running"
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


class RedisProcesses:
    """Starts RedisProcess servers for one test and kills them all afterwards."""

    def __init__(self, root: Path) -> None:
        self.binary = redis_server_binary()
        self.root = root
        self.servers: list[RedisProcess] = []

    def start(self, *args: str) -> RedisProcess:
        directory = self.root / f"redis-{len(self.servers)}"
        directory.mkdir()
        server = RedisProcess(self.binary, directory, args)
        self.servers.append(server)
        server.start()
        return server

    def close(self) -> None:
        for server in self.servers:
            server.kill()
