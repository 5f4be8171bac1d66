"""JSON decoding with the limits every trigger shares: size, nesting depth, UTF-8, Base64."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..errors import MalformedRequestError

MAX_DEPTH = 32


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def load_json(data: bytes | str, what: str = "body") -> Any:
    """Decode ``data`` as JSON; MalformedRequestError names ``what`` and the problem."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")  # a leading byte-order mark is tolerated
        except UnicodeDecodeError:
            raise MalformedRequestError(f"The {what} is not UTF-8 text.") from None
    try:
        value = json.loads(data)
    except RecursionError:
        raise MalformedRequestError(
            f"The {what} is nested more than {MAX_DEPTH} levels deep."
        ) from None
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):
            raise MalformedRequestError(f"The {what} is not valid JSON.") from None
        # json's messages may end in "at" ("Unterminated string starting at"): never "at at".
        where = "" if exc.msg.endswith(" at") else " at"
        raise MalformedRequestError(
            f"The {what} is not valid JSON ({exc.msg}{where} line {exc.lineno}, column "
            f"{exc.colno})."
        ) from None
    if not _depth_ok(value, MAX_DEPTH):
        raise MalformedRequestError(f"The {what} is nested more than {MAX_DEPTH} levels deep.")
    return value


def b64decode(text: Any, what: str = "body") -> bytes:
    """Strict Base64 (standard alphabet; URL-safe accepted) to bytes."""
    if not isinstance(text, str):
        raise MalformedRequestError(f"The {what} is marked Base64 but is not a string.")
    compact = "".join(text.split())
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequestError(
            f"The {what} is marked Base64 but is not valid Base64."
        ) from None
