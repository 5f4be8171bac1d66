"""The announcement of one outcome: a CloudEvents 1.0 event in structured JSON.

``axn.binding.created`` carries a binding; ``axn.binding.failed`` a permanent failure, so that the
order flow can react (a bad number, an exhausted pool, a conflict). The ``id`` is derived from
what happened, never drawn at random: the same binding (PoolKey + SubsId), or the same failure of
the same idempotency record, gives the same id on every republish, replay and redelivery, and
consumers de-duplicate on it (with ``source``).

Nothing personal leaves in an event: ``PhoneNoA`` is masked, a failure's message is scrubbed of
phone numbers, and the customer's B number is not part of the event at all. ``SecretNo`` is the
privacy number X that the order service must show; it is nobody's own number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..log import mask_phone, scrub

CREATED = "axn.binding.created"
FAILED = "axn.binding.failed"
SPEC_VERSION = "1.0"
MAX_MESSAGE = 300


@dataclass(frozen=True)
class Event:
    """One event, as the exact JSON text every target sends (and a republish sends again)."""

    id: str
    type: str
    text: str  # the structured CloudEvents JSON

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.text)


def source_of(function_name: str, region: str, account_id: str | None = None) -> str:
    """``acs:fc:<region>:<account>:functions/<name>``: which function announced it."""
    return f"acs:fc:{region}:{account_id or ''}:functions/{function_name}"


def event_id(kind: str, *parts: str) -> str:
    """A stable id in UUID form from what the event is about (SHA-256, first 128 bits)."""
    digest = hashlib.sha256("\x00".join((kind, *parts)).encode("utf-8", "surrogatepass"))
    h = digest.hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _time(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def created(
    *,
    source: str,
    when: float,
    pool_key: str,
    binding: dict[str, Any],
    request: dict[str, Any],
    upstream_request_id: str | None,
    replayed: bool = False,
) -> Event:
    """The event for a binding. ``request`` holds the request's parameters (as sent upstream);
    ``binding`` Dyplsapi's ``SecretBindDTO``."""
    subs_id = str(binding.get("SubsId") or "")
    eid = event_id(CREATED, pool_key, subs_id)
    data = {
        "OutOrderId": request.get("OutOrderId"),
        "OutId": request.get("OutId"),
        "PoolKey": pool_key,
        "SubsId": subs_id,
        "SecretNo": binding.get("SecretNo"),
        "Extension": binding.get("Extension"),
        "Expiration": request.get("Expiration"),
        "PhoneNoA": mask_phone(request.get("PhoneNoA")),
        "RequestId": upstream_request_id,
        "Replayed": replayed,
    }
    return _event(eid, CREATED, source, when, request.get("OutOrderId"), data)


def failed(
    *,
    source: str,
    when: float,
    identity: str,
    code: str,
    message: str,
    request: dict[str, Any] | None,
    upstream_request_id: str | None,
    replayed: bool = False,
) -> Event:
    """The event for a permanent failure. ``identity`` names the failed request stably: its
    idempotency record, or its message identity, or its fingerprint."""
    request = request or {}
    eid = event_id(FAILED, identity, code)
    text = scrub(str(message or ""))
    data = {
        "OutOrderId": request.get("OutOrderId"),
        "OutId": request.get("OutId"),
        "PoolKey": request.get("PoolKey"),
        "PhoneNoA": mask_phone(request.get("PhoneNoA")),
        "Code": code,
        "Message": text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…",
        "RequestId": upstream_request_id,
        "Replayed": replayed,
    }
    return _event(eid, FAILED, source, when, request.get("OutOrderId"), data)


def _event(
    eid: str, kind: str, source: str, when: float, subject: Any, data: dict[str, Any]
) -> Event:
    body: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": eid,
        "source": source,
        "type": kind,
        "time": _time(when),
        "datacontenttype": "application/json",
        "data": {k: v for k, v in data.items() if v is not None},
    }
    if subject:
        body["subject"] = str(subject)
    return Event(eid, kind, _dump(body))
