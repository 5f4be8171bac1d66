"""Shared fixtures: a real Dyplsapi emulator on loopback, the function pointed at it, and a real
Redis.

The Redis tests use a redis-server of their own: one per test session (one per pytest-xdist
worker), started on a free loopback port in a temporary directory and configured as production
should be (AOF on, noeviction), so that a developer's Redis is never touched and no test depends
on how it is configured. ``AXN_TEST_REDIS_URL=redis://HOST:PORT/DB`` uses that server instead
(only database DB, DB+1, … one per xdist worker, each flushed before every test; never a
server-wide command). A test that needs a server-wide setting (a durability configuration, the
script cache) starts servers of its own (``redis_processes``). With neither redis-server nor
the variable, the Redis tests skip with what to install or set, except under ``CI=true``, where
they fail: CI must never pass by skipping the store that guards against double bindings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from axn_bind import app, config
from axn_bind.errors import TransientFailureError
from tests.idempotency.support import exclusive_database, redis_test_url, redis_unavailable
from tests.privacy import PrivacyScan
from tests.redisproc import RedisProcesses
from tools.dypls_emulator import Emulator
from tools.fc_local import FcContext, http_event, local_env
from tools.redis_server import RedisServer, RedisServerError

# The session's own Redis: AOF on and noeviction, so that the function's durability check passes
# as on a production store. appendfsync everysec, not always: it is thrown away after the run,
# and an fsync per write would only slow the suite down.
SESSION_REDIS = (
    "--maxmemory-policy", "noeviction", "--appendonly", "yes", "--appendfsync", "everysec",
    "--save", "",
)  # fmt: skip

CONFIG_VARS = tuple(config.SETTINGS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the shared test Redis is marked ``redis`` (``pytest -m redis`` runs them
    all; the parametrized store fixtures mark their Redis cases themselves)."""
    for item in items:
        if {"redis_url", "redis_server"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


@pytest.fixture(autouse=True)
def privacy_scan(monkeypatch) -> Iterator[PrivacyScan]:
    """Every test runs with every logger at DEBUG; its log lines, answers and redelivery
    messages must hold no secret and no unmasked phone number (see tests/privacy.py)."""
    scan = PrivacyScan()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(scan)
    monkeypatch.setenv("AXN_LOG_LEVEL", "DEBUG")
    handle = app.handle

    def scanned(event: Any, context: Any) -> Any:
        scan.note_invocation(context)
        try:
            answer = handle(event, context)
        except TransientFailureError as exc:
            scan.note_answer(str(exc))
            raise
        scan.note_answer(answer)
        return answer

    monkeypatch.setattr(app, "handle", scanned)
    try:
        yield scan
    finally:
        root.removeHandler(scan)
        root.setLevel(level)
    problems = scan.problems()
    assert not problems, "privacy scan:\n" + "\n".join(problems[:10])


@pytest.fixture(scope="session")
def emulator():
    with Emulator(host="127.0.0.1", port=0) as emu:
        yield emu


@pytest.fixture
def env(emulator, monkeypatch):
    """The function configured against a clean emulator; returns a setter for more variables."""
    for name in CONFIG_VARS:
        if name != "AXN_LOG_LEVEL":  # DEBUG, set by privacy_scan
            monkeypatch.delenv(name, raising=False)
    for name, value in local_env(emulator.url).items():
        monkeypatch.setenv(name, value)
    # Fast retries: the policy is the same, only the waits are shorter.
    monkeypatch.setenv("DYPLS_BACKOFF_BASE_MS", "10")
    monkeypatch.setenv("DYPLS_BACKOFF_MAX_MS", "50")
    # AXN_TEST_REDIS_URL may name a Redis that keeps nothing on disk: the function only warns
    # about it here. tests/idempotency/test_redis_durability.py checks, on servers of its own,
    # that such a store is refused by default.
    monkeypatch.setenv("AXN_STORE_DURABILITY", "warn")
    # A request an earlier test left in a delay fault must not land in this test's emulator.
    assert emulator.wait_idle(), "the emulator is still busy with an earlier test's request"
    emulator.reset()
    config.reset_settings()
    app.reset()

    def setenv(**values: str) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        config.reset_settings()
        app.reset()

    yield setenv
    config.reset_settings()
    app.reset()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test Redis URL, once it has answered a PING: AXN_TEST_REDIS_URL (this worker's
    database of it), else a durable redis-server of this session's own."""
    import redis

    named = redis_test_url()
    if named is not None:
        client = redis.Redis.from_url(named, socket_connect_timeout=0.5, socket_timeout=2)
        try:
            client.ping()
        except redis.RedisError as exc:
            redis_unavailable(named, type(exc).__name__)
        finally:
            client.close()
        yield named
        return
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis"), SESSION_REDIS)
    except RedisServerError:  # no redis-server binary
        redis_unavailable(None, "redis-server is not on PATH")
    try:
        server.start()
    except RedisServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.url()
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The test Redis URL with its database emptied, held by this test alone."""
    import redis

    with exclusive_database(redis_server):
        client = redis.Redis.from_url(redis_server)
        try:
            client.flushdb()
        finally:
            client.close()
        yield redis_server


@pytest.fixture
def redis_processes(tmp_path) -> Iterator[RedisProcesses]:
    """Start redis-server processes of the test's own; all are killed afterwards."""
    servers = RedisProcesses(tmp_path)
    try:
        yield servers
    finally:
        servers.close()


def call(event: bytes | dict[str, Any] | list[Any], context: FcContext | None = None) -> Any:
    """Invoke the handler as FC does: bytes in, whatever it returns out."""
    from index import handler

    if isinstance(event, (dict, list)):
        event = json.dumps(event, ensure_ascii=False).encode()
    return handler(event, context or FcContext())


def post(body: Any = None, **kw: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST through an FC 3.0 HTTP trigger event; returns (status, headers, parsed JSON body)."""
    method = kw.pop("method", "POST")
    context = kw.pop("context", None)
    response = call(http_event(method, body, **kw), context)
    assert set(response) == {"statusCode", "headers", "isBase64Encoded", "body"}
    assert response["isBase64Encoded"] is False
    return response["statusCode"], response["headers"], json.loads(response["body"])
