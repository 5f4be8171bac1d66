"""Shared fixtures: a real Dyplsapi emulator on loopback and the function pointed at it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from axn_bind import app, config
from tools.dypls_emulator import Emulator
from tools.fc_local import FcContext, http_event, local_env

CONFIG_VARS = tuple(config.SETTINGS)


@pytest.fixture(scope="session")
def emulator():
    with Emulator(host="127.0.0.1", port=0) as emu:
        yield emu


@pytest.fixture
def env(emulator, monkeypatch):
    """The function configured against a clean emulator; returns a setter for more variables."""
    for name in CONFIG_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in local_env(emulator.url).items():
        monkeypatch.setenv(name, value)
    # Fast retries: the policy is the same, only the waits are shorter.
    monkeypatch.setenv("DYPLS_BACKOFF_BASE_MS", "10")
    monkeypatch.setenv("DYPLS_BACKOFF_MAX_MS", "50")
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


def call(event: bytes | dict[str, Any], context: FcContext | None = None) -> Any:
    """Invoke the handler as FC does: bytes in, whatever it returns out."""
    from index import handler

    if isinstance(event, dict):
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
