"""Choosing a backend from AXN_IDEMPOTENCY_URL, store keys, lazy imports, the memory backend."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from axn_bind.errors import ConfigurationError, Kind
from axn_bind.idempotency import MemoryStore, StoreUnavailableError, open_store, store_key
from tests.idempotency.support import FakeClock, redis_unavailable, worker_database

ROOT = Path(__file__).resolve().parents[2]

# -- open_store -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["", "   ", "memory://", "MEMORY://", "memory:///"])
def test_memory_urls(url: str) -> None:
    assert isinstance(open_store(url), MemoryStore)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://:s3cret@example.com/0", "must be memory://"),
        ("unix:///tmp/s3cret.sock", "must be memory://"),
        ("s3cret:x@host:6379", "must be memory://"),  # a password mistaken for a scheme
        ("s3cret", "must be memory://"),
        ("memory://s3cret@host", "memory:// takes no host"),
        ("redis://:s3cret@:6379/0", "must name the Redis host"),
        ("redis://:s3cret@host:port/0", "not a valid URL"),
        ("redis://:s3cret@host:99999/0", "not a valid URL"),
        ("redis://:s3cret@host:0/0", "port must be between"),
        ("redis://:s3cret@host:6379/zero", "database number"),
        ("redis://:s3cret@host:6379/0#s3cret", "fragment"),
        ("redis://:s3cret@host:6379/0?socket_timeout=soon", "socket_timeout"),
    ],
)
def test_bad_urls_are_configuration_errors_that_hide_the_value(url: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(url)
    error = caught.value
    assert words in error.message
    assert "AXN_IDEMPOTENCY_URL" in error.message
    assert "s3cret" not in error.message and "s3cret" not in repr(error)
    assert (error.status, error.kind) == (500, Kind.CONFIG)


def test_redis_urls_open_without_connecting() -> None:
    # Port 1 is closed: opening must not touch the network (cold start), the first use does.
    store = open_store("redis://:pw@127.0.0.1:1/3")
    kwargs = store._client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "127.0.0.1", 1, 3, "pw",
    )  # fmt: skip
    assert kwargs["socket_timeout"] == 1.0 and kwargs["socket_connect_timeout"] == 1.0
    assert kwargs["health_check_interval"] == 30
    with pytest.raises(StoreUnavailableError):
        store.get("k")


def test_rediss_uses_tls_and_url_options_reach_redis_py() -> None:
    store = open_store(
        "rediss://:acct%3Apw@r-bp1.redis.rds.aliyuncs.com:6380/0"
        "?ssl_ca_certs=/code/ApsaraDB-CA-Chain.pem&socket_timeout=2.5"
    )
    pool = store._client.connection_pool  # type: ignore[attr-defined]
    assert pool.connection_class.__name__ == "SSLConnection"
    kwargs = pool.connection_kwargs
    assert kwargs["password"] == "acct:pw"  # ApsaraDB's account:password form, %3A-escaped
    assert kwargs["ssl_ca_certs"] == "/code/ApsaraDB-CA-Chain.pem"
    assert kwargs["socket_timeout"] == 2.5
    assert store.where == "r-bp1.redis.rds.aliyuncs.com:6380"  # type: ignore[attr-defined]


def test_an_escaped_password_is_hidden_in_both_forms() -> None:
    store = open_store("redis://:s3cret%40x@127.0.0.1:1/0")
    with pytest.raises(StoreUnavailableError) as caught:
        store.clear("k")
    assert "s3cret" not in caught.value.message


def test_importing_the_package_or_using_memory_does_not_import_redis() -> None:
    code = (
        "import sys, json\n"
        "import axn_bind.idempotency as idem\n"
        "before = 'redis' in sys.modules\n"
        "s = idem.open_store('memory://')\n"
        "t = s.begin('k', 'f', lease_seconds=1, ttl_seconds=5, take_over_unknown=False)\n"
        "after_memory = 'redis' in sys.modules\n"
        "idem.open_store('redis://127.0.0.1:1/0')\n"
        "print(json.dumps([before, after_memory, 'redis' in sys.modules, t.started]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(out.stdout) == [False, False, True, True]


# -- store_key --------------------------------------------------------------------------


def test_store_keys_are_hashed_and_namespaced() -> None:
    k = store_key("caller-a", "order-1")
    assert k.startswith("axn:idem:") and len(k) == len("axn:idem:") + 64
    assert "order-1" not in k and "caller-a" not in k
    assert k == store_key("caller-a", "order-1")
    assert k != store_key("caller-b", "order-1")
    assert k != store_key("caller-a", "order-2")
    assert store_key("a", "bc") != store_key("ab", "c")
    assert store_key("", "键 🔑") != store_key("", "键")


def test_store_key_refuses_ambiguous_or_empty_input() -> None:
    with pytest.raises(ValueError, match="namespace"):
        store_key("a\x00b", "c")  # would collide with ("a", "b\x00c")
    with pytest.raises(ValueError, match="key"):
        store_key("ns", "")


# -- the memory backend -----------------------------------------------------------------


@pytest.mark.parametrize("variable", ["FC_FUNCTION_NAME", "FC_INSTANCE_ID"])
def test_memory_store_warns_inside_function_compute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str
) -> None:
    monkeypatch.delenv("FC_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("FC_INSTANCE_ID", raising=False)
    with caplog.at_level(logging.WARNING, logger="axn_bind"):
        MemoryStore()
        assert not caplog.records  # not outside FC
        monkeypatch.setenv(variable, "axn-bind")
        open_store("memory://")
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    line = json.loads(record.getMessage())
    assert line["event"] == "idempotency_memory_store"
    assert "one instance" in line["message"] and "AXN_IDEMPOTENCY_URL" in line["message"]


def test_memory_store_is_atomic_across_threads() -> None:
    store = MemoryStore()
    keys = [store_key("threads", str(i)) for i in range(200)]
    barrier = threading.Barrier(8)
    wins: Counter[str] = Counter()
    lock = threading.Lock()

    def racer() -> None:
        barrier.wait()
        for k in keys:
            if store.begin(
                k, "fp", lease_seconds=5, ttl_seconds=60, take_over_unknown=True
            ).started:
                with lock:
                    wins[k] += 1

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins == Counter(dict.fromkeys(keys, 1))


def test_memory_store_sweeps_expired_records() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(50):
        store.begin(str(i), "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=False)
    assert len(store) == 50
    clock.now += 61
    store.begin("new", "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=False)
    assert len(store._entries) == 1  # the old records are gone, not just hidden


# -- the Redis fixture's skip / fail rule -------------------------------------------------


def test_without_redis_tests_skip_locally_and_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        redis_unavailable("redis://:pw@127.0.0.1:6399/13", "ConnectionError")
    hint = str(skipped.value)
    # The server AXN_TEST_REDIS_URL names, and how to start one there: its port, not 6379.
    assert "127.0.0.1:6399" in hint and "redis-server --port 6399" in hint
    assert "6379" not in hint and "pw" not in hint
    with pytest.raises(pytest.skip.Exception) as skipped:
        redis_unavailable(None, "redis-server is not on PATH")
    assert "apt-get install redis-server" in str(skipped.value)
    assert "AXN_TEST_REDIS_URL" in str(skipped.value)
    monkeypatch.setenv("CI", "true")
    for url in ("redis://127.0.0.1:6399/13", None):
        with pytest.raises(pytest.fail.Exception) as failed:
            redis_unavailable(url, "ConnectionError")
        assert "CI=true" in str(failed.value)


@pytest.mark.parametrize(
    ("url", "worker", "expected"),
    [
        ("redis://127.0.0.1:6380/7", "", "redis://127.0.0.1:6380/7"),
        ("redis://127.0.0.1:6380/7", "gw0", "redis://127.0.0.1:6380/7"),
        ("redis://:pw@127.0.0.1:6380/7", "gw2", "redis://:pw@127.0.0.1:6380/9"),
        ("redis://127.0.0.1:6380", "gw1", "redis://127.0.0.1:6380/1"),
    ],
)
def test_each_xdist_worker_flushes_a_database_of_its_own(url, worker, expected) -> None:
    assert worker_database(url, worker) == expected


@pytest.mark.parametrize("url", ["redis://acct:1234/5678@host/0", "redis://:s3cr/et@host:6379/0"])
def test_a_password_with_a_slash_is_never_echoed(url):
    with pytest.raises(ConfigurationError) as info:
        open_store(url)
    message = info.value.message
    assert "AXN_IDEMPOTENCY_URL" in message and "%2F" in message
    for part in ("5678", "1234", "s3cr", "et@host"):
        assert part not in message
