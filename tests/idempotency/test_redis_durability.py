"""RedisStore.durability_problems() against redis-server processes started here, and the failure
it guards against: a Redis that keeps nothing on disk forgets every record when it restarts.

Each test starts its own servers on free loopback ports with their own directories (never the
shared test Redis) and kills them on teardown. Without a ``redis-server`` binary the tests skip,
except under ``CI=true``, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from axn_bind.idempotency import Outcome, State, StoreUnavailableError, store_key
from axn_bind.idempotency.redis_store import RedisStore
from tests.redisproc import DURABLE, MEMORY_ONLY, RedisProcesses

PASSWORD = "s3cr3t-pw"
RESPONSE = '{"Code":"OK","RequestId":"req-1","SecretBindDTO":{"SecretNo":"17100000000"}}'
TTL = 3600


@pytest.fixture
def stores() -> Iterator[list[RedisStore]]:
    """RedisStore objects a test opened, closed on teardown."""
    opened: list[RedisStore] = []
    yield opened
    for store in opened:
        store.close()


def open_redis(stores: list[RedisStore], url: str) -> RedisStore:
    store = RedisStore(url)
    stores.append(store)
    return store


def bind_once(store: RedisStore, key: str) -> None:
    """Take the key and store the answer, as the service does around one BindAxnExtension."""
    begin = store.begin(key, "fingerprint-1", lease_seconds=30, ttl_seconds=TTL, take_over_unknown=False)  # fmt: skip
    assert begin.outcome is Outcome.STARTED and begin.token
    assert store.complete(
        key,
        begin.token,
        response=RESPONSE,
        status=200,
        ttl_seconds=TTL,
        upstream_request_id="req-1",
    )


def begin_again(store: RedisStore, key: str):
    return store.begin(key, "fingerprint-1", lease_seconds=30, ttl_seconds=TTL, take_over_unknown=False)  # fmt: skip


# -- what the check reports ----------------------------------------------------------------


def test_an_evicting_memory_only_server_has_two_problems(
    redis_processes: RedisProcesses, stores: list[RedisStore]
) -> None:
    server = redis_processes.start(
        "--maxmemory-policy", "volatile-lru", "--save", "", "--appendonly", "no",
        "--requirepass", PASSWORD,
    )  # fmt: skip
    problems = open_redis(stores, server.url(PASSWORD)).durability_problems()

    assert len(problems) == 2, problems
    eviction, persistence = problems
    assert eviction.startswith("maxmemory-policy is volatile-lru: ")
    assert "set maxmemory-policy to noeviction" in eviction
    assert "appendonly is no and save is empty" in persistence
    assert "set appendonly to yes" in persistence
    for problem in problems:
        assert PASSWORD not in problem
        assert str(server.port) not in problem and "redis://" not in problem


def test_a_noeviction_aof_server_has_no_problems(
    redis_processes: RedisProcesses, stores: list[RedisStore]
) -> None:
    # save '' as well: AOF alone must be enough.
    server = redis_processes.start(*DURABLE)
    assert open_redis(stores, server.url()).durability_problems() == []


def test_rdb_save_points_alone_count_as_persistence(
    redis_processes: RedisProcesses, stores: list[RedisStore]
) -> None:
    server = redis_processes.start(
        "--maxmemory-policy", "noeviction", "--appendonly", "no", "--save", "3600 1 300 100"
    )  # fmt: skip
    assert open_redis(stores, server.url()).durability_problems() == []


def test_every_policy_but_noeviction_is_a_problem(
    redis_processes: RedisProcesses, stores: list[RedisStore]
) -> None:
    import redis

    server = redis_processes.start(*DURABLE)
    store = open_redis(stores, server.url())
    admin = redis.Redis.from_url(server.url(), decode_responses=True)
    try:
        for policy in ("allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lfu",
                       "volatile-random", "volatile-ttl", "volatile-lru"):  # fmt: skip
            admin.config_set("maxmemory-policy", policy)
            problems = store.durability_problems()
            assert len(problems) == 1, (policy, problems)
            assert problems[0].startswith(f"maxmemory-policy is {policy}: ")
        admin.config_set("maxmemory-policy", "noeviction")
        assert store.durability_problems() == []
    finally:
        admin.close()


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(("--rename-command", "CONFIG", ""), id="CONFIG renamed away"),
        pytest.param(
            ("--user", "default", "on", "nopass", "~*", "&*", "+@all", "-config"),
            id="CONFIG forbidden by ACL",
        ),
    ],
)
def test_refused_config_with_aof_off_cannot_confirm_persistence(
    redis_processes: RedisProcesses, stores: list[RedisStore], refusal: tuple[str, ...]
) -> None:
    server = redis_processes.start(*MEMORY_ONLY, *refusal)
    problems = open_redis(stores, server.url()).durability_problems()
    assert len(problems) == 1, problems
    assert problems[0].startswith("Persistence could not be confirmed: ")
    assert "CONFIG GET save was refused" in problems[0]
    assert "set appendonly to yes" in problems[0]


def test_refused_config_with_aof_on_is_judged_by_aof(
    redis_processes: RedisProcesses, stores: list[RedisStore]
) -> None:
    server = redis_processes.start(*DURABLE, "--rename-command", "CONFIG", "")
    assert open_redis(stores, server.url()).durability_problems() == []


def test_a_server_that_is_gone_raises_store_unavailable(
    redis_processes: RedisProcesses, stores: list[RedisStore]
) -> None:
    server = redis_processes.start(*DURABLE, "--requirepass", PASSWORD)
    store = open_redis(stores, server.url(PASSWORD))
    server.crash()
    with pytest.raises(StoreUnavailableError) as caught:
        store.durability_problems()
    assert f"127.0.0.1:{server.port}" in caught.value.message
    assert "INFO memory failed" in caught.value.message
    assert PASSWORD not in caught.value.message


# -- what the check prevents ---------------------------------------------------------------


def test_a_completed_record_survives_a_crash_of_a_durable_server(
    redis_processes: RedisProcesses, stores: list[RedisStore]
) -> None:
    server = redis_processes.start(*DURABLE)
    store = open_redis(stores, server.url())
    assert store.durability_problems() == []
    key = store_key("durability-test", "order-1")
    bind_once(store, key)

    server.crash()
    server.start()

    after = open_redis(stores, server.url())
    record = after.get(key)
    assert record is not None and record.state is State.COMPLETED
    assert record.response == RESPONSE and record.upstream_request_id == "req-1"
    again = begin_again(after, key)
    assert not again.started and again.outcome is Outcome.COMPLETED
    assert again.record is not None and again.record.response == RESPONSE


def test_a_memory_only_server_forgets_the_record_even_on_a_clean_restart(
    redis_processes: RedisProcesses, stores: list[RedisStore]
) -> None:
    server = redis_processes.start(*MEMORY_ONLY)
    store = open_redis(stores, server.url())
    assert any("in memory only" in p for p in store.durability_problems())
    key = store_key("durability-test", "order-1")
    bind_once(store, key)
    assert store.get(key) is not None

    server.stop()
    server.start()

    after = open_redis(stores, server.url())
    assert after.get(key) is None
    again = begin_again(after, key)
    assert again.started and again.outcome is Outcome.STARTED  # the order would be bound again


# -- what the function does with such a store (through the handler, against the emulator) ----


@pytest.fixture
def function(env, emulator):
    """The function against the emulator; ``function(url, durability)`` sets the store."""

    def configure(url: str, durability: str | None = None) -> None:
        env(AXN_IDEMPOTENCY_URL=url, AXN_STORE_DURABILITY=durability)

    return configure


def _bind(n: int):
    from tests.conftest import post

    return post({"PhoneNoA": "13900000001", "TtlSeconds": 3600, "OutOrderId": f"DUR-{n}"})


def test_an_instance_refuses_to_bind_on_a_store_that_may_lose_records(
    redis_processes: RedisProcesses, function, emulator
) -> None:
    server = redis_processes.start("--maxmemory-policy", "volatile-lru", *MEMORY_ONLY[2:])
    function(server.url(), None)  # the default: enforce
    status, _, body = _bind(1)
    assert (status, body["Code"]) == (500, "StoreNotDurable")
    assert "maxmemory-policy is volatile-lru" in body["Message"]
    assert "set appendonly to yes" in body["Message"]
    assert "AXN_STORE_DURABILITY=warn" in body["Message"]
    assert str(server.port) not in body["Message"]  # no address, no password
    assert not emulator.bindings()  # nothing was sent upstream


def test_warn_binds_on_such_a_store_and_logs_why(
    redis_processes: RedisProcesses, function, emulator, caplog
) -> None:
    server = redis_processes.start(*MEMORY_ONLY)
    function(server.url(), "warn")
    status, _, body = _bind(2)
    assert (status, body["Code"]) == (200, "OK")
    assert any("idempotency_store_not_durable" in r.getMessage() for r in caplog.records)


def test_a_durable_store_binds_and_a_fix_on_the_server_is_seen_without_a_restart(
    redis_processes: RedisProcesses, function, emulator
) -> None:
    import redis

    server = redis_processes.start(*MEMORY_ONLY)
    function(server.url(), None)
    assert _bind(3)[2]["Code"] == "StoreNotDurable"
    client = redis.Redis.from_url(server.url())
    client.config_set("appendonly", "yes")  # the operator fixes the server; the instance lives on
    client.close()
    status, _, body = _bind(3)
    assert (status, body["Code"]) == (200, "OK")
    assert len(emulator.bindings()) == 1
