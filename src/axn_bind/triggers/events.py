"""Event-driven shapes: timer, CloudEvents from EventBridge-fed triggers, MNS topic messages.

Each shape becomes a :class:`Batch` of :class:`Record`\\ s. A record carries the message's own
identity (kept for logs, reports and idempotency) and either its payload or the error that made
the payload unreadable, so one bad message never blocks the others.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import AxnError, MalformedRequestError
from ..log import shown
from .jsonload import b64decode, load_json


class Record(NamedTuple):
    """One message of a batch: its identity and its payload, or why it cannot be read."""

    id: str | None  # message identity, e.g. "mns:C6DB60D1…"; None when the source gives none
    payload: Any = None
    error: AxnError | None = None
    foreign: bool = True  # True for messages from queues/buses/timers: the field mapping applies


class Batch(NamedTuple):
    """The records of one event, each bound and reported on its own."""

    source: str  # "timer", "cloudevents", "mns-topic", "direct-batch"
    records: list[Record]


# ---------------------------------------------------------------------------------------------
# Payload decoding shared by every source: JSON object, JSON text (possibly double-encoded),
# or Base64 of JSON text.
# ---------------------------------------------------------------------------------------------


def decode_payload(value: Any, what: str) -> Any:
    """The JSON value inside ``value``: objects as they are, text parsed, Base64 text decoded."""
    for _ in range(3):  # a string holding JSON text, at most twice encoded
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text[:1] in ("{", "[", '"'):
            value = load_json(text, what)
            continue
        try:
            value = load_json(b64decode(text, what), what)
        except MalformedRequestError:
            raise MalformedRequestError(
                f"The {what} is neither JSON nor Base64 of JSON ({len(text)} characters)."
            ) from None
    return value


def _record(identity: str | None, raw: Any, what: str) -> Record:
    try:
        return Record(identity, decode_payload(raw, what))
    except AxnError as error:
        return Record(identity, error=error)


# ---------------------------------------------------------------------------------------------
# Timer: {triggerTime, triggerName, payload}; the payload is the configured string verbatim.
# ---------------------------------------------------------------------------------------------


def is_timer(value: Any) -> bool:
    return isinstance(value, dict) and {"triggerTime", "triggerName", "payload"} <= set(value)


def timer_payload(value: dict[str, Any]) -> Any:
    """The timer's payload as JSON, or None when it is not readable JSON."""
    try:
        return decode_payload(value.get("payload"), "timer payload")
    except AxnError:
        return None


def from_timer(value: dict[str, Any]) -> Batch:
    base = f"timer:{value.get('triggerName')}@{value.get('triggerTime')}"
    try:
        payload = decode_payload(value.get("payload"), "timer payload")
    except AxnError as error:
        return Batch("timer", [Record(base, error=error)])
    if isinstance(payload, list):
        if not payload:
            error = MalformedRequestError("The timer payload is an empty array; nothing to bind.")
            return Batch("timer", [Record(base, error=error)])
        return Batch("timer", [Record(f"{base}#{i}", item) for i, item in enumerate(payload)])
    return Batch("timer", [Record(base, payload)])


# ---------------------------------------------------------------------------------------------
# CloudEvents 1.0 (EventBridge: MNS queue, RocketMQ, RabbitMQ, Kafka, custom bus)
# ---------------------------------------------------------------------------------------------


def is_cloudevent(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("specversion") == "1.0"
        and isinstance(value.get("id"), str)
        and "source" in value
    )


def _mns_queue(ev: dict[str, Any], data: dict[str, Any]) -> Record:
    mid = data.get("messageId") or data.get("MessageId")
    ident = f"mns:{mid}" if mid else f"cloudevent:{ev['id']}"
    return _record(ident, data.get("messageBody"), "MNS message body")


def _rocketmq(ev: dict[str, Any], data: dict[str, Any]) -> Record:
    props = data.get("systemProperties") if isinstance(data.get("systemProperties"), dict) else {}
    key = props.get("UNIQ_KEY") or props.get("MSG_ID")
    ident = f"rocketmq:{key}" if key else f"cloudevent:{ev['id']}"
    return _record(ident, data.get("body"), "RocketMQ message body")


def _rabbitmq(ev: dict[str, Any], data: dict[str, Any]) -> Record:
    props = data.get("props") if isinstance(data.get("props"), dict) else {}
    mid = props.get("messageId")
    ident = f"rabbitmq:{mid}" if mid else f"cloudevent:{ev['id']}"
    return _record(ident, data.get("body"), "RabbitMQ message body")


def _kafka(ev: dict[str, Any], data: dict[str, Any]) -> Record:
    if all(data.get(k) is not None for k in ("topic", "partition", "offset")):
        ident = f"kafka:{data['topic']}/{data['partition']}/{data['offset']}"
    else:
        ident = f"cloudevent:{ev['id']}"
    return _record(ident, data.get("value"), "Kafka message value")


_BY_TYPE_PREFIX = (
    ("mns:Queue:", _mns_queue),
    ("mq:Topic:", _rocketmq),
    ("amqp:Queue:", _rabbitmq),
    ("alikafka:Topic:", _kafka),
)


def from_cloudevent(ev: dict[str, Any]) -> Record:
    etype = str(ev.get("type") or "")
    data = ev.get("data")
    for prefix, adapter in _BY_TYPE_PREFIX:
        if etype.startswith(prefix):
            if not isinstance(data, dict):
                return Record(
                    f"cloudevent:{ev['id']}",
                    error=MalformedRequestError(
                        f"The {shown(etype, 100)} event has no data object."
                    ),
                )
            return adapter(ev, data)
    # A custom bus: `data` is the bind request itself (or JSON text / Base64 of it).
    return _record(f"cloudevent:{ev.get('source')}/{ev['id']}", data, "CloudEvent data")


def from_cloudevents(events: list[dict[str, Any]]) -> Batch:
    return Batch("cloudevents", [from_cloudevent(ev) for ev in events])


# ---------------------------------------------------------------------------------------------
# MNS topic trigger: JSON format {TopicOwner, Message, MessageId, ...} and STREAM {body, attrs}
# ---------------------------------------------------------------------------------------------


def is_mns_topic_json(value: Any) -> bool:
    return isinstance(value, dict) and "Message" in value and "TopicName" in value


def from_mns_topic_json(value: dict[str, Any]) -> Batch:
    mid = value.get("MessageId")
    ident = f"mns-topic:{mid}" if mid else None
    return Batch("mns-topic", [_record(ident, value.get("Message"), "MNS topic message")])


def is_mns_topic_stream(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"body", "attrs"}


def from_mns_topic_stream(value: dict[str, Any]) -> Batch:
    return Batch("mns-topic", [_record(None, value.get("body"), "MNS topic message")])


def from_raw_message(payload: Any) -> Batch:
    """A raw MNS topic STREAM body that arrived Base64-encoded (a direct call never does)."""
    return Batch("mns-topic", [Record(None, payload)])
