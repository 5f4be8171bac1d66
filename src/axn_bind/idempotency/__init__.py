"""Idempotency store: at most one BindAxnExtension call per idempotency key.

BindAxnExtension is not idempotent, and Function Compute, EventBridge, MNS and HTTP clients all
redeliver. Before calling Dyplsapi the service calls ``begin`` for the key; only a caller told
``started`` makes the call. Afterwards it calls ``complete`` with the exact answer (replayed to
every redelivery), ``mark_unknown`` when a binding may or may not exist, or ``release`` when the
failure provably reached nobody. An owner that dies mid-call leaves an IN_PROGRESS record whose
lease runs out: that is an unknown outcome too, and like UNKNOWN it is replaced only
when the caller asks for a take-over.

Backends: ``memory://`` (one instance only; :mod:`.memory`) and ``redis://`` / ``rediss://``
(shared; :mod:`.redis_store`, which alone imports redis-py, and only when such a URL is opened).
"""

from __future__ import annotations

from ..errors import ConfigurationError
from ..urls import scheme_of, split
from .base import (
    ENV_VAR,
    Begin,
    IdempotencyStore,
    Outcome,
    Record,
    State,
    StoreUnavailableError,
)
from .guard import run_once
from .keys import IdempotencyKey, derive, record_key, store_key
from .memory import MemoryStore

__all__ = [
    "ENV_VAR",
    "Begin",
    "IdempotencyKey",
    "IdempotencyStore",
    "MemoryStore",
    "Outcome",
    "Record",
    "State",
    "StoreUnavailableError",
    "derive",
    "open_store",
    "record_key",
    "run_once",
    "store_key",
]

_FORMS = "memory://, redis://[:password@]host[:port][/db] or rediss://… (TLS)"


def open_store(
    url: str, *, connect_timeout: float = 1.0, socket_timeout: float = 1.0
) -> IdempotencyStore:
    """The store ``url`` (the value of AXN_IDEMPOTENCY_URL) names; empty means ``memory://``.

    Raises ConfigurationError for anything else; the message never repeats the value, which may
    hold a password. Opening a Redis store does not connect: the first operation does, and
    raises StoreUnavailableError if the server cannot be reached.
    """
    text = (url or "").strip()
    if not text:
        return MemoryStore()
    scheme = scheme_of(text)
    if scheme not in ("memory", "redis", "rediss"):
        raise ConfigurationError(
            f"{ENV_VAR} must be {_FORMS}; the value set is not one of these "
            "(it is not shown: it may hold a password)."
        )
    # The one reading urllib.parse (redis-py's parser) and urllib3 agree on; the checks below
    # are made on it.
    parts = split(text, ENV_VAR)
    if scheme == "memory":
        if (
            "@" in text
            or parts.netloc
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ConfigurationError(f"{ENV_VAR}: memory:// takes no host, path or options.")
        return MemoryStore()
    if not parts.host:
        raise ConfigurationError(f"{ENV_VAR} must name the Redis host: {_FORMS}.")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ConfigurationError(  # the path is not shown: a password with a "/" ends up in it
            f"{ENV_VAR}: the path must be a database number such as /0 (a password holding / "
            "or @ must be percent-encoded: %2F, %40)."
        )
    if parts.fragment:
        raise ConfigurationError(f"{ENV_VAR} must not have a #fragment.")

    from .redis_store import RedisStore  # imports redis-py: only now, only for a Redis URL

    return RedisStore(text, connect_timeout=connect_timeout, socket_timeout=socket_timeout)
