"""Dyplsapi actions: parameter rules and effects on the binding store.

Required parameters that are absent or empty are rejected as gateway `MissingParameter` (400).
Booleans must be exactly `true` or `false`. Unknown parameters are ignored.

A binding is found by SubsId, PoolKey and X together; an unbound one is gone for every action
(`isv.ILLEGAL_ARGUMENT` "subs not exist"). An expired one is still shown by
QuerySubscriptionDetail (Status 0) but is gone for UpdateSubscription and UnbindSubscription,
and no longer listed by QuerySubsId.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .clock import format_shanghai, parse_shanghai
from .errors import BusinessError, missing_parameter
from .store import Binding, BindingStore

MIN_EXPIRATION_LEAD_SECONDS = 60
CALL_RESTRICTS = ("CONTROL_AX_DISABLE", "CONTROL_BX_DISABLE")
CLEAR_CALL_RESTRICT = "CONTROL_CLEAR_DISABLE"
_MOBILE = re.compile(r"^1\d{10}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")
_EXTENSION = re.compile(r"^\d{1,3}$")
_STORED_EXTRAS = ("ExpectCity", "CallDisplayType", "RingConfig")

Params = Mapping[str, str]
Result = dict[str, object]


def is_phone_number(value: str) -> bool:
    """A mobile (11 digits from 1) or a landline with area code (0 + 9-11 digits)."""
    return bool(_MOBILE.match(value) or _LANDLINE.match(value))


def require(params: Params, *names: str) -> None:
    """Raise MissingParameter for the first absent or empty name."""
    for name in names:
        if not params.get(name):
            raise missing_parameter(name)


def _invalid(name: str) -> BusinessError:
    return BusinessError("isv.INVALID_PARAMETERS", f"parameter {name} is invalid")


def _check_bind_options(params: Params) -> None:
    for name in ("IsRecordingEnabled", "ASRStatus"):
        if name in params and params[name] not in ("true", "false"):
            raise _invalid(name)
    if "CallDisplayType" in params and params["CallDisplayType"] != "1":
        raise _invalid("CallDisplayType")
    if params.get("CallRestrict") and params["CallRestrict"] not in CALL_RESTRICTS:
        raise _invalid("CallRestrict")


def _check_numbers(params: Params) -> None:
    for name in ("PhoneNoA", "PhoneNoB"):
        value = params.get(name)
        if value and not is_phone_number(value):
            raise BusinessError("isv.MOBILE_NUMBER_ILLEGAL", f"{name} is not a valid number")


def _expiration(text: str, now: float) -> float:
    expire_at = parse_shanghai(text)
    if expire_at is None:
        raise BusinessError(
            "isv.EXPIRE_DATE_ILLEGAL", "expiration format must be yyyy-MM-dd HH:mm:ss"
        )
    if expire_at - now <= MIN_EXPIRATION_LEAD_SECONDS:
        raise BusinessError(
            "isv.EXPIRE_DATE_ILLEGAL", "expiration must be more than 1 minute later than now"
        )
    return expire_at


def _check_extension(params: Params) -> None:
    extension = params.get("Extension")
    if not extension:
        return
    if not _EXTENSION.match(extension):
        raise _invalid("Extension")
    if not params.get("PhoneNoX"):
        raise BusinessError("isv.ILLEGAL_ARGUMENT", "extension can must be null")


def bind_axn_extension(params: Params, store: BindingStore, now: float) -> Result:
    """Create a binding and return its SecretBindDTO."""
    require(params, "PoolKey", "PhoneNoA", "Expiration")
    pool = store.pools.get(params["PoolKey"])
    if pool is None:
        raise BusinessError("isv.POOLKEY_NOT_EXISTS", "poolKey not exists")
    _check_numbers(params)
    expire_at = _expiration(params["Expiration"], now)
    _check_extension(params)
    _check_bind_options(params)
    number, extension = store.allocate(
        pool,
        params["PhoneNoA"],
        params.get("PhoneNoX") or None,
        params.get("Extension") or None,
        params.get("ExpectCity") or None,
        now,
    )
    binding = Binding(
        subs_id=store.new_subs_id(),
        pool_key=pool.key,
        phone_no_a=params["PhoneNoA"],
        secret_no=number.number,
        extension=extension,
        expiration=params["Expiration"],
        expire_at=expire_at,
        gmt_create=now,
        city=number.city,
        phone_no_b=params.get("PhoneNoB", ""),
        out_id=params.get("OutId", ""),
        out_order_id=params.get("OutOrderId", ""),
        need_record=params.get("IsRecordingEnabled") == "true",
        call_restrict=params.get("CallRestrict", ""),
        asr_status=params.get("ASRStatus") == "true",
        asr_model_id=params.get("ASRModelId", ""),
        extra={k: params[k] for k in _STORED_EXTRAS if k in params},
    )
    store.bindings[binding.subs_id] = binding
    return {
        "SecretBindDTO": {
            "Extension": binding.extension,
            "SecretNo": binding.secret_no,
            "SubsId": binding.subs_id,
        }
    }


def _subs_not_exist() -> BusinessError:
    return BusinessError("isv.ILLEGAL_ARGUMENT", "subs not exist")


def _check_pool(params: Params, store: BindingStore) -> None:
    if params["PoolKey"] not in store.pools:
        raise BusinessError("isv.POOLKEY_NOT_EXISTS", "poolKey not exists")


def query_subscription_detail(params: Params, store: BindingStore, now: float) -> Result:
    """Return the SecretBindDetailDTO of a binding, expired ones included (Status 0)."""
    require(params, "PoolKey", "SubsId", "PhoneNoX")
    _check_pool(params, store)
    binding = store.find(params["SubsId"], params["PoolKey"], params["PhoneNoX"])
    if binding is None:
        raise _subs_not_exist()
    return {
        "SecretBindDetailDTO": {
            "SubsId": binding.subs_id,
            "PhoneNoA": binding.phone_no_a,
            "PhoneNoB": binding.phone_no_b,
            "PhoneNoX": binding.secret_no,
            "Extension": binding.extension,
            "ExpireDate": format_shanghai(binding.expire_at),
            "GmtCreate": format_shanghai(binding.gmt_create),
            "Status": 1 if binding.is_active(now) else 0,
            "NeedRecord": binding.need_record,
            "CallRestrict": binding.call_restrict,
            "GroupId": None,  # AXG bindings only
            "ASRStatus": binding.asr_status,
            "ASRModelId": binding.asr_model_id,
        }
    }


def unbind_subscription(params: Params, store: BindingStore, now: float) -> Result:
    """Remove an active binding, returning its X and extension to the pool."""
    require(params, "PoolKey", "SubsId", "SecretNo")
    _check_pool(params, store)
    binding = store.find_active(params["SubsId"], params["PoolKey"], params["SecretNo"], now)
    if binding is None:
        raise _subs_not_exist()
    binding.unbound_at = now
    return {"ChargeId": f"{binding.subs_id}-{round(now * 1000)}"}


def _needs(params: Params, operate_type: str, *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise BusinessError("isv.ILLEGAL_ARGUMENT", f"{name} is required for {operate_type}")


def _boolean(params: Params, name: str) -> bool:
    if params[name] not in ("true", "false"):
        raise _invalid(name)
    return params[name] == "true"


def _update_no_a(params: Params, binding: Binding, store: BindingStore, now: float) -> None:
    _needs(params, "updateNoA", "PhoneNoA")
    _check_numbers({"PhoneNoA": params["PhoneNoA"]})
    others = [b for b in store.active_on(binding.secret_no, now) if b is not binding]
    if any(b.phone_no_a == params["PhoneNoA"] for b in others):
        raise BusinessError("isv.BIND_CONFLICT", "phoneNoA already bound with phoneNoX")
    binding.phone_no_a = params["PhoneNoA"]


def _update_no_b(params: Params, binding: Binding, store: BindingStore, now: float) -> None:
    _needs(params, "updateNoB", "PhoneNoB")
    _check_numbers({"PhoneNoB": params["PhoneNoB"]})
    binding.phone_no_b = params["PhoneNoB"]


def _update_expire(params: Params, binding: Binding, store: BindingStore, now: float) -> None:
    _needs(params, "updateExpire", "Expiration")
    binding.expire_at = _expiration(params["Expiration"], now)
    binding.expiration = params["Expiration"]


def _update_call_restrict(
    params: Params, binding: Binding, store: BindingStore, now: float
) -> None:
    _needs(params, "updateCallRestrict", "CallRestrict")
    value = params["CallRestrict"]
    if value not in (*CALL_RESTRICTS, CLEAR_CALL_RESTRICT):
        raise _invalid("CallRestrict")
    binding.call_restrict = "" if value == CLEAR_CALL_RESTRICT else value


def _update_call_display_type(
    params: Params, binding: Binding, store: BindingStore, now: float
) -> None:
    _needs(params, "updateCallDisplayType", "CallDisplayType")
    _check_bind_options({"CallDisplayType": params["CallDisplayType"]})
    binding.extra["CallDisplayType"] = params["CallDisplayType"]


def _update_out_id(params: Params, binding: Binding, store: BindingStore, now: float) -> None:
    _needs(params, "updateOutId", "OutId")
    binding.out_id = params["OutId"]


def _update_recording(params: Params, binding: Binding, store: BindingStore, now: float) -> None:
    _needs(params, "updateIsRecordingEnabled", "IsRecordingEnabled")
    binding.need_record = _boolean(params, "IsRecordingEnabled")


def _update_asr(params: Params, binding: Binding, store: BindingStore, now: float) -> None:
    _needs(params, "updateAsr", "ASRStatus")
    status = _boolean(params, "ASRStatus")
    if status:
        _needs(params, "updateAsr", "ASRModelId")
    binding.asr_status = status
    binding.asr_model_id = params.get("ASRModelId", "") if status else ""


Update = Callable[[Params, Binding, BindingStore, float], None]
UPDATES: dict[str, Update] = {
    "updateNoA": _update_no_a,
    "updateNoB": _update_no_b,
    "updateExpire": _update_expire,
    "updateCallRestrict": _update_call_restrict,
    "updateCallDisplayType": _update_call_display_type,
    "updateOutId": _update_out_id,
    "updateIsRecordingEnabled": _update_recording,
    "updateAsr": _update_asr,
}
NOT_FOR_AXN_EXTENSION = ("updateAxgGroup",)


def update_subscription(params: Params, store: BindingStore, now: float) -> Result:
    """Change one thing about an active binding, chosen by OperateType."""
    require(params, "PoolKey", "SubsId", "PhoneNoX", "OperateType")
    _check_pool(params, store)
    operate_type = params["OperateType"]
    if operate_type in NOT_FOR_AXN_EXTENSION:
        raise BusinessError(
            "isv.FORBIDDEN_ACTION", f"{operate_type} forbidden: the pool is not an AXG pool"
        )
    update = UPDATES.get(operate_type)
    if update is None:
        raise _invalid("OperateType")
    binding = store.find_active(params["SubsId"], params["PoolKey"], params["PhoneNoX"], now)
    if binding is None:
        raise _subs_not_exist()
    update(params, binding, store, now)
    return {}


def query_subs_id(params: Params, store: BindingStore, now: float) -> Result:
    """The SubsIds of the active bindings on an X, comma-separated (empty when none)."""
    require(params, "PoolKey", "PhoneNoX")
    _check_pool(params, store)
    if store.pools[params["PoolKey"]].find(params["PhoneNoX"]) is None:
        raise BusinessError("isv.NO_NOT_EXIST", "phoneNoX not exist in the pool")
    active = store.active_on(params["PhoneNoX"], now)  # in the order they were made
    return {"SubsId": ",".join(b.subs_id for b in active)}


ACTIONS: dict[str, Callable[[Params, BindingStore, float], Result]] = {
    "BindAxnExtension": bind_axn_extension,
    "QuerySubscriptionDetail": query_subscription_detail,
    "UnbindSubscription": unbind_subscription,
    "UpdateSubscription": update_subscription,
    "QuerySubsId": query_subs_id,
}
