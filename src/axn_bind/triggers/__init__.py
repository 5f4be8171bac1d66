"""Turn the raw event bytes into a typed invocation: one adapter per trigger shape.

Adapters are tried in order; each has a cheap ``is this mine?`` check. HTTP shapes become an
:class:`HttpRequest`; timers, CloudEvents (single or array), MNS topic messages and JSON arrays of
bind requests become a :class:`Batch`; a JSON object that is no known envelope is a direct bind
request. Shapes this function does not serve are named in an UnsupportedEventError.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import AxnError, MalformedRequestError, UnsupportedEventError
from ..log import shown
from . import events as ev
from .events import Batch, Record
from .http import HttpRequest, from_apigw, from_fc3_http, is_apigw, is_fc3_http
from .jsonload import b64decode, load_json

MAX_EVENT_BYTES = 32 * 1024 * 1024


class DirectRequest(NamedTuple):
    """A bind request sent as the whole payload (InvokeFunction, ``s invoke``, SDK)."""

    payload: dict[str, Any]


class SweepRequest(NamedTuple):
    """``{"action": "sweep"}`` (the timer's payload, or a direct invocation): republish the
    outcomes still unannounced after the grace period."""

    source: str  # "timer" or "direct"


Invocation = HttpRequest | DirectRequest | Batch | SweepRequest
SWEEP = {"action": "sweep"}

__all__ = [
    "Batch",
    "DirectRequest",
    "HttpRequest",
    "Invocation",
    "Record",
    "SweepRequest",
    "parse_event",
]


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
    try:
        value = load_json(event, "event")
    except MalformedRequestError as error:
        return _raw_message(event, error)
    return _classify(value)


def _raw_message(event: bytes, error: AxnError) -> Batch:
    """An event that is not JSON: Base64 of JSON (a raw MNS topic STREAM body) or unsupported."""
    try:
        payload = load_json(b64decode(event.decode("ascii"), "event"), "event")
    except (AxnError, UnicodeDecodeError):
        payload = None
    if payload is not None:
        return ev.from_raw_message(payload)
    if event.lstrip()[:1] in (b"{", b"["):
        raise error  # it meant to be JSON: say what is wrong with it
    raise UnsupportedEventError(
        f"The event is {len(event)} bytes that are neither JSON nor Base64 of JSON; expected a "
        "bind request, an HTTP trigger event, a timer, CloudEvents or an MNS topic message."
    )


def _classify(value: Any) -> Invocation:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        value = load_json(value, "event (JSON text inside a JSON string)")
    if isinstance(value, list):
        return _classify_list(value)
    if not isinstance(value, dict):
        raise UnsupportedEventError(
            f"The event is a JSON {type(value).__name__}; expected a bind request object, an "
            "array of them, or a trigger event."
        )
    if is_fc3_http(value):
        return from_fc3_http(value)
    if is_apigw(value):
        return from_apigw(value)
    if ev.is_timer(value):
        if ev.timer_payload(value) == SWEEP:
            return SweepRequest("timer")
        return ev.from_timer(value)
    if ev.is_cloudevent(value):
        return ev.from_cloudevents([value])
    if ev.is_mns_topic_json(value):
        return ev.from_mns_topic_json(value)
    if ev.is_mns_topic_stream(value):
        return ev.from_mns_topic_stream(value)
    unsupported = _unsupported_envelope(value)
    if unsupported:
        raise UnsupportedEventError(unsupported)
    if value == SWEEP:
        return SweepRequest("direct")
    return DirectRequest(value)


def _classify_list(items: list[Any]) -> Batch:
    if not items:
        raise UnsupportedEventError("The event is an empty JSON array; nothing to bind.")
    if all(ev.is_cloudevent(item) for item in items):
        return ev.from_cloudevents(items)
    records = [
        ev.from_cloudevent(item) if ev.is_cloudevent(item) else Record(None, item, foreign=False)
        for item in items
    ]
    return Batch("direct-batch", records)


def _unsupported_envelope(value: dict[str, Any]) -> str | None:
    events = value.get("events")
    if isinstance(events, list) and events and isinstance(events[0], dict):
        source = shown(str(events[0].get("eventSource") or "unknown source"), 100)
        name = shown(str(events[0].get("eventName")), 100)
        return (
            f"The event is a {source} notification ({name}); this function binds numbers and "
            "serves no storage events."
        )
    if isinstance(value.get("requestContext"), dict) and "responseContext" in value:
        return (
            "The event is an async-invocation destination record; this function is not meant to "
            "be a destination. Point onFailure at a queue instead."
        )
    return None
