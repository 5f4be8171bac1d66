"""Fixtures for the Dyplsapi emulator tests: a real server on 127.0.0.1 with a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tools.dypls_emulator import (
    DEFAULT_POOL_KEY,
    DEFAULT_STS_ACCESS_KEY_ID,
    DEFAULT_STS_ACCESS_KEY_SECRET,
    DEFAULT_STS_SECURITY_TOKEN,
    Emulator,
    EmulatorAdmin,
)
from tools.dypls_emulator.client import Reply, SignedClient
from tools.dypls_emulator.clock import format_shanghai

BindFn = Callable[..., Reply]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def admin(emulator: Emulator) -> EmulatorAdmin:
    return EmulatorAdmin(emulator.url)


@pytest.fixture
def client(emulator: Emulator) -> SignedClient:
    return SignedClient(emulator.url)


@pytest.fixture
def sts_client(emulator: Emulator) -> SignedClient:
    return SignedClient(
        emulator.url,
        DEFAULT_STS_ACCESS_KEY_ID,
        DEFAULT_STS_ACCESS_KEY_SECRET,
        DEFAULT_STS_SECURITY_TOKEN,
    )


@pytest.fixture
def expiration(emulator: Emulator) -> str:
    """An Expiration one hour after the emulator clock, in Asia/Shanghai time."""
    return format_shanghai(emulator.service.clock.now() + 3600)


@pytest.fixture
def bind(client: SignedClient, expiration: str) -> BindFn:
    """Send a V3 BindAxnExtension with defaults for the required parameters."""

    def _bind(**params: str) -> Reply:
        merged = {
            "PoolKey": DEFAULT_POOL_KEY,
            "PhoneNoA": "13900000001",
            "Expiration": expiration,
            **params,
        }
        return client.v3("BindAxnExtension", {k: v for k, v in merged.items() if v is not None})

    return _bind
