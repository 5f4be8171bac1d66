"""Concurrency proof: several processes (FC instances) share one Redis and one emulator.

N identical requests fired at once produce exactly one upstream binding; the others get the
replay or "in progress"; after retrying, every caller holds the same answer byte for byte.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from tests import concurrency_worker
from tests.e2e.conftest import bind_count
from tools.fc_local import http_event, local_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]
PROCESSES = 6


@pytest.fixture
def pool(emulator, redis_url, env):
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    barrier = manager.Barrier(PROCESSES)
    worker_env = {
        **local_env(emulator.url),
        "AXN_IDEMPOTENCY_URL": redis_url,
        "AXN_LOG_LEVEL": "ERROR",
    }
    with ProcessPoolExecutor(
        PROCESSES, mp_context=ctx, initializer=concurrency_worker.setup,
        initargs=(worker_env, barrier),
    ) as executor:  # fmt: skip
        yield executor
    manager.shutdown()


def fire(pool, event: bytes) -> list[dict]:
    return list(pool.map(concurrency_worker.invoke, [event] * PROCESSES))


def test_identical_http_requests_from_many_processes_bind_once(pool, emulator):
    rounds = 3
    for n in range(rounds):
        emulator.add_fault("delay", seconds=0.5)  # the first call is slow: others overlap it
        event = http_event(
            "POST",
            {"PhoneNoA": f"1390000010{n}", "TtlSeconds": 3600, "OutOrderId": f"DD-c{n}"},
        )
        results = fire(pool, event)
        assert len({r["pid"] for r in results}) == PROCESSES  # one request per process
        answers = [r["returned"] for r in results]
        fresh = [
            a
            for a in answers
            if a["statusCode"] == 200 and "Idempotent-Replayed" not in a["headers"]
        ]
        others = [a for a in answers if a not in fresh]
        assert len(fresh) == 1, answers
        for other in others:
            code = json.loads(other["body"])["Code"]
            assert (other["statusCode"], code) in ((200, "OK"), (409, "IdempotencyInProgress"))
        # Everyone retries (as a client honouring Retry-After would): identical answers.
        retried = [r["returned"] for r in fire(pool, event)]
        assert {r["body"] for r in retried} == {fresh[0]["body"]}
        assert all(r["headers"]["Idempotent-Replayed"] == "true" for r in retried)
    assert bind_count(emulator) == rounds
    assert len(emulator.bindings()) == rounds


def test_a_batch_redelivered_to_many_processes_at_once_binds_each_record_once(pool, emulator):
    batch = [
        {
            "specversion": "1.0",
            "id": f"ce-{i}",
            "source": "MNS-axn",
            "type": "mns:Queue:SendMessage",
            "data": {
                "messageId": f"C{i}",
                "messageBody": json.dumps({"PhoneNoA": f"1390000020{i}", "TtlSeconds": 3600}),
            },
        }
        for i in range(4)
    ]
    event = json.dumps(batch).encode()
    emulator.add_fault("delay", count=4, seconds=0.2)
    first = fire(pool, event)
    # Whoever lost a race got "in progress" and raised for a redelivery; nobody bound twice.
    assert len(emulator.bindings()) == 4
    for _redelivery in range(10):
        outcomes = fire(pool, event)
        if all("returned" in o for o in outcomes):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"batch still raising after redeliveries: {outcomes}")
    reports = [o["returned"] for o in outcomes]
    subs = {tuple(r["SecretBindDTO"]["SubsId"] for r in rep["Records"]) for rep in reports}
    assert len(subs) == 1  # every process reports the same four bindings
    assert bind_count(emulator) == 4
    assert len(emulator.bindings()) == 4
    raised = [o for o in first if "raised" in o]
    for o in raised:
        assert "IdempotencyInProgress" in o["raised"]


def test_invocations_arriving_together_share_one_service(env, monkeypatch):
    """FC 3.0 may run several invocations of one instance at once, before any initializer: they
    must build one service (one memory store), not one each. Building is slowed down so that,
    without the lock, every thread would find no service and build its own."""
    import threading
    import time

    from axn_bind import app

    class SlowToBuild(app.BindService):
        def __init__(self, *args, **kwargs):
            time.sleep(0.05)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(app, "BindService", SlowToBuild)
    app.reset()
    barrier = threading.Barrier(8)
    built: list[object] = []

    def first_call() -> None:
        barrier.wait()
        built.append(app.service())

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 8 and len({id(s) for s in built}) == 1
