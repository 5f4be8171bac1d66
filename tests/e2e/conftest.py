"""What the end-to-end tests share: the handler is driven through tests/conftest.py's ``call`` and
``post`` against the emulator; these helpers count what reached it, and ``store`` runs a test on
the memory store and on the real Redis."""

from __future__ import annotations

import pytest


def bind_calls(emulator) -> list[dict]:
    """The BindAxnExtension requests the emulator received, in order."""
    return [r for r in emulator.requests() if r.get("action") == "BindAxnExtension"]


def bind_count(emulator) -> int:
    """How many BindAxnExtension requests the emulator received."""
    return len(bind_calls(emulator))


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, env):
    """The function configured with each store; returns the store URL."""
    url = "memory://" if request.param == "memory" else request.getfixturevalue("redis_url")
    env(AXN_IDEMPOTENCY_URL=url)
    return url
