"""Function Compute entry points: ``index.handler`` and ``index.initialize``."""

from __future__ import annotations

from typing import Any

from axn_bind import app


def initialize(context: Any) -> None:
    """Before the first request: validate the settings, connect to Dyplsapi (TCP and TLS) and
    check the idempotency store; a problem is logged, and each request then answers it."""
    app.warm_up()


def handler(event: bytes, context: Any) -> Any:
    """Serve one invocation: an HTTP request, a direct bind request or a trigger event."""
    return app.handle(event, context)
