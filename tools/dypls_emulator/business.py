"""Dyplsapi actions: parameter rules and effects on the binding store.

Required parameters that are absent or empty are rejected as gateway `MissingParameter` (400).
Booleans must be exactly `true` or `false`. Unknown parameters are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .clock import format_shanghai, parse_shanghai
from .errors import BusinessError, missing_parameter
from .store import Binding, BindingStore

MIN_EXPIRATION_LEAD_SECONDS = 60
CALL_RESTRICTS = ("CONTROL_AX_DISABLE", "CONTROL_BX_DISABLE")
_MOBILE = re.compile(r"^1\d{10}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")
_EXTENSION = re.compile(r"^\d{1,3}$")
_STORED_EXTRAS = ("ExpectCity", "CallDisplayType", "RingConfig", "ASRStatus", "ASRModelId")

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


def query_subscription_detail(params: Params, store: BindingStore, now: float) -> Result:
    """Return the SecretBindDetailDTO of a binding, expired ones included."""
    require(params, "PoolKey", "SubsId", "PhoneNoX")
    if params["PoolKey"] not in store.pools:
        raise BusinessError("isv.POOLKEY_NOT_EXISTS", "poolKey not exists")
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
        }
    }


def unbind_subscription(params: Params, store: BindingStore, now: float) -> Result:
    """Remove a binding, freeing its extension."""
    require(params, "PoolKey", "SubsId", "SecretNo")
    if params["PoolKey"] not in store.pools:
        raise BusinessError("isv.POOLKEY_NOT_EXISTS", "poolKey not exists")
    binding = store.find(params["SubsId"], params["PoolKey"], params["SecretNo"])
    if binding is None:
        raise _subs_not_exist()
    binding.unbound_at = now
    return {}


ACTIONS: dict[str, Callable[[Params, BindingStore, float], Result]] = {
    "BindAxnExtension": bind_axn_extension,
    "QuerySubscriptionDetail": query_subscription_detail,
    "UnbindSubscription": unbind_subscription,
}
