"""Fixtures for the idempotency store: both backends (``redis_url`` lives in tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from axn_bind.idempotency import MemoryStore, open_store
from tests.idempotency.support import Backend, FakeClock


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()

        def advance(seconds: float) -> None:
            clock.now += seconds

        yield Backend("memory", MemoryStore(clock=clock), advance, clock)
        return
    url = request.getfixturevalue("redis_url")
    store = open_store(url)
    yield Backend("redis", store, time.sleep, time.time)
    store.close()
