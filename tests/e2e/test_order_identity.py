"""An order is one order: PoolKey + OutOrderId is bound at most once, whatever Idempotency-Key
or message identity a retry carries, and a replay never presents an expired binding as live.

Handler → idempotency store → emulator, on the memory store and on the real Redis.
"""

from __future__ import annotations

import json
import time

import pytest

from axn_bind import app
from tests.conftest import call, post
from tests.e2e.conftest import bind_count
from tools.fc_local import http_event

pytestmark = pytest.mark.usefixtures("store")  # each test on the memory store and on Redis

ORDER = {"PhoneNoA": "13900000001", "TtlSeconds": 3600, "OutOrderId": "DD-one"}


def queue_message(body: dict, message_id: str = "M-1") -> list[dict]:
    """An EventBridge batch of one MNS queue message."""
    return [
        {
            "specversion": "1.0",
            "id": f"ce-{message_id}",
            "source": "MNS-axn-bind",
            "type": "mns:Queue:SendMessage",
            "data": {"messageId": message_id, "messageBody": json.dumps(body)},
        }
    ]


def test_a_retry_with_a_new_idempotency_key_replays_the_orders_binding(emulator):
    status, _, first = post(ORDER, headers={"Idempotency-Key": "try-1"})
    assert status == 200
    status, headers, again = post(ORDER, headers={"Idempotency-Key": "try-2"})
    assert status == 200 and headers["Idempotent-Replayed"] == "true"
    assert again["SecretBindDTO"] == first["SecretBindDTO"]
    assert bind_count(emulator) == 1 and len(emulator.bindings()) == 1


def test_the_same_order_with_other_data_is_refused_naming_the_order(emulator):
    post(ORDER, headers={"Idempotency-Key": "try-1"})
    status, _, body = post(
        {**ORDER, "PhoneNoA": "13900000002"}, headers={"Idempotency-Key": "try-2"}
    )
    assert (status, body["Code"]) == (409, "IdempotencyKeyReused")
    assert "OutOrderId 'DD-one'" in body["Message"]
    assert "bound once" in body["Message"]
    assert bind_count(emulator) == 1


def test_an_order_bound_over_http_is_replayed_when_it_arrives_as_a_queue_message(emulator):
    status, _, first = post(ORDER, headers={"Idempotency-Key": "from-the-api"})
    assert status == 200
    report = call(queue_message(ORDER))
    [record] = report["Records"]
    assert record["Result"] == "bound" and record["Replayed"] is True
    assert record["SecretBindDTO"] == first["SecretBindDTO"]
    # ... and the other way round: a queued order, then the same order over HTTP.
    second = {**ORDER, "OutOrderId": "DD-two"}
    [record] = call(queue_message(second, "M-2"))["Records"]
    status, headers, body = post(second)
    assert status == 200 and headers["Idempotent-Replayed"] == "true"
    assert body["SecretBindDTO"] == record["SecretBindDTO"]
    assert bind_count(emulator) == 2 and len(emulator.bindings()) == 2


def test_the_header_key_still_protects_a_request_without_an_order(emulator):
    request = {"PhoneNoA": "13900000003", "TtlSeconds": 3600}
    post(request, headers={"Idempotency-Key": "no-order"})
    status, headers, _ = post(request, headers={"Idempotency-Key": "no-order"})
    assert status == 200 and headers["Idempotent-Replayed"] == "true"
    assert bind_count(emulator) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Idempotency-Key": "try-1", "idempotency-key": "try-2"},
        {"IDEMPOTENCY-KEY": "try-1", "Idempotency-Key": "try-2"},
        {"Idempotency-Key": ["try-1", "try-2"]},
        {"Content-Type": "application/json", "content-type": "text/plain"},
    ],
)
def test_a_header_sent_twice_with_different_values_is_refused(emulator, headers):
    response = call(http_event("POST", json.dumps(ORDER), headers=headers))
    body = json.loads(response["body"])
    assert (response["statusCode"], body["Code"]) == (400, "MalformedRequest")
    assert "more than once with different values" in body["Message"]
    assert bind_count(emulator) == 0


def test_a_header_sent_twice_with_the_same_value_is_one_header(emulator):
    headers = {"Idempotency-Key": "same", "idempotency-key": "same"}
    response = call(http_event("POST", ORDER, headers=headers))
    assert response["statusCode"] == 200
    assert bind_count(emulator) == 1


def test_a_replay_after_the_expiration_says_the_binding_has_expired(emulator):
    status, headers, first = post({**ORDER, "TtlSeconds": 120})
    assert status == 200 and "Expired" not in first
    assert len(first["Expiration"]) == len("2030-01-01 12:00:00")
    status, headers, live = post({**ORDER, "TtlSeconds": 120})  # within the TTL: live
    assert headers["Idempotent-Replayed"] == "true" and "Expired" not in live

    service = app.service()
    service.wall_clock = lambda: time.time() + 3600  # an hour later
    status, headers, later = post({**ORDER, "TtlSeconds": 120})

    assert status == 200 and headers["Idempotent-Replayed"] == "true"
    assert later["Expired"] is True
    assert later["SecretBindDTO"] == first["SecretBindDTO"]
    assert later["Expiration"] == first["Expiration"]
    assert bind_count(emulator) == 1  # never bound again
