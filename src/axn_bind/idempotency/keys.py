"""The key scheme, in one place: which idempotency key a request gets, and where it is stored.

In order: PoolKey + ``OutOrderId``; else the ``Idempotency-Key`` header; else the event message's
identity; else, for a batch record (redelivered whole), the request's own fingerprint. The order
comes first because an order is bound once whatever a retry carries: a client that sends a new
``Idempotency-Key`` for its retry, or an order that arrives once over HTTP and once as a queue
message, still meets the order's record (same data: its binding is replayed; other data: 409
naming the ``OutOrderId``). Store keys
are namespaced by function and pool and hashed, so any client-chosen key makes a fixed-size Redis
key that leaks nothing to whoever lists them.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from ..log import shown

KEY_PREFIX = "axn:idem:"
MAX_HEADER_KEY = 255

# How each kind of key is named to a caller whose request met an existing record.
CAUSES = {
    "header": "this Idempotency-Key",
    "order": "this OutOrderId (in this pool)",
    "message": "this message (its identity)",
    "content": "a batch record with identical content",
}


class IdempotencyKey(NamedTuple):
    """The key a request is made idempotent by, and where it came from."""

    kind: str  # header | order | message | content
    value: str

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.value}"

    @property
    def cause(self) -> str:
        """How the key is named to a caller; an order by its own id (masked, capped)."""
        if self.kind == "order":
            return f"OutOrderId {shown(self.value, 64)!r} (in this pool)"
        return CAUSES[self.kind]

    @property
    def reused(self) -> str:
        """What a caller is told when the key's record holds a request with other data."""
        cause = self.cause
        if self.kind == "order":
            return (
                f"{cause} is already bound with other data: an order is bound once, whatever "
                "Idempotency-Key or message a retry carries. Resend the original request unchanged "
                "to get its binding; another binding needs its own OutOrderId."
            )
        return (
            f"{cause[0].upper()}{cause[1:]} was already used for a request with other data. "
            "Use a new one for a different binding, or resend the original request unchanged."
        )


def derive(
    *,
    header: str | None,
    order_id: str | None,
    message_id: str | None,
    fingerprint: str,
    content_key: bool,
) -> IdempotencyKey | None:
    """The key of a request, or None when it has none (a single key-less call)."""
    if order_id:
        return IdempotencyKey("order", order_id)
    if header is not None:
        return IdempotencyKey("header", header)
    if message_id:
        return IdempotencyKey("message", message_id)
    if content_key:
        return IdempotencyKey("content", fingerprint)
    return None


def header_key_problem(value: str) -> str | None:
    """Why an Idempotency-Key header value cannot be used, or None."""
    if not 1 <= len(value) <= MAX_HEADER_KEY or not value.isprintable() or not value.isascii():
        return f"must be 1 to {MAX_HEADER_KEY} printable ASCII characters"
    return None


def store_key(namespace: str, key: str) -> str:
    """The store key for ``key`` (``kind:value``) within ``namespace``.

    The namespace may not contain NUL, which keeps the mapping one-to-one.
    """
    if not isinstance(namespace, str) or "\x00" in namespace:
        raise ValueError("namespace must be a string without NUL characters")
    if not isinstance(key, str) or not key:
        raise ValueError("key must be a non-empty string")
    digest = hashlib.sha256(f"{namespace}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()
    return KEY_PREFIX + digest


def record_key(function_name: str, pool_key: str, key: IdempotencyKey | str) -> str:
    """Where the record of ``key`` lives for this function and pool."""
    text = key.text if isinstance(key, IdempotencyKey) else key
    return store_key(f"{function_name}/{pool_key}", text)
