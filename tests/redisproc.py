"""redis-server processes of a test's own, on free loopback ports with their own directories
(never the shared test Redis), killed on teardown. Without a ``redis-server`` binary the tests
that use them skip, except under ``CI=true``, where they fail."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# DURABLE (tools/redis_server.py): appendfsync always, so that a crash right after a write loses
# nothing. (With the default everysec, Redis may hold a write back for up to 2 s while an fsync is
# slow, and a crash in that window loses it; the README names that window.)
from tools.redis_server import DURABLE, RedisServer, RedisServerError

__all__ = ["DURABLE", "MEMORY_ONLY", "RedisProcess", "RedisProcesses", "redis_server_binary"]

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


class RedisProcess(RedisServer):
    """One redis-server on 127.0.0.1 with its own directory (tools/redis_server.py); a server
    that does not start fails the test."""

    def __init__(self, binary: str, directory: Path, args: tuple[str, ...]) -> None:
        super().__init__(directory, args, binary)

    def start(self, timeout: float = 5.0) -> None:
        try:
            super().start(timeout)
        except RedisServerError as exc:
            pytest.fail(str(exc))


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
