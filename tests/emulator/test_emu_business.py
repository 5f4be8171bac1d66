"""Business rules of the emulator: validation, allocation, conflicts, expiry, query and unbind."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.dypls_emulator import (
    DEFAULT_POOL_KEY,
    EMPTY_POOL_KEY,
    STRICT_POOL_KEY,
    Emulator,
    EmulatorAdmin,
    Pool,
    XNumber,
)
from tools.dypls_emulator.business import is_phone_number
from tools.dypls_emulator.client import Reply, SignedClient
from tools.dypls_emulator.clock import SHANGHAI, format_shanghai

BindFn = Callable[..., Reply]
BEIJING = {"17000000001", "17000000002", "17000000003"}
SHANGHAI_X = {"17100000001", "17100000002"}


def _code(reply: Reply) -> str:
    assert reply.status == 200, reply.body
    return str(reply.json()["Code"])


def _dto(reply: Reply) -> dict[str, str]:
    body = reply.json()
    assert body["Code"] == "OK", body
    dto = body["SecretBindDTO"]
    assert isinstance(dto, dict)
    return {str(k): str(v) for k, v in dto.items()}


def _later(emulator: Emulator, seconds: float) -> str:
    return format_shanghai(emulator.service.clock.now() + seconds)


def test_success_shape(bind: BindFn) -> None:
    reply = bind()
    body = reply.json()
    assert set(body) == {"Code", "Message", "RequestId", "SecretBindDTO"}
    assert body["Message"] == "OK"
    assert re.fullmatch(
        r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}", str(body["RequestId"])
    )
    dto = _dto(reply)
    assert re.fullmatch(r"\d{16}", dto["SubsId"])
    assert re.fullmatch(r"\d{1,3}", dto["Extension"])


def test_binding_records_every_field(emulator: Emulator, bind: BindFn, expiration: str) -> None:
    dto = _dto(
        bind(
            PhoneNoB="13800000000",
            OutId="out-1",
            OutOrderId="order-1",
            IsRecordingEnabled="true",
            CallRestrict="CONTROL_BX_DISABLE",
        )
    )
    [binding] = emulator.bindings()
    assert binding["SubsId"] == dto["SubsId"]
    assert binding["SecretNo"] == dto["SecretNo"]
    assert binding["Extension"] == dto["Extension"]
    assert binding["PoolKey"] == DEFAULT_POOL_KEY
    assert binding["PhoneNoA"] == "13900000001"
    assert binding["PhoneNoB"] == "13800000000"
    assert (binding["OutId"], binding["OutOrderId"]) == ("out-1", "order-1")
    assert binding["Expiration"] == expiration
    assert binding["NeedRecord"] is True
    assert binding["status"] == "active"


# --- validation ------------------------------------------------------------------------------


def test_unknown_pool(bind: BindFn) -> None:
    assert _code(bind(PoolKey="FC100000099999999")) == "isv.POOLKEY_NOT_EXISTS"


@pytest.mark.parametrize(
    "number",
    [
        "1390000000",
        "139000000011",
        "23900000000",
        "0571-88992688",
        "0571889926881",
        "057188992",
        "057188",
        "+8613900000000",
    ],
)
@pytest.mark.parametrize("field", ["PhoneNoA", "PhoneNoB"])
def test_illegal_numbers(bind: BindFn, field: str, number: str) -> None:
    assert _code(bind(**{field: number})) == "isv.MOBILE_NUMBER_ILLEGAL"


@pytest.mark.parametrize("number", ["057188992688", "0108888999", "13900000002"])
def test_landline_and_mobile_accepted(bind: BindFn, number: str) -> None:
    assert _code(bind(PhoneNoA=number, PhoneNoB=number)) == "OK"


@given(st.text(alphabet="0123456789-+ ", max_size=14))
def test_phone_rule(value: str) -> None:
    expected = bool(re.fullmatch(r"1\d{10}|0\d{9,11}", value))
    assert is_phone_number(value) is expected


@pytest.mark.parametrize(
    "expiration",
    ["2030-01-01T00:00:00", "2030-01-01", "2030/01/01 00:00:00", "2030-13-01 00:00:00"],
)
def test_expiration_format(bind: BindFn, expiration: str) -> None:
    assert _code(bind(Expiration=expiration)) == "isv.EXPIRE_DATE_ILLEGAL"


def test_expiration_must_be_more_than_a_minute_ahead(emulator: Emulator, bind: BindFn) -> None:
    assert _code(bind(Expiration=_later(emulator, 30))) == "isv.EXPIRE_DATE_ILLEGAL"
    assert _code(bind(Expiration=_later(emulator, 120))) == "OK"


def test_expiration_is_read_as_shanghai_time(emulator: Emulator, bind: BindFn) -> None:
    from datetime import datetime, timezone

    utc_text = datetime.fromtimestamp(emulator.service.clock.now() + 3600, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    assert _code(bind(Expiration=utc_text)) == "isv.EXPIRE_DATE_ILLEGAL"
    local = datetime.fromtimestamp(emulator.service.clock.now() + 3600, SHANGHAI)
    assert _code(bind(Expiration=local.strftime("%Y-%m-%d %H:%M:%S"))) == "OK"


@pytest.mark.parametrize("extension", ["1234", "1a", "-1"])
def test_extension_format(bind: BindFn, extension: str) -> None:
    assert _code(bind(PhoneNoX="17000000001", Extension=extension)) == "isv.INVALID_PARAMETERS"


def test_extension_needs_phone_no_x(bind: BindFn) -> None:
    reply = bind(Extension="130")
    assert _code(reply) == "isv.ILLEGAL_ARGUMENT"
    assert reply.json()["Message"] == "extension can must be null"


def test_phone_no_x_outside_pool(bind: BindFn) -> None:
    reply = bind(PhoneNoX="17100000011")
    assert _code(reply) == "isv.FORBIDDEN_ACTION"
    assert "createSubs" in str(reply.json()["Message"])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IsRecordingEnabled", "True"),
        ("IsRecordingEnabled", "1"),
        ("ASRStatus", "yes"),
        ("CallDisplayType", "2"),
        ("CallRestrict", "CONTROL_AB_DISABLE"),
    ],
)
def test_invalid_options(bind: BindFn, name: str, value: str) -> None:
    assert _code(bind(**{name: value})) == "isv.INVALID_PARAMETERS"


def test_valid_options_and_unknown_parameters(bind: BindFn) -> None:
    reply = bind(
        IsRecordingEnabled="false",
        ASRStatus="true",
        ASRModelId="m-1",
        CallDisplayType="1",
        CallRestrict="CONTROL_AX_DISABLE",
        RingConfig="AXNRing_A:100001",
        SomethingNew="ignored",
    )
    assert _code(reply) == "OK"


# --- allocation ------------------------------------------------------------------------------


def test_expect_city_picks_that_city(bind: BindFn) -> None:
    assert _dto(bind(ExpectCity="上海"))["SecretNo"] in SHANGHAI_X
    assert _dto(bind(PhoneNoA="13900000002", ExpectCity="杭州"))["SecretNo"] == "17100000003"


def test_normal_pool_falls_back_to_other_cities(emulator: Emulator, bind: BindFn) -> None:
    assert _dto(bind(ExpectCity="广州"))["SecretNo"]
    emulator.set_max_extensions(1)
    _dto(bind(PhoneNoA="13900000002", ExpectCity="杭州"))
    fallback = _dto(bind(PhoneNoA="13900000003", ExpectCity="杭州"))
    assert fallback["SecretNo"] != "17100000003"


def test_strict_pool_stays_in_city(emulator: Emulator, bind: BindFn) -> None:
    assert _code(bind(PoolKey=STRICT_POOL_KEY, ExpectCity="广州")) == "isv.NO_AVAILABLE_NUMBER"
    assert _dto(bind(PoolKey=STRICT_POOL_KEY, ExpectCity="北京"))["SecretNo"] == "17000000011"
    emulator.set_max_extensions(1)
    reply = bind(PoolKey=STRICT_POOL_KEY, PhoneNoA="13900000002", ExpectCity="北京")
    assert _code(reply) == "isv.NO_AVAILABLE_NUMBER"
    without_city = bind(PoolKey=STRICT_POOL_KEY, PhoneNoA="13900000002")
    assert _dto(without_city)["SecretNo"] == "17100000011"


def test_empty_pool(bind: BindFn) -> None:
    assert _code(bind(PoolKey=EMPTY_POOL_KEY)) == "isv.NO_AVAILABLE_NUMBER"


def test_exhaustion_over_admin_api(emulator: Emulator, admin: EmulatorAdmin, bind: BindFn) -> None:
    admin.set_max_extensions(2)
    seen = []
    for i in range(12):
        dto = _dto(bind(PhoneNoA=f"139000001{i:02d}"))
        seen.append((dto["SecretNo"], dto["Extension"]))
    assert len(set(seen)) == 12
    assert len({x for x, _ in seen}) == 6
    assert _code(bind(PhoneNoA="13900000199")) == "isv.NO_AVAILABLE_NUMBER"
    assert len(emulator.bindings()) == 12


def test_extensions_are_distinct_per_number(bind: BindFn) -> None:
    extensions = [
        _dto(bind(PhoneNoA=f"1390000020{i}", PhoneNoX="17000000001"))["Extension"] for i in range(5)
    ]
    assert len(set(extensions)) == 5
    assert _code(bind(PhoneNoA="13900000209", PhoneNoX="17000000001")) == "isv.NO_AVAILABLE_NUMBER"


def test_custom_pools_and_cap() -> None:
    pool = Pool("FC1", (XNumber("17700000000", "深圳"),), max_extensions_per_number=1)
    with Emulator(pools=[pool]) as emu:
        client = SignedClient(emu.url)
        expiration = _later(emu, 3600)
        params = {"PoolKey": "FC1", "PhoneNoA": "13900000001", "Expiration": expiration}
        assert _dto(client.v3("BindAxnExtension", params))["SecretNo"] == "17700000000"
        second = client.v3("BindAxnExtension", {**params, "PhoneNoA": "13900000002"})
        assert _code(second) == "isv.NO_AVAILABLE_NUMBER"
        emu.reset()
        assert _code(client.v3("BindAxnExtension", {**params, "PhoneNoA": "13900000002"})) == "OK"


# --- conflicts -------------------------------------------------------------------------------


def test_extension_taken(bind: BindFn) -> None:
    assert _dto(bind(PhoneNoX="17000000001", Extension="7"))["Extension"] == "7"
    reply = bind(PhoneNoA="13900000002", PhoneNoX="17000000001", Extension="7")
    assert _code(reply) == "isv.BIND_CONFLICT"
    other_x = bind(PhoneNoA="13900000002", PhoneNoX="17000000002", Extension="7")
    assert _code(other_x) == "OK"


def test_same_a_on_same_x(bind: BindFn) -> None:
    _dto(bind(PhoneNoX="17000000001"))
    assert _code(bind(PhoneNoX="17000000001")) == "isv.BIND_CONFLICT"


def test_same_a_gets_another_x_when_unspecified(bind: BindFn) -> None:
    first = _dto(bind(ExpectCity="杭州"))
    second = _dto(bind(ExpectCity="杭州"))
    assert first["SecretNo"] != second["SecretNo"]


def test_a_bound_on_every_number(emulator: Emulator, bind: BindFn) -> None:
    for _ in range(6):
        _dto(bind())
    reply = bind()
    assert _code(reply) == "isv.NO_AVAILABLE_NUMBER"
    assert len({b["SecretNo"] for b in emulator.bindings()}) == 6


# --- expiry, query, unbind -------------------------------------------------------------------


def _query(client: SignedClient, subs_id: str, phone_x: str) -> Reply:
    params = {"PoolKey": DEFAULT_POOL_KEY, "SubsId": subs_id, "PhoneNoX": phone_x}
    return client.v3("QuerySubscriptionDetail", params)


def _unbind(client: SignedClient, subs_id: str, secret_no: str) -> Reply:
    params = {"PoolKey": DEFAULT_POOL_KEY, "SubsId": subs_id, "SecretNo": secret_no}
    return client.v3("UnbindSubscription", params)


def test_expiry_frees_extension(
    emulator: Emulator, admin: EmulatorAdmin, client: SignedClient, bind: BindFn
) -> None:
    expiration = _later(emulator, 120)
    dto = _dto(bind(PhoneNoX="17000000001", Extension="42", Expiration=expiration))
    blocked = bind(PhoneNoA="13900000002", PhoneNoX="17000000001", Extension="42")
    assert _code(blocked) == "isv.BIND_CONFLICT"
    admin.set_clock_offset(180)
    detail = _query(client, dto["SubsId"], "17000000001").json()["SecretBindDetailDTO"]
    assert isinstance(detail, dict)
    assert detail["Status"] == 0
    later = bind(
        PhoneNoA="13900000002",
        PhoneNoX="17000000001",
        Extension="42",
        Expiration=_later(emulator, 3600),
    )
    assert _code(later) == "OK"
    statuses = {b["SubsId"]: b["status"] for b in admin.bindings()}
    assert statuses[dto["SubsId"]] == "expired"


def test_query_detail(client: SignedClient, bind: BindFn, expiration: str) -> None:
    dto = _dto(
        bind(PhoneNoB="13800000000", IsRecordingEnabled="true", CallRestrict="CONTROL_AX_DISABLE")
    )
    reply = _query(client, dto["SubsId"], dto["SecretNo"])
    assert _code(reply) == "OK"
    detail = reply.json()["SecretBindDetailDTO"]
    assert detail == {
        "SubsId": dto["SubsId"],
        "PhoneNoA": "13900000001",
        "PhoneNoB": "13800000000",
        "PhoneNoX": dto["SecretNo"],
        "Extension": dto["Extension"],
        "ExpireDate": expiration,
        "GmtCreate": detail["GmtCreate"],  # type: ignore[index]
        "Status": 1,
        "NeedRecord": True,
        "CallRestrict": "CONTROL_AX_DISABLE",
        "GroupId": None,
        "ASRStatus": False,
        "ASRModelId": "",
    }


def test_query_unknown(client: SignedClient, bind: BindFn) -> None:
    dto = _dto(bind())
    for subs_id, phone_x in [("1000000000000000", dto["SecretNo"]), (dto["SubsId"], "17100000003")]:
        reply = _query(client, subs_id, phone_x)
        assert _code(reply) == "isv.ILLEGAL_ARGUMENT"
        assert reply.json()["Message"] == "subs not exist"


def test_unbind_frees_extension(emulator: Emulator, client: SignedClient, bind: BindFn) -> None:
    dto = _dto(bind(PhoneNoX="17000000001", Extension="9"))
    assert _code(_unbind(client, dto["SubsId"], "17000000001")) == "OK"
    assert emulator.bindings()[0]["status"] == "unbound"
    assert _code(bind(PhoneNoA="13900000002", PhoneNoX="17000000001", Extension="9")) == "OK"
    assert _code(_query(client, dto["SubsId"], "17000000001")) == "isv.ILLEGAL_ARGUMENT"
    again = _unbind(client, dto["SubsId"], "17000000001")
    assert (_code(again), again.json()["Message"]) == ("isv.ILLEGAL_ARGUMENT", "subs not exist")


def test_unbind_unknown(client: SignedClient) -> None:
    reply = _unbind(client, "1000000000000001", "17000000001")
    assert (_code(reply), reply.json()["Message"]) == ("isv.ILLEGAL_ARGUMENT", "subs not exist")


@settings(max_examples=25, deadline=None)
@given(
    phone_a=st.from_regex(r"1[3-9]\d{9}", fullmatch=True),
    city=st.sampled_from(["北京", "上海", "杭州", "广州", ""]),
)
def test_any_valid_bind_gives_a_pool_number(phone_a: str, city: str) -> None:
    with Emulator() as emu:
        client = SignedClient(emu.url)
        params = {"PoolKey": DEFAULT_POOL_KEY, "PhoneNoA": phone_a, "Expiration": _later(emu, 600)}
        if city:
            params["ExpectCity"] = city
        dto = _dto(client.v1("BindAxnExtension", params))
        numbers = {x["number"]: x["city"] for x in emu.info()["pools"][0]["numbers"]}  # type: ignore[index]
        assert dto["SecretNo"] in numbers
        if city in ("北京", "上海", "杭州"):
            assert numbers[dto["SecretNo"]] == city
