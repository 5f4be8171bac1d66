"""The announcement: CloudEvents 1.0 structured JSON, a stable id, and nothing personal in it."""

from __future__ import annotations

import json

from axn_bind.publish import event as ev

SOURCE = ev.source_of("axn-bind", "cn-hangzhou", "1234567890123456")
REQUEST = {
    "PoolKey": "FC100000000000001",
    "PhoneNoA": "13912345678",
    "PhoneNoB": "13800001111",
    "Expiration": "2030-01-01 12:00:00",
    "OutOrderId": "DD-1",
    "OutId": "shop-42",
}
DTO = {"SecretNo": "17000000001", "Extension": "100", "SubsId": "1000000800000001"}


def created(**kw):
    args = {
        "source": SOURCE,
        "when": 1_900_000_000.0,
        "pool_key": "FC100000000000001",
        "binding": DTO,
        "request": REQUEST,
        "upstream_request_id": "R-1",
    }
    return ev.created(**{**args, **kw})


def test_a_created_event_is_structured_cloudevents_json():
    body = json.loads(created().text)
    assert body["specversion"] == "1.0"
    assert body["type"] == "axn.binding.created"
    assert body["source"] == "acs:fc:cn-hangzhou:1234567890123456:functions/axn-bind"
    assert body["subject"] == "DD-1"
    assert body["time"] == "2030-03-17T17:46:40Z"
    assert body["datacontenttype"] == "application/json"
    assert body["data"] == {
        "OutOrderId": "DD-1",
        "OutId": "shop-42",
        "PoolKey": "FC100000000000001",
        "SubsId": "1000000800000001",
        "SecretNo": "17000000001",
        "Extension": "100",
        "Expiration": "2030-01-01 12:00:00",
        "PhoneNoA": "139****5678",
        "RequestId": "R-1",
        "Replayed": False,
    }


def test_the_id_is_the_binding_not_the_attempt():
    first = created()
    again = created(when=1_900_000_999.0, upstream_request_id="R-2", replayed=True)
    assert first.id == again.id  # a republish or a replay: consumers de-duplicate on it
    other = created(binding={**DTO, "SubsId": "1000000800000002"})
    assert other.id != first.id
    assert created(pool_key="FC100000000000002").id != first.id


def test_a_failure_has_its_own_stable_id_and_a_scrubbed_message():
    def failed(identity="axn:idem:ab", code="isv.MOBILE_NUMBER_ILLEGAL"):
        return ev.failed(
            source=SOURCE,
            when=1_900_000_000.0,
            identity=identity,
            code=code,
            message="number 13912345678 is not valid " + "x" * 400,
            request=REQUEST,
            upstream_request_id=None,
        )

    body = json.loads(failed().text)
    assert body["type"] == "axn.binding.failed"
    assert body["data"]["Code"] == "isv.MOBILE_NUMBER_ILLEGAL"
    assert "139****5678" in body["data"]["Message"] and len(body["data"]["Message"]) <= 300
    assert failed().id == failed().id
    assert failed(identity="axn:idem:cd").id != failed().id
    assert failed(code="isv.BIND_CONFLICT").id != failed().id
    assert failed().id != created().id


def test_no_customer_number_appears_in_any_event():
    for event in (
        created(),
        ev.failed(source=SOURCE, when=0, identity="i", code="C", message="13800001111 bad",
                  request=REQUEST, upstream_request_id=None),
    ):  # fmt: skip
        assert "13912345678" not in event.text and "13800001111" not in event.text
