"""Runs in separate processes (FC instances, in effect) for tests/e2e/test_concurrency.py."""

from __future__ import annotations

import os
from typing import Any

from axn_bind.errors import TransientFailureError
from tools.fc_local import FcContext

_barrier: Any = None


def setup(env: dict[str, str], barrier: Any) -> None:
    """Process initializer: configure the function, import it (cold start done here)."""
    global _barrier
    os.environ.update(env)
    _barrier = barrier
    import index  # noqa: F401


def invoke(event: bytes) -> dict[str, Any]:
    """Wait for every worker, then invoke the handler once; report what the platform would see."""
    from index import handler

    _barrier.wait(timeout=30)
    try:
        return {"returned": handler(event, FcContext()), "pid": os.getpid()}
    except TransientFailureError as exc:
        return {"raised": str(exc), "pid": os.getpid()}
