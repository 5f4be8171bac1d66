"""A binding's life in the emulator: UpdateSubscription, QuerySubsId, unbind and expiry.

Every call is signed and sent through the emulator's HTTP gateway. The facts the emulator must
match (operations, fields) are in tests/data/dypls-lifecycle.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.dypls_emulator import (
    DEFAULT_POOL_KEY,
    STRICT_POOL_KEY,
    Emulator,
    EmulatorAdmin,
)
from tools.dypls_emulator.business import NOT_FOR_AXN_EXTENSION, UPDATES
from tools.dypls_emulator.client import Reply, SignedClient
from tools.dypls_emulator.clock import format_shanghai

BindFn = Callable[..., Reply]
FACTS = json.loads(
    (Path(__file__).parents[1] / "data" / "dypls-lifecycle.json").read_text(encoding="utf-8")
)
OPERATE_TYPES: dict[str, list[str]] = FACTS["UpdateSubscription"]["operate_types"]
SUBS_NOT_EXIST = ("isv.ILLEGAL_ARGUMENT", "subs not exist")


def _later(emulator: Emulator, seconds: float) -> str:
    return format_shanghai(emulator.service.clock.now() + seconds)


def _ok(reply: Reply) -> dict[str, object]:
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["Code"] == "OK", body
    return body


def _answer(reply: Reply) -> tuple[str, str]:
    assert reply.status == 200, reply.body
    body = reply.json()
    return str(body["Code"]), str(body["Message"])


def _made(reply: Reply) -> tuple[str, str]:
    dto = _ok(reply)["SecretBindDTO"]
    assert isinstance(dto, dict)
    return str(dto["SubsId"]), str(dto["SecretNo"])


def _update(
    client: SignedClient, subs_id: str, phone_x: str, operate_type: str, **params: str
) -> Reply:
    merged = {
        "PoolKey": DEFAULT_POOL_KEY,
        "SubsId": subs_id,
        "PhoneNoX": phone_x,
        "OperateType": operate_type,
        **params,
    }
    return client.v3("UpdateSubscription", merged)


def _detail(client: SignedClient, subs_id: str, phone_x: str) -> dict[str, object]:
    params = {"PoolKey": DEFAULT_POOL_KEY, "SubsId": subs_id, "PhoneNoX": phone_x}
    detail = _ok(client.v3("QuerySubscriptionDetail", params))["SecretBindDetailDTO"]
    assert isinstance(detail, dict)
    return detail


def _query_detail(client: SignedClient, subs_id: str, phone_x: str) -> Reply:
    params = {"PoolKey": DEFAULT_POOL_KEY, "SubsId": subs_id, "PhoneNoX": phone_x}
    return client.v3("QuerySubscriptionDetail", params)


def _unbind(
    client: SignedClient, subs_id: str, phone_x: str, pool: str = DEFAULT_POOL_KEY
) -> Reply:
    params = {"PoolKey": pool, "SubsId": subs_id, "SecretNo": phone_x}
    return client.v3("UnbindSubscription", params)


def _subs_ids(client: SignedClient, phone_x: str, pool: str = DEFAULT_POOL_KEY) -> str:
    reply = client.v3("QuerySubsId", {"PoolKey": pool, "PhoneNoX": phone_x})
    return str(_ok(reply)["SubsId"])


def _stored(emulator: Emulator, subs_id: str) -> dict[str, object]:
    [binding] = [b for b in emulator.bindings() if b["SubsId"] == subs_id]
    return binding


# --- the facts -------------------------------------------------------------------------------


def test_every_operate_type_is_served_or_refused() -> None:
    assert set(UPDATES) | set(NOT_FOR_AXN_EXTENSION) == set(OPERATE_TYPES)
    assert set(NOT_FOR_AXN_EXTENSION) == set(FACTS["UpdateSubscription"]["axg_only"])


def test_detail_answers_every_field(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind())
    detail = _detail(client, subs_id, phone_x)
    assert set(detail) == set(FACTS["QuerySubscriptionDetail"]["SecretBindDetailDTO"])
    assert (detail["ASRStatus"], detail["ASRModelId"], detail["GroupId"]) == (False, "", None)


# --- each operation changes the binding ------------------------------------------------------

# operation, its parameters, and what the binding shows afterwards: fields of
# QuerySubscriptionDetail, or (for what that answer does not carry) of /_emulator/bindings
CHANGES: list[tuple[str, dict[str, str], dict[str, object], dict[str, object]]] = [
    ("updateNoA", {"PhoneNoA": "13900000009"}, {"PhoneNoA": "13900000009"}, {}),
    ("updateNoB", {"PhoneNoB": "057188992688"}, {"PhoneNoB": "057188992688"}, {}),
    (
        "updateCallRestrict",
        {"CallRestrict": "CONTROL_BX_DISABLE"},
        {"CallRestrict": "CONTROL_BX_DISABLE"},
        {},
    ),
    ("updateIsRecordingEnabled", {"IsRecordingEnabled": "true"}, {"NeedRecord": True}, {}),
    (
        "updateAsr",
        {"ASRStatus": "true", "ASRModelId": "model-7"},
        {"ASRStatus": True, "ASRModelId": "model-7"},
        {},
    ),
    ("updateOutId", {"OutId": "order-77"}, {}, {"OutId": "order-77"}),
    ("updateCallDisplayType", {"CallDisplayType": "1"}, {}, {"Extra": {"CallDisplayType": "1"}}),
]


DETAIL_IN_ADMIN = ("PhoneNoA", "PhoneNoB", "CallRestrict", "NeedRecord", "ASRStatus", "ASRModelId")


@pytest.mark.parametrize(
    ("operate_type", "params", "shown", "stored"), CHANGES, ids=[c[0] for c in CHANGES]
)
def test_update_changes_the_binding(
    emulator: Emulator,
    client: SignedClient,
    bind: BindFn,
    operate_type: str,
    params: dict[str, str],
    shown: dict[str, object],
    stored: dict[str, object],
) -> None:
    subs_id, phone_x = _made(bind(OutId="order-1"))
    before = _detail(client, subs_id, phone_x)
    stored_before = _stored(emulator, subs_id)
    reply = _update(client, subs_id, phone_x, operate_type, **params)
    assert set(_ok(reply)) == set(FACTS["UpdateSubscription"]["answer"])
    after = _detail(client, subs_id, phone_x)
    assert after == {**before, **shown}
    mirrored = {k: after[k] for k in DETAIL_IN_ADMIN}
    assert _stored(emulator, subs_id) == {**stored_before, **stored, **mirrored}
    # the operation changed something
    assert {**before, **shown} != before or {**stored_before, **stored} != stored_before


def test_update_expire_keeps_the_binding_alive(
    emulator: Emulator, admin: EmulatorAdmin, client: SignedClient, bind: BindFn
) -> None:
    subs_id, phone_x = _made(bind(Expiration=_later(emulator, 120)))
    longer = _later(emulator, 7200)
    _ok(_update(client, subs_id, phone_x, "updateExpire", Expiration=longer))
    assert _detail(client, subs_id, phone_x)["ExpireDate"] == longer
    admin.set_clock_offset(180)  # past the first expiration, before the new one
    assert _detail(client, subs_id, phone_x)["Status"] == 1
    assert _subs_ids(client, phone_x) == subs_id
    _ok(_update(client, subs_id, phone_x, "updateOutId", OutId="still-here"))


def test_call_restrict_clear(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind(CallRestrict="CONTROL_AX_DISABLE"))
    assert _detail(client, subs_id, phone_x)["CallRestrict"] == "CONTROL_AX_DISABLE"
    _ok(
        _update(
            client, subs_id, phone_x, "updateCallRestrict", CallRestrict="CONTROL_CLEAR_DISABLE"
        )
    )
    assert _detail(client, subs_id, phone_x)["CallRestrict"] == ""


def test_asr_off_clears_the_model(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind(ASRStatus="true", ASRModelId="model-1"))
    assert _detail(client, subs_id, phone_x)["ASRModelId"] == "model-1"
    _ok(_update(client, subs_id, phone_x, "updateAsr", ASRStatus="false"))
    detail = _detail(client, subs_id, phone_x)
    assert (detail["ASRStatus"], detail["ASRModelId"]) == (False, "")


def test_update_no_a_moves_the_a_number(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind(PhoneNoA="13900000001", PhoneNoX="17000000001"))
    _made(bind(PhoneNoA="13900000002", PhoneNoX="17000000001"))
    taken = _update(client, subs_id, phone_x, "updateNoA", PhoneNoA="13900000002")
    assert _answer(taken)[0] == "isv.BIND_CONFLICT"
    assert _detail(client, subs_id, phone_x)["PhoneNoA"] == "13900000001"
    _ok(_update(client, subs_id, phone_x, "updateNoA", PhoneNoA="13900000003"))
    # the old A is free on that X again
    _made(bind(PhoneNoA="13900000001", PhoneNoX="17000000001"))


def test_same_update_twice_is_harmless(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind())
    for _ in range(2):
        _ok(_update(client, subs_id, phone_x, "updateNoB", PhoneNoB="13800000001"))
    assert _detail(client, subs_id, phone_x)["PhoneNoB"] == "13800000001"


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("operate_type", sorted(UPDATES))
def test_update_without_the_operations_field(
    emulator: Emulator, client: SignedClient, bind: BindFn, operate_type: str
) -> None:
    subs_id, phone_x = _made(bind())
    before = _stored(emulator, subs_id)
    code, message = _answer(_update(client, subs_id, phone_x, operate_type))
    assert code == "isv.ILLEGAL_ARGUMENT"
    assert OPERATE_TYPES[operate_type][0] in message
    assert _stored(emulator, subs_id) == before


def test_asr_on_needs_a_model(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind())
    code, message = _answer(_update(client, subs_id, phone_x, "updateAsr", ASRStatus="true"))
    assert (code, "ASRModelId" in message) == ("isv.ILLEGAL_ARGUMENT", True)
    assert _detail(client, subs_id, phone_x)["ASRStatus"] is False


@pytest.mark.parametrize(
    ("operate_type", "params", "code"),
    [
        ("updateNoA", {"PhoneNoA": "12345"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ("updateNoB", {"PhoneNoB": "+8613800000000"}, "isv.MOBILE_NUMBER_ILLEGAL"),
        ("updateExpire", {"Expiration": "2030-01-01T00:00:00"}, "isv.EXPIRE_DATE_ILLEGAL"),
        ("updateExpire", {"Expiration": "2020-01-01 00:00:00"}, "isv.EXPIRE_DATE_ILLEGAL"),
        ("updateCallRestrict", {"CallRestrict": "CONTROL_AB_DISABLE"}, "isv.INVALID_PARAMETERS"),
        ("updateCallDisplayType", {"CallDisplayType": "2"}, "isv.INVALID_PARAMETERS"),
        ("updateIsRecordingEnabled", {"IsRecordingEnabled": "1"}, "isv.INVALID_PARAMETERS"),
        ("updateAsr", {"ASRStatus": "yes", "ASRModelId": "m"}, "isv.INVALID_PARAMETERS"),
    ],
)
def test_update_with_an_illegal_value(
    emulator: Emulator,
    client: SignedClient,
    bind: BindFn,
    operate_type: str,
    params: dict[str, str],
    code: str,
) -> None:
    subs_id, phone_x = _made(bind())
    before = _stored(emulator, subs_id)
    assert _answer(_update(client, subs_id, phone_x, operate_type, **params))[0] == code
    assert _stored(emulator, subs_id) == before


def test_expiration_less_than_a_minute_ahead(
    emulator: Emulator, client: SignedClient, bind: BindFn
) -> None:
    subs_id, phone_x = _made(bind())
    soon = _update(client, subs_id, phone_x, "updateExpire", Expiration=_later(emulator, 30))
    assert _answer(soon)[0] == "isv.EXPIRE_DATE_ILLEGAL"
    _ok(_update(client, subs_id, phone_x, "updateExpire", Expiration=_later(emulator, 120)))


def test_operations_that_do_not_apply(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind())
    axg = _update(client, subs_id, phone_x, "updateAxgGroup", GroupId="1")
    assert _answer(axg)[0] == "isv.FORBIDDEN_ACTION"
    for name in [*FACTS["UpdateSubscription"]["not_operations"], "updatenoa", "deleteNoB"]:
        reply = _update(client, subs_id, phone_x, name, RingConfig='{"AXNRing_A":"100001"}')
        assert _answer(reply) == ("isv.INVALID_PARAMETERS", "parameter OperateType is invalid")


@pytest.mark.parametrize("missing", ["PoolKey", "SubsId", "PhoneNoX", "OperateType"])
def test_update_missing_required(client: SignedClient, bind: BindFn, missing: str) -> None:
    subs_id, phone_x = _made(bind())
    params = {
        "PoolKey": DEFAULT_POOL_KEY,
        "SubsId": subs_id,
        "PhoneNoX": phone_x,
        "OperateType": "updateOutId",
        "OutId": "x",
    }
    del params[missing]
    reply = client.v3("UpdateSubscription", params)
    assert (reply.status, reply.json()["Code"]) == (400, "MissingParameter")
    assert missing in str(reply.json()["Message"])


def test_update_unknown_binding(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind(PhoneNoX="17000000001"))
    for sid, x in [("1000000000000000", phone_x), (subs_id, "17000000002")]:
        reply = _update(client, sid, x, "updateOutId", OutId="x")
        assert _answer(reply) == SUBS_NOT_EXIST
    wrong_pool = _update(
        client, subs_id, phone_x, "updateOutId", OutId="x", PoolKey=STRICT_POOL_KEY
    )
    assert _answer(wrong_pool) == SUBS_NOT_EXIST
    no_pool = _update(client, subs_id, phone_x, "updateOutId", OutId="x", PoolKey="FC1000000999")
    assert _answer(no_pool)[0] == "isv.POOLKEY_NOT_EXISTS"


# --- unbind and expiry -----------------------------------------------------------------------


def test_unbound_binding_is_gone_for_every_action(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind())
    unbound = _ok(_unbind(client, subs_id, phone_x))
    assert set(unbound) == set(FACTS["UnbindSubscription"]["answer"])
    assert unbound["ChargeId"]
    assert _answer(_update(client, subs_id, phone_x, "updateOutId", OutId="x")) == SUBS_NOT_EXIST
    assert _answer(_query_detail(client, subs_id, phone_x)) == SUBS_NOT_EXIST
    assert _answer(_unbind(client, subs_id, phone_x)) == SUBS_NOT_EXIST
    assert _subs_ids(client, phone_x) == ""


def test_expired_binding(
    emulator: Emulator, admin: EmulatorAdmin, client: SignedClient, bind: BindFn
) -> None:
    subs_id, phone_x = _made(bind(Expiration=_later(emulator, 120)))
    admin.set_clock_offset(180)
    assert _detail(client, subs_id, phone_x)["Status"] == 0
    assert _answer(_update(client, subs_id, phone_x, "updateOutId", OutId="x")) == SUBS_NOT_EXIST
    later = _update(client, subs_id, phone_x, "updateExpire", Expiration=_later(emulator, 3600))
    assert _answer(later) == SUBS_NOT_EXIST
    assert _answer(_unbind(client, subs_id, phone_x)) == SUBS_NOT_EXIST
    assert _subs_ids(client, phone_x) == ""
    assert _stored(emulator, subs_id)["status"] == "expired"


def test_unbind_returns_x_and_extension_to_the_pool(
    emulator: Emulator, client: SignedClient, bind: BindFn
) -> None:
    # the strict pool has one Beijing number; with one extension per number it is full after one bind
    emulator.set_max_extensions(1)
    first = bind(PoolKey=STRICT_POOL_KEY, ExpectCity="北京")
    subs_id, phone_x = _made(first)
    extension = str(first.json()["SecretBindDTO"]["Extension"])  # type: ignore[index]
    full = bind(PoolKey=STRICT_POOL_KEY, PhoneNoA="13900000002", ExpectCity="北京")
    assert _answer(full)[0] == "isv.NO_AVAILABLE_NUMBER"
    _ok(_unbind(client, subs_id, phone_x, STRICT_POOL_KEY))
    again = bind(PoolKey=STRICT_POOL_KEY, PhoneNoA="13900000002", ExpectCity="北京")
    assert _made(again)[1] == phone_x
    assert again.json()["SecretBindDTO"]["Extension"] == extension  # type: ignore[index]
    assert _subs_ids(client, phone_x, STRICT_POOL_KEY) == _made(again)[0]


# --- QuerySubsId -----------------------------------------------------------------------------


def test_query_subs_id_before_and_after(client: SignedClient, bind: BindFn) -> None:
    reply = client.v3("QuerySubsId", {"PoolKey": DEFAULT_POOL_KEY, "PhoneNoX": "17000000001"})
    body = _ok(reply)
    assert set(body) == set(FACTS["QuerySubsId"]["answer"])
    assert body["SubsId"] == ""
    first, _ = _made(bind(PhoneNoA="13900000001", PhoneNoX="17000000001"))
    second, _ = _made(bind(PhoneNoA="13900000002", PhoneNoX="17000000001"))
    _made(bind(PhoneNoA="13900000003", PhoneNoX="17000000002"))
    assert _subs_ids(client, "17000000001") == f"{first},{second}"
    _ok(_unbind(client, first, "17000000001"))
    assert _subs_ids(client, "17000000001") == second


def test_query_subs_id_v1_xml(client: SignedClient, bind: BindFn) -> None:
    subs_id, phone_x = _made(bind())
    reply = client.v1("QuerySubsId", {"PoolKey": DEFAULT_POOL_KEY, "PhoneNoX": phone_x}, fmt=None)
    root = reply.xml()
    assert (root.tag, root.findtext("Code"), root.findtext("SubsId")) == (
        "QuerySubsIdResponse",
        "OK",
        subs_id,
    )


def test_query_subs_id_errors(client: SignedClient) -> None:
    wrong_pool = client.v3("QuerySubsId", {"PoolKey": "FC1000000999", "PhoneNoX": "17000000001"})
    assert _answer(wrong_pool)[0] == "isv.POOLKEY_NOT_EXISTS"
    outside = client.v3("QuerySubsId", {"PoolKey": DEFAULT_POOL_KEY, "PhoneNoX": "17100000011"})
    assert _answer(outside)[0] == "isv.NO_NOT_EXIST"
    missing = client.v3("QuerySubsId", {"PoolKey": DEFAULT_POOL_KEY})
    assert (missing.status, missing.json()["Code"]) == (400, "MissingParameter")


# --- faults on the lifecycle actions ---------------------------------------------------------


def test_fault_on_update(
    emulator: Emulator, admin: EmulatorAdmin, client: SignedClient, bind: BindFn
) -> None:
    subs_id, phone_x = _made(bind(OutId="order-1"))
    admin.add_fault("business", action="UpdateSubscription", code="isv.FLOW_LIMIT")
    _made(bind(PhoneNoA="13900000002"))  # a bind does not use the fault up
    limited = _update(client, subs_id, phone_x, "updateOutId", OutId="order-2")
    assert _answer(limited)[0] == "isv.FLOW_LIMIT"
    assert _stored(emulator, subs_id)["OutId"] == "order-1"
    _ok(_update(client, subs_id, phone_x, "updateOutId", OutId="order-2"))
    assert _stored(emulator, subs_id)["OutId"] == "order-2"
    logged = [(r["action"], r["fault"]) for r in admin.requests()]
    assert ("UpdateSubscription", "business") in logged


def test_fault_after_the_update_is_applied(
    admin: EmulatorAdmin, client: SignedClient, bind: BindFn
) -> None:
    subs_id, phone_x = _made(bind())
    admin.add_fault("isp_error", action="UpdateSubscription", bind=True)
    reply = _update(client, subs_id, phone_x, "updateNoB", PhoneNoB="13800000002")
    assert _answer(reply)[0] == "isp.SYSTEM_ERROR"
    assert _detail(client, subs_id, phone_x)["PhoneNoB"] == "13800000002"


def test_gateway_throttle_on_update_and_query_subs_id(
    admin: EmulatorAdmin, client: SignedClient, bind: BindFn
) -> None:
    subs_id, phone_x = _made(bind())
    admin.add_fault("throttle", action="*", stage="gateway", count=2, retry_after=1)
    throttled = _update(client, subs_id, phone_x, "updateOutId", OutId="x")
    assert (throttled.status, throttled.json()["Code"]) == (400, "Throttling.User")
    assert throttled.headers["x-acs-retry-after"] == "1000"
    again = client.v3("QuerySubsId", {"PoolKey": DEFAULT_POOL_KEY, "PhoneNoX": phone_x})
    assert again.status == 400
    assert _subs_ids(client, phone_x) == subs_id


def test_default_fault_leaves_lifecycle_actions_alone(
    admin: EmulatorAdmin, client: SignedClient, bind: BindFn
) -> None:
    subs_id, phone_x = _made(bind())
    admin.add_fault("http_5xx", status=503)
    _ok(_update(client, subs_id, phone_x, "updateOutId", OutId="x"))
    assert _subs_ids(client, phone_x) == subs_id
    assert bind(PhoneNoA="13900000002").status == 503
