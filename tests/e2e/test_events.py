"""Every sample event, the project's (`events/`) and the documentation's (`tests/data/events/`),
through the handler.

Each file's bytes go to ``index.handler`` exactly as FC would hand them over, against the emulator;
the outcome must be the one documented in ``events/README.md``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import call
from tests.e2e.conftest import bind_calls
from tests.privacy import MOBILE as PHONE  # a mobile number, never digits inside a hash
from tools.fc_local import FcContext

pytestmark = pytest.mark.usefixtures("env")

HERE = Path(__file__).resolve().parents[1]  # tests/
PROJECT_EVENTS = HERE.parent / "events"
SHARED_EVENTS = HERE / "data" / "events"  # the documentation's samples, copied unchanged


@dataclass(frozen=True)
class Http:
    status: int
    code: str


@dataclass(frozen=True)
class Direct:
    code: str


@dataclass(frozen=True)
class Sweep:
    """The sweep: it binds nothing and answers what it republished."""

    code: str


@dataclass(frozen=True)
class Unsupported:
    names: str  # what the message must mention


@dataclass(frozen=True)
class Report:
    source: str
    records: list[tuple[str | None, str, str]]  # (Id, Result, Code)
    phones: list[str] = field(default_factory=list)  # PhoneNoA of each binding made


PROJECT: dict[str, object] = {
    "http_post.json": Http(200, "OK"),
    "apigw.json": Http(200, "OK"),
    "direct.json": Direct("OK"),
    "direct_batch.json": Report(
        "direct-batch",
        [(None, "bound", "OK")] * 3,
        ["13900000021", "13900000022", "13900000023"],
    ),
    "timer.json": Report(
        "timer",
        [("timer:nightly-standby-bind@2024-05-01T00:00:00Z", "bound", "OK")],
        ["13900000031"],
    ),
    "timer_sweep.json": Sweep("OK"),  # nothing is owed while AXN_PUBLISH_TO is unset
    "mns_queue_batch.json": Report(
        "cloudevents",
        [
            ("mns:C6DB60D1574661357FA22727744500A1", "bound", "OK"),
            ("mns:C6DB60D1574661357FA22727744500A2", "bound", "OK"),
        ],
        ["13900000041", "13900000042"],
    ),
    "rocketmq.json": Report(
        "cloudevents",
        [("rocketmq:AC14C305069E1B0F4AAC76C8E2A10051", "bound", "OK")],
        ["13900000051"],
    ),
    "rabbitmq.json": Report(
        "cloudevents",
        [("rabbitmq:f7622d51-e198-41de-a072-77c1ead70061", "bound", "OK")],
        ["13900000061"],
    ),
    "kafka.json": Report(
        "cloudevents",
        [("kafka:axn-bind/3/1071", "bound", "OK"), ("kafka:axn-bind/3/1072", "bound", "OK")],
        ["13900000071", "13900000072"],
    ),
    "custom_bus.json": Report(
        "cloudevents",
        [("cloudevent:order.dispatch/7d0a3b6e-5c1f-4e2a-9b8d-1a2b3c4d0081", "bound", "OK")],
        ["13900000081"],
    ),
    "mns_topic_stream.json": Report("mns-topic", [(None, "bound", "OK")], ["13900000091"]),
    "mns_topic_stream_raw.txt": Report("mns-topic", [(None, "bound", "OK")], ["13900000092"]),
    "mns_topic_json.json": Report(
        "mns-topic",
        [("mns-topic:2F5B3C082B923D4EAC694B76D9280093", "bound", "OK")],
        ["13900000093"],
    ),
}

SHARED: dict[str, object] = {
    "http_fc3_v1.json": Http(404, "NotFound"),
    "http_fc3_from_s_invoke_api.json": Http(400, "MalformedRequest"),
    "apigw_event.json": Http(405, "MethodNotAllowed"),
    "timer.json": Report(
        "timer", [("timer:timer-trigger@2023-12-26T07:49:00Z", "rejected", "MalformedRequest")]
    ),
    "mns_queue_eb_batch.json": Report(
        "cloudevents",
        [("mns:C6DB60D1574661357FA227277445****", "rejected", "MalformedRequest")],
    ),
    "rocketmq_eb_batch.json": Report(
        "cloudevents",
        [("cloudevent:94ebc15f-f0db-4bbe-acce-56fb72fb****", "rejected", "MalformedRequest")],
    ),
    "rabbitmq_eb_batch.json": Report(
        "cloudevents",
        [("rabbitmq:f7622d51-e198-41de-a072-77c1ead7****", "rejected", "InvalidParameter")],
    ),
    "kafka_eb_batch.json": Report(
        "cloudevents", [("kafka:****/7/25", "rejected", "MalformedRequest")]
    ),
    "mns_topic_json_no_attrs.json": Report(
        "mns-topic",
        [("mns-topic:2F5B3C082B923D4EAC694B76D928****", "rejected", "MalformedRequest")],
    ),
    "mns_topic_json_with_attrs.json": Report(
        "mns-topic",
        [("mns-topic:2F5B3C281B283D4EAC694B742528****", "rejected", "MalformedRequest")],
    ),
    "mns_topic_stream_with_attrs.json": Report(
        "mns-topic", [(None, "rejected", "MalformedRequest")]
    ),
    "mns_topic_stream_no_attrs.txt": Unsupported("11 bytes"),
    "oss_fc3_template.json": Unsupported("acs:oss"),
    "async_destination_envelope.json": Unsupported("destination"),
}


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file() and p.name != "README.md"}


def check(result, expected, emulator) -> None:
    """Assert that ``result`` (what the handler returned) is the ``expected`` outcome."""
    bindings = emulator.bindings()
    if isinstance(expected, Http):
        assert set(result) == {"statusCode", "headers", "isBase64Encoded", "body"}
        body = json.loads(result["body"])
        assert (result["statusCode"], body["Code"]) == (expected.status, expected.code), body
        assert len(bindings) == (1 if expected.code == "OK" else 0)
        if expected.code == "OK":
            assert bindings[0]["SubsId"] == body["SecretBindDTO"]["SubsId"]
    elif isinstance(expected, Direct):
        assert result["Code"] == expected.code, result
        [made] = bindings
        assert made["SubsId"] == result["SecretBindDTO"]["SubsId"]
    elif isinstance(expected, Sweep):
        assert result["Code"] == expected.code, result
        assert "AXN_PUBLISH_TO is not set" in result["Message"]
        assert not bindings and not emulator.requests()
    elif isinstance(expected, Unsupported):
        assert result["Code"] == "UnsupportedEvent", result
        assert expected.names in result["Message"]
        assert "RequestId" in result
        assert not emulator.requests()
    else:
        assert isinstance(expected, Report)
        assert result["Source"] == expected.source
        got = [(r["Id"], r["Result"], r["Code"]) for r in result["Records"]]
        assert got == expected.records, result
        assert [r["Index"] for r in result["Records"]] == list(range(len(got)))
        all_bound = all(r[1] == "bound" for r in expected.records)
        assert result["Code"] == ("OK" if all_bound else "PartialFailure")
        assert [b["PhoneNoA"] for b in bindings] == expected.phones
        subs = [r["SecretBindDTO"]["SubsId"] for r in result["Records"] if r["Result"] == "bound"]
        assert subs == [b["SubsId"] for b in bindings]
        for record in result["Records"]:
            if record["Result"] == "rejected":
                assert record["Message"]
                assert "SecretBindDTO" not in record
        if not expected.phones:
            assert not bind_calls(emulator)  # placeholders are refused before any call


def test_every_project_event_is_documented():
    assert _files(PROJECT_EVENTS) == set(PROJECT)
    readme = (PROJECT_EVENTS / "README.md").read_text(encoding="utf-8")
    for name in PROJECT:
        assert f"`{name}`" in readme


def test_every_shared_sample_is_documented():
    assert _files(SHARED_EVENTS) == set(SHARED)
    readme = (PROJECT_EVENTS / "README.md").read_text(encoding="utf-8")
    for name in SHARED:
        assert name in readme or name.startswith("mns_topic_json_")


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_project_event(name, emulator):
    raw = (PROJECT_EVENTS / name).read_bytes()
    result = call(raw, FcContext())
    check(result, PROJECT[name], emulator)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_sample(name, emulator):
    raw = (SHARED_EVENTS / name).read_bytes()
    result = call(raw, FcContext())
    check(result, SHARED[name], emulator)


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_project_events_follow_the_sample_rules(name):
    """Static files: TtlSeconds, never a fixed Expiration; 139 test numbers; no PoolKey."""
    text = (PROJECT_EVENTS / name).read_text(encoding="utf-8")
    if name.endswith(".txt"):
        text = base64.b64decode(text).decode()
    value = _unwrap(json.loads(text))
    if isinstance(PROJECT[name], Sweep):
        assert value["payload"] == {"action": "sweep"}  # an action, no bind request
        return
    decoded = json.dumps(value, ensure_ascii=False)
    assert "TtlSeconds" in decoded
    assert "Expiration" not in decoded
    assert "PoolKey" not in decoded
    phones = PHONE.findall(json.dumps(_phone_fields(value)))
    assert phones
    assert all(p.startswith("139000000") for p in phones)


def _phone_fields(value) -> list:
    if isinstance(value, list):
        return [p for v in value for p in _phone_fields(v)]
    if isinstance(value, dict):
        own = [v for k, v in value.items() if k.startswith("PhoneNo")]
        return own + [p for v in value.values() for p in _phone_fields(v)]
    return []


def _unwrap(value):
    """Every nested JSON text and Base64 body decoded, so the rules see the bind requests."""
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, str):
        if value[:1] in "{[":
            return _unwrap(json.loads(value))
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, ValueError):
            return value
        if decoded[:1] in "{[":
            return _unwrap(json.loads(decoded))
    return value


def test_make_invoke_runs_a_project_event(emulator, capsys):
    """`make invoke EVENT=events/…` uses the emulator the environment points at."""
    from tools import invoke

    assert invoke.main([str(PROJECT_EVENTS / "kafka.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["Result"] for r in printed["Records"]] == ["bound", "bound"]
    assert len(emulator.bindings()) == 2
