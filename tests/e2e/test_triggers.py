"""``parse_event`` on its own (no emulator): every shape, message identity, body encodings, and
garbage. The last tests feed random and truncated bytes through the whole handler."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from axn_bind.errors import AxnError, MalformedRequestError, UnsupportedEventError
from axn_bind.triggers import Batch, DirectRequest, HttpRequest, Record, SweepRequest, parse_event
from tests.conftest import call
from tests.e2e.test_events import PROJECT_EVENTS, SHARED_EVENTS
from tools.fc_local import FcContext, http_event

REQ = {"PhoneNoA": "13900000001", "TtlSeconds": 3600}
REQ2 = {"PhoneNoA": "13900000002", "TtlSeconds": 600, "OutOrderId": "DD2"}


def b(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def text(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def b64(value) -> str:
    return base64.b64encode(text(value).encode()).decode()


def cloudevent(etype: str, data, eid: str = "ce-1", source: str = "acs:test") -> dict:
    return {"specversion": "1.0", "id": eid, "source": source, "type": etype, "data": data}


def mns_queue(body, **data) -> dict:
    return cloudevent("mns:Queue:SendMessage", {"messageBody": body, **data})


def rocketmq(body, **props) -> dict:
    return cloudevent(
        "mq:Topic:SendMessage", {"topic": "t", "systemProperties": props, "body": body}
    )


def rabbitmq(body, message_id: str | None = "r-1") -> dict:
    props = {"messageId": message_id} if message_id else {}
    return cloudevent("amqp:Queue:SendMessage", {"body": body, "props": props})


def kafka(value, topic="orders", partition=0, offset=0) -> dict:
    data = {"topic": topic, "partition": partition, "offset": offset, "value": value}
    return cloudevent("alikafka:Topic:Message", data)


def only(batch) -> Record:
    assert isinstance(batch, Batch)
    [record] = batch.records
    return record


# --- HTTP shapes and direct invocations ------------------------------------------------------


def test_fc3_http_trigger():
    req = parse_event(http_event("POST", REQ, query={"a": "1"}))
    assert isinstance(req, HttpRequest)
    assert (req.source, req.method, req.path, req.query) == ("http", "POST", "/", {"a": "1"})
    assert req.header("CONTENT-TYPE") == "application/json"
    assert json.loads(req.raw_body) == REQ


def test_api_gateway_event():
    event = {"path": "/v1/bind", "httpMethod": "post", "headers": {"X-A": "1"}, "body": b64(REQ)}
    req = parse_event(b({**event, "isBase64Encoded": True}))
    assert isinstance(req, HttpRequest)
    assert (req.source, req.method, req.path, req.base64) == ("apigw", "POST", "/v1/bind", True)
    assert req.header("x-a") == "1"


def test_direct_request_and_input_types():
    for event in (b(REQ), text(REQ), bytearray(b(REQ)), memoryview(b(REQ)), dict(REQ)):
        assert parse_event(event) == DirectRequest(REQ)


def test_base64_text_is_a_raw_mns_topic_message_not_a_direct_call():
    # Only a raw MNS topic STREAM body arrives as Base64 text; it must be redeliverable.
    expected = Batch("mns-topic", [Record(None, REQ)])
    assert parse_event(b64(REQ).encode()) == expected
    assert parse_event(b"  " + b64(REQ).encode() + b"\n") == expected


def test_direct_batch_is_not_mapped_and_has_no_identity():
    batch = parse_event(b([REQ, REQ2, "junk"]))
    assert batch.source == "direct-batch"
    assert [(r.id, r.payload, r.foreign, r.error) for r in batch.records] == [
        (None, REQ, False, None),
        (None, REQ2, False, None),
        (None, "junk", False, None),
    ]


# --- Timer ------------------------------------------------------------------------------------


def test_timer_payload_is_json_text():
    event = {"triggerTime": "2024-05-01T00:00:00Z", "triggerName": "nightly", "payload": text(REQ)}
    batch = parse_event(b(event))
    assert batch.source == "timer"
    assert only(batch) == Record("timer:nightly@2024-05-01T00:00:00Z", REQ)


def test_timer_payload_array_gives_one_record_each():
    event = {"triggerTime": "T", "triggerName": "n", "payload": text([REQ, REQ2])}
    records = parse_event(b(event)).records
    assert [(r.id, r.payload) for r in records] == [("timer:n@T#0", REQ), ("timer:n@T#1", REQ2)]


def test_timer_payload_double_encoded_or_base64():
    for payload in (json.dumps(text(REQ)), b64(REQ)):
        event = {"triggerTime": "T", "triggerName": "n", "payload": payload}
        assert only(parse_event(b(event))).payload == REQ


def test_timer_payload_that_is_not_json_is_a_rejected_record():
    for payload in ("awesome-fc", "", "{not json"):
        event = {"triggerTime": "T", "triggerName": "n", "payload": payload}
        record = only(parse_event(b(event)))
        assert record.id == "timer:n@T"
        assert isinstance(record.error, MalformedRequestError)
        assert "timer payload" in record.error.message


# --- CloudEvents ------------------------------------------------------------------------------


def test_single_cloudevent_object_and_array_are_both_batches():
    single = parse_event(b(mns_queue(text(REQ), messageId="M1")))
    array = parse_event(b([mns_queue(text(REQ), messageId="M1")]))
    assert single == array
    assert single.source == "cloudevents"
    assert only(single) == Record("mns:M1", REQ)


@pytest.mark.parametrize(
    "body",
    [text(REQ), b64(REQ), json.dumps(text(REQ)), REQ, " " + text(REQ) + "\n"],
    ids=["json-text", "base64", "double-encoded", "object", "padded"],
)
def test_mns_queue_body_encodings(body):
    assert only(parse_event(b([mns_queue(body, messageId="M1")]))).payload == REQ


def test_mns_queue_url_safe_base64_body():
    req = {"PhoneNoA": "13900000001", "TtlSeconds": 3600, "OutId": "??>>??"}
    body = base64.urlsafe_b64encode(text(req).encode()).decode().rstrip("=")
    assert "-" in body or "_" in body
    assert only(parse_event(b([mns_queue(body)]))).payload == req


def test_mns_queue_identity():
    events = [
        mns_queue(text(REQ), messageId="m-lower"),
        mns_queue(text(REQ), MessageId="M-UPPER"),
        mns_queue(text(REQ), requestId="r"),
    ]
    events[2]["id"] = "ce-3"
    assert [r.id for r in parse_event(b(events)).records] == [
        "mns:m-lower",
        "mns:M-UPPER",
        "cloudevent:ce-3",
    ]


def test_rocketmq_identity_and_body():
    assert only(parse_event(b([rocketmq(text(REQ), UNIQ_KEY="UK1", MSG_ID="MID")]))) == Record(
        "rocketmq:UK1", REQ
    )
    assert only(parse_event(b([rocketmq(b64(REQ), MSG_ID="MID")]))).id == "rocketmq:MID"
    record = only(parse_event(b([rocketmq("TEST")])))
    assert record.id == "cloudevent:ce-1"
    assert isinstance(record.error, MalformedRequestError)
    assert "RocketMQ message body" in record.error.message


@pytest.mark.parametrize("body", [REQ, text(REQ), b64(REQ)], ids=["object", "text", "base64"])
def test_rabbitmq_body(body):
    assert only(parse_event(b([rabbitmq(body)]))) == Record("rabbitmq:r-1", REQ)


def test_rabbitmq_without_message_id_falls_back_to_the_cloudevent_id():
    assert only(parse_event(b([rabbitmq(REQ, None)]))).id == "cloudevent:ce-1"


@pytest.mark.parametrize("value", [REQ, text(REQ), b64(REQ)], ids=["object", "text", "base64"])
def test_kafka_value(value):
    assert only(parse_event(b([kafka(value, "orders", 7, 25)]))) == Record("kafka:orders/7/25", REQ)


def test_kafka_identity_keeps_partition_and_offset_zero():
    assert only(parse_event(b([kafka(REQ, "t", 0, 0)]))).id == "kafka:t/0/0"
    event = kafka(REQ)
    del event["data"]["offset"]
    assert only(parse_event(b([event]))).id == "cloudevent:ce-1"


def test_custom_bus_data_is_the_bind_request():
    for data in (REQ, text(REQ), b64(REQ)):
        event = cloudevent("order:Rider:Assigned", data, eid="e-9", source="order.dispatch")
        assert only(parse_event(b(event))) == Record("cloudevent:order.dispatch/e-9", REQ)


def test_known_source_without_a_data_object_is_a_rejected_record():
    record = only(parse_event(b([cloudevent("mns:Queue:SendMessage", "oops")])))
    assert record.id == "cloudevent:ce-1"
    assert isinstance(record.error, MalformedRequestError)


def test_one_unreadable_message_does_not_spoil_the_others():
    events = [
        kafka(REQ, offset=1),
        kafka("hello kafka msg", offset=2),
        kafka("{trunc", offset=3),
        kafka(b64(REQ2), offset=4),
    ]
    records = parse_event(b(events)).records
    assert [r.id for r in records] == [f"kafka:orders/0/{i}" for i in (1, 2, 3, 4)]
    assert [r.payload for r in records] == [REQ, None, None, REQ2]
    assert [type(r.error) for r in records] == [
        type(None),
        MalformedRequestError,
        MalformedRequestError,
        type(None),
    ]
    assert all(r.foreign for r in records)


# --- MNS topic ---------------------------------------------------------------------------------


def topic_json(message, **extra) -> dict:
    return {
        "TopicOwner": "1186",
        "Message": message,
        "Subscriber": "1186",
        "PublishTime": 1550216480040,
        "SubscriptionName": "s",
        "MessageMD5": "BA4B",
        "TopicName": "orders",
        "MessageId": "2F5B",
        **extra,
    }


@pytest.mark.parametrize(
    "message", [text(REQ), json.dumps(text(REQ)), b64(REQ)], ids=["text", "double", "base64"]
)
def test_mns_topic_json(message):
    batch = parse_event(b(topic_json(message, key="attr")))
    assert batch.source == "mns-topic"
    assert only(batch) == Record("mns-topic:2F5B", REQ)


def test_mns_topic_stream_with_attrs():
    for body in (text(REQ), b64(REQ)):
        batch = parse_event(b({"body": body, "attrs": {"Extend": '{"k":"v"}'}}))
        assert batch.source == "mns-topic"
        assert only(batch) == Record(None, REQ)


def test_mns_topic_stream_raw_body():
    # JSON text cannot be told from a direct call and is answered like one; Base64 can.
    assert parse_event(text(REQ).encode()) == DirectRequest(REQ)
    assert parse_event(b64(REQ).encode()) == Batch("mns-topic", [Record(None, REQ)])
    with pytest.raises(UnsupportedEventError, match="11 bytes"):
        parse_event(b"hello topic")


# --- Everything else ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "names"),
    [
        (b"", "empty"),
        (b" \n\t", "empty"),
        (b"[]", "empty JSON array"),
        (b"42", "JSON int"),
        (b'"just a string"', "JSON str"),
        (b"null", "JSON NoneType"),
        (b"true", "JSON bool"),
        (b"hello topic", "neither JSON nor Base64"),
        (b"\xff\xfe\x00garbage", "neither JSON nor Base64"),
        (
            b'{"events":[{"eventName":"ObjectCreated:PutObject","eventSource":"acs:oss"}]}',
            "acs:oss",
        ),
        (
            b'{"timestamp":1,"requestContext":{"requestId":"x"},"requestPayload":"",'
            b'"responseContext":{"statusCode":200},"responsePayload":""}',
            "destination",
        ),
    ],
)
def test_unsupported_events_name_what_was_seen(event, names):
    with pytest.raises(UnsupportedEventError) as info:
        parse_event(event)
    assert names in info.value.message


def test_not_bytes_at_all():
    with pytest.raises(UnsupportedEventError, match="int"):
        parse_event(42)


@pytest.mark.parametrize(
    ("event", "names"),
    [
        (b'{"PhoneNoA": "13900000001",', "not valid JSON"),
        (b"[" * 40 + b"]" * 40, "nested more than 32"),
        (b'{"PhoneNoA": "\xff"}', "not UTF-8"),
    ],
)
def test_broken_json_is_malformed(event, names):
    with pytest.raises(MalformedRequestError) as info:
        parse_event(event)
    assert names in info.value.message


def test_oversized_event_is_refused_before_parsing():
    with pytest.raises(MalformedRequestError, match="larger than"):
        parse_event(b" " * (32 * 1024 * 1024 + 1))


def test_deeply_nested_message_body_is_a_rejected_record():
    body = "[" * 40 + "]" * 40
    record = only(parse_event(b([mns_queue(body, messageId="M")])))
    assert record.id == "mns:M"
    assert "nested" in record.error.message


# --- What a caller sent, quoted in an answer ---------------------------------------------------

NUMBER = "13912345678"


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize(
    "event",
    [
        http_event("POST", REQ, path=f"/bind/{NUMBER}"),
        http_event(NUMBER, REQ),
        http_event("POST", "x", headers={"Content-Type": f"text/{NUMBER}"}),
        http_event("POST", {NUMBER: "1"}, query={NUMBER: "1"}),
        b({"events": [{"eventSource": f"acs:{NUMBER}", "eventName": NUMBER}]}),
        b([cloudevent(f"mns:Queue:{NUMBER}", "no data object")]),
        b({**REQ, NUMBER: "x"}),
    ],
    ids=["path", "method", "content-type", "query-and-body", "oss", "event-type", "field-name"],
)
def test_what_a_caller_sent_is_quoted_with_phone_numbers_masked(event):
    answer = call(event, FcContext())
    text = answer["body"] if "body" in answer else json.dumps(answer, ensure_ascii=False)
    assert "139****5678" in text
    assert NUMBER not in text


@pytest.mark.usefixtures("env")
def test_long_paths_methods_and_content_types_are_quoted_cut_short():
    for event in (
        http_event("POST", REQ, path="/" + "p" * 100_000),
        http_event("M" * 100_000, REQ),
        http_event("POST", "x", headers={"Content-Type": "t/" + "c" * 100_000}),
    ):
        answer = call(event, FcContext())
        assert len(answer["body"]) < 1000, answer["statusCode"]


# --- Random bytes and truncations --------------------------------------------------------------

SAMPLES = sorted(
    p
    for folder in (PROJECT_EVENTS, SHARED_EVENTS)
    for p in folder.iterdir()
    if p.name != "README.md"
)
SAMPLE_BYTES = [p.read_bytes() for p in SAMPLES]


@st.composite
def damaged_samples(draw) -> bytes:
    raw = draw(st.sampled_from(SAMPLE_BYTES))
    how = draw(st.sampled_from(["truncate", "flip", "splice"]))
    if how == "truncate":
        return raw[: draw(st.integers(0, len(raw)))]
    if how == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        return raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    junk = draw(st.binary(max_size=16))
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + junk + raw[at:]


EVENT_BYTES = st.one_of(st.binary(max_size=256), damaged_samples())


@settings(max_examples=400, deadline=None)
@given(EVENT_BYTES)
@example(b"\x00")
@example(b"[null]")
@example(b'{"specversion":"1.0","id":"x","source":"s","type":"mns:Queue:SendMessage","data":{}}')
def test_parse_event_raises_only_its_own_errors(event):
    try:
        parsed = parse_event(event)
    except AxnError as error:
        assert error.code in ("UnsupportedEvent", "MalformedRequest")
        assert error.message
        return
    assert isinstance(parsed, (HttpRequest, DirectRequest, Batch, SweepRequest))


@pytest.mark.usefixtures("env")
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(EVENT_BYTES)
@example(b"[1, null, [], {}]")
@example(b'{"triggerTime":"t","triggerName":"n","payload":"[]"}')
def test_handler_answers_random_and_truncated_events_with_a_dict(emulator, event):
    result = call(event, FcContext())
    assert isinstance(result, dict)
    assert result.get("Code") or result.get("statusCode")
    # nothing but the emulator was ever called: every request it saw came from this function
    assert all(r.get("action") == "BindAxnExtension" for r in emulator.requests())


def test_timer_with_an_empty_array_payload_is_a_rejected_record():
    batch = parse_event(b({"triggerTime": "t", "triggerName": "n", "payload": "[]"}))
    [record] = batch.records
    assert isinstance(record.error, MalformedRequestError)
    assert "empty array" in record.error.message


def test_a_direct_request_encoded_twice_is_read():
    assert parse_event(json.dumps(json.dumps(REQ)).encode()) == DirectRequest(REQ)


def test_a_byte_order_mark_is_tolerated():
    assert parse_event(b"\xef\xbb\xbf" + json.dumps(REQ).encode()) == DirectRequest(REQ)
