"""Turn the raw event bytes into a typed invocation: one adapter per trigger shape.

Adapters are tried in order; each has a cheap ``is this mine?`` check. HTTP shapes become an
:class:`HttpRequest`; a JSON object that is no known envelope is a direct bind request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import MalformedRequestError, UnsupportedEventError
from .http import HttpRequest, from_apigw, from_fc3_http, is_apigw, is_fc3_http
from .jsonload import load_json

MAX_EVENT_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class DirectRequest:
    """A bind request sent as the whole payload (InvokeFunction, ``s invoke``, SDK)."""

    payload: dict[str, Any]


Invocation = HttpRequest | DirectRequest


def parse_event(event: Any) -> Invocation:
    """Recognise ``event``; MalformedRequestError / UnsupportedEventError say what was seen."""
    if isinstance(event, (bytes, bytearray, memoryview)):
        event = bytes(event)
    elif isinstance(event, str):
        event = event.encode("utf-8")
    elif isinstance(event, dict):  # already decoded (local tools, some test harnesses)
        return _classify(event)
    else:
        raise UnsupportedEventError(f"The event is a {type(event).__name__}, not bytes.")
    if len(event) > MAX_EVENT_BYTES:
        raise MalformedRequestError(f"The event is larger than {MAX_EVENT_BYTES} bytes.")
    if not event.strip():
        raise UnsupportedEventError("The event is empty; send a JSON bind request.")
    return _classify(load_json(event, "event"))


def _classify(value: Any) -> Invocation:
    if is_fc3_http(value):
        return from_fc3_http(value)
    if is_apigw(value):
        return from_apigw(value)
    if isinstance(value, dict):
        return DirectRequest(value)
    raise UnsupportedEventError(
        f"The event is a JSON {type(value).__name__}; expected a bind request object or a "
        "trigger event."
    )
