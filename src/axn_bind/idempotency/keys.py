"""The key scheme, in one place: which idempotency key a request gets, and where it is stored.

In order: the ``Idempotency-Key`` header; else PoolKey + ``OutOrderId``; else the event message's
identity; else, for a batch record (redelivered whole), the request's own fingerprint. Store keys
are namespaced by function and pool and hashed, so any client-chosen key makes a fixed-size Redis
key that leaks nothing to whoever lists them.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

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
        return CAUSES[self.kind]


def derive(
    *,
    header: str | None,
    order_id: str | None,
    message_id: str | None,
    fingerprint: str,
    content_key: bool,
) -> IdempotencyKey | None:
    """The key of a request, or None when it has none (a single key-less call)."""
    if header is not None:
        return IdempotencyKey("header", header)
    if order_id:
        return IdempotencyKey("order", order_id)
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
