"""Redis backend only: atomicity across processes, the server's clock, lost replies, outages."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from axn_bind.errors import Kind
from axn_bind.idempotency import Outcome, State, StoreUnavailableError, open_store, store_key
from axn_bind.idempotency.redis_store import RedisStore
from tests.idempotency.race_workers import race_begin
from tests.idempotency.support import DropReplyProxy, SilentServer
from tests.redisproc import MEMORY_ONLY, RedisProcesses

pytestmark = pytest.mark.redis

TTL = 60


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    s = open_store(redis_url)
    assert isinstance(s, RedisStore)
    yield s
    s.close()


def raw(redis_url: str) -> Any:
    import redis

    return redis.Redis.from_url(redis_url, decode_responses=True)


# -- atomicity under contention ------------------------------------------------------------


def run_race(url: str, processes: int, rounds: list[list[str]], take_over: bool) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=race_begin, args=(url, rounds, take_over, barrier, results))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        out = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    for item in out:
        assert not isinstance(item, str), f"a racer failed: {item}"
    return [row for rows in out for row in rows]


def check_one_winner(store: RedisStore, rows: list[Any], keys: list[str], winner: str, racers: int):
    by_key: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_key[row[0]].append(row)
    assert sorted(by_key) == sorted(keys)
    for key, seen in by_key.items():
        assert len(seen) == racers
        outcomes = Counter(outcome for _, outcome, _, _ in seen)
        assert outcomes == {winner: 1, "in_progress": racers - 1}, (key, outcomes)
        (won_token,) = [token for _, outcome, token, _ in seen if outcome == winner]
        # Every loser saw the winner's record, and the store holds exactly that owner.
        assert all(seen_token == won_token for _, o, _, seen_token in seen if o == "in_progress")
        record = store.get(key)
        assert record is not None
        assert (record.state, record.token) == (State.IN_PROGRESS, won_token)


@pytest.mark.slow
def test_racing_processes_start_each_key_exactly_once(redis_url: str, store: RedisStore) -> None:
    racers, rounds = 8, [[store_key("race", f"{r}-{i}") for i in range(4)] for r in range(60)]
    rows = run_race(redis_url, racers, rounds, take_over=False)
    keys = [k for keys in rounds for k in keys]
    check_one_winner(store, rows, keys, "started", racers)


@pytest.mark.slow
def test_racing_take_overs_of_an_unknown_have_one_winner(redis_url: str, store: RedisStore) -> None:
    rounds = [[store_key("takeover", f"{r}-{i}") for i in range(4)] for r in range(50)]
    keys = [k for keys in rounds for k in keys]
    for key in keys:
        first = store.begin(key, "fp", lease_seconds=30, ttl_seconds=TTL, take_over_unknown=False)
        assert first.token is not None
        assert store.mark_unknown(
            key, first.token, response="{}", status=502, ttl_seconds=TTL, upstream_request_id=None
        )
    rows = run_race(redis_url, 2, rounds, take_over=True)
    check_one_winner(store, rows, keys, "taken_over", 2)


# -- the server's clock decides leases -----------------------------------------------------


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_leases_follow_the_server_clock_not_the_instances(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    key = store_key("clock", str(skew))
    real = time.time
    server_now = float(raw(store_url(store)).time()[0])
    monkeypatch.setattr(time, "time", lambda: real() + skew)  # this instance's clock is wrong
    first = store.begin(key, "fp", lease_seconds=5, ttl_seconds=TTL, take_over_unknown=True)
    assert first.started
    monkeypatch.setattr(time, "time", real)
    second = store.begin(key, "fp", lease_seconds=5, ttl_seconds=TTL, take_over_unknown=True)
    assert second.outcome is Outcome.IN_PROGRESS  # an instance with the right clock agrees
    assert second.record is not None
    assert second.record.lease_until == pytest.approx(server_now + 5, abs=2)


def store_url(store: RedisStore) -> str:
    kwargs = store._client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


# -- lost replies: redis-py retries, and the scripts answer a repeat as the first run did ---


@pytest.fixture
def proxy(redis_url: str) -> Iterator[tuple[DropReplyProxy, RedisStore]]:
    parts = urlsplit(redis_url)
    p = DropReplyProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    s = RedisStore(f"redis://127.0.0.1:{p.port}{parts.path}")
    s.get(store_key("proxy", "warm-up"))  # connect before arming
    warm = s.begin(
        store_key("proxy", "load"), "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=False
    )
    assert warm.token is not None
    assert s.complete(
        store_key("proxy", "load"), warm.token, response="{}", status=200, ttl_seconds=5
    )
    yield p, s
    s.close()
    p.close()


def test_begin_whose_reply_was_lost_still_owns_the_key(proxy: Any) -> None:
    p, s = proxy
    key = store_key("lost", "begin")
    p.drop_next_reply()
    result = s.begin(key, "fp", lease_seconds=30, ttl_seconds=TTL, take_over_unknown=False)
    assert p.dropped == 1  # the script ran, its reply was lost, redis-py ran it again
    assert result.started and result.outcome is Outcome.STARTED
    record = s.get(key)
    assert record is not None and record.token == result.token


def test_take_over_whose_reply_was_lost_still_reports_the_replaced_record(proxy: Any) -> None:
    p, s = proxy
    key = store_key("lost", "take-over")
    first = s.begin(key, "fp", lease_seconds=30, ttl_seconds=TTL, take_over_unknown=False)
    assert s.mark_unknown(
        key,
        first.token,
        response='{"u":"未知"}',
        status=502,
        ttl_seconds=TTL,
        upstream_request_id="R",
    )
    before = s.get(key)
    p.drop_next_reply()
    result = s.begin(key, "fp", lease_seconds=30, ttl_seconds=TTL, take_over_unknown=True)
    assert p.dropped == 1
    assert result.started and result.outcome is Outcome.TAKEN_OVER
    assert result.record == before


def test_complete_whose_reply_was_lost_reports_success(proxy: Any) -> None:
    p, s = proxy
    key = store_key("lost", "complete")
    first = s.begin(key, "fp", lease_seconds=30, ttl_seconds=TTL, take_over_unknown=False)
    p.drop_next_reply()
    assert s.complete(key, first.token, response='{"ok":1}', status=200, ttl_seconds=TTL)
    assert p.dropped == 1
    record = s.get(key)
    assert record is not None and (record.state, record.response) == (State.COMPLETED, '{"ok":1}')


def test_scripts_survive_a_flushed_script_cache(redis_processes: RedisProcesses) -> None:
    # SCRIPT FLUSH empties the cache of the whole server: a server of this test's own.
    server = redis_processes.start(*MEMORY_ONLY)
    store = open_store(server.url())
    try:
        key = store_key("s", "k")
        assert store.begin(
            key, "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=False
        ).started
        admin = redis.Redis.from_url(server.url())
        sha = store._begin_script.sha
        assert admin.script_exists(sha) == [True]
        admin.script_flush()
        assert admin.script_exists(sha) == [False]
        admin.close()
        again = store.begin(key, "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=False)
        assert again.outcome is Outcome.IN_PROGRESS  # the script ran again, on the same record
    finally:
        store.close()


# -- store outage and bad data: fail closed, never leak the password ----------------------

OPERATIONS = {
    "begin": lambda s: s.begin("k", "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=False),
    "complete": lambda s: s.complete("k", "t", response="{}", status=200, ttl_seconds=5),
    "mark_unknown": lambda s: s.mark_unknown(
        "k", "t", response="{}", status=502, ttl_seconds=5, upstream_request_id=None
    ),
    "release": lambda s: s.release("k", "t"),
    "get": lambda s: s.get("k"),
    "clear": lambda s: s.clear("k"),
    "ping": lambda s: s.ping(),
}


def assert_unavailable(error: StoreUnavailableError, where: str) -> None:
    assert (error.code, error.status, error.kind) == (
        "IdempotencyStoreUnavailable",
        503,
        Kind.UNAVAILABLE,
    )
    assert error.kind.transient
    assert where in error.message and "AXN_IDEMPOTENCY_URL" in error.message
    assert "s3cret" not in error.message and "s3cret" not in repr(error)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_closed_port_fails_fast_without_the_password(operation: str) -> None:
    s = open_store("redis://:s3cret@127.0.0.1:1/0")
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        OPERATIONS[operation](s)
    # The bound is the store's own: the time the function keeps back for one Redis call, its
    # retries included (write_seconds, 3 s by default). A refused connection takes milliseconds;
    # this fails only if refusals were retried for longer than the function allows for.
    assert time.monotonic() - started < s.write_seconds
    assert_unavailable(caught.value, "127.0.0.1:1")
    assert operation in caught.value.message


def test_a_server_that_never_answers_times_out() -> None:
    server = SilentServer()
    try:
        s = open_store(f"redis://:s3cret@127.0.0.1:{server.port}/0", socket_timeout=0.1)
        with pytest.raises(StoreUnavailableError) as caught:
            s.get("k")
        # Each try ended on its socket timeout, and there were three (the first and two
        # retries, each on a new connection): the wait is bounded by the timeouts, whatever
        # the machine's load.
        assert "Timeout" in caught.value.message
        deadline = time.monotonic() + 5  # the listener thread counts the last connection
        while server.accepted < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.accepted == 3
        assert_unavailable(caught.value, f"127.0.0.1:{server.port}")
    finally:
        server.close()


@pytest.mark.slow
def test_a_wrong_password_is_unavailable_without_echoing_it(
    redis_processes: RedisProcesses,
) -> None:
    server = redis_processes.start("--requirepass", "right-one", *MEMORY_ONLY)
    right = open_store(server.url("right-one"))
    right.ping()  # the server works with the right password
    right.close()
    for url in (
        f"redis://:s3cret@127.0.0.1:{server.port}/0",
        f"redis://someone:s3cret@127.0.0.1:{server.port}/0",
        f"redis://127.0.0.1:{server.port}/0",  # no password at all
    ):
        s = open_store(url)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            s.begin("k", "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=False)
        # Refused at once, not retried until the time kept back for a Redis call is gone.
        assert time.monotonic() - started < s.write_seconds
        assert_unavailable(caught.value, f"127.0.0.1:{server.port}")


def test_a_key_holding_another_type_fails_closed(store: RedisStore, redis_url: str) -> None:
    raw(redis_url).set("k", "not a hash")
    with pytest.raises(StoreUnavailableError, match="WRONGTYPE"):
        store.begin("k", "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=True)


def test_a_malformed_record_fails_closed(store: RedisStore, redis_url: str) -> None:
    raw(redis_url).hset("k", mapping={"state": "BOGUS", "fingerprint": "fp"})
    with pytest.raises(StoreUnavailableError, match="malformed record"):
        store.begin("k", "fp", lease_seconds=1, ttl_seconds=5, take_over_unknown=True)
    with pytest.raises(StoreUnavailableError, match="malformed record"):
        store.get("k")
    assert raw(redis_url).hget("k", "state") == "BOGUS"  # left for the operator
    assert store.clear("k")


def test_records_are_hashes_an_operator_can_read(store: RedisStore, redis_url: str) -> None:
    key = store_key("ops", "k")
    first = store.begin(key, "fp", lease_seconds=2, ttl_seconds=TTL, take_over_unknown=False)
    assert store.complete(key, first.token, response='{"a":1}', status=200, ttl_seconds=TTL)
    client = raw(redis_url)
    fields = client.hgetall(key)
    assert fields["state"] == "COMPLETED" and fields["response"] == '{"a":1}'
    assert fields["token"] == first.token and fields["status"] == "200"
    assert 0 < client.pttl(key) <= TTL * 1000


def test_the_time_kept_back_for_a_redis_write_covers_its_timeouts_and_retries(redis_url):
    from axn_bind.idempotency.redis_store import RedisStore

    store = RedisStore(redis_url, socket_timeout=1.0, retries=2)
    try:
        assert store.write_seconds >= 3.0  # three tries of up to 1 s each
    finally:
        store.close()
