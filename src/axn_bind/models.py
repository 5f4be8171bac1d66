"""The bind request: every BindAxnExtension parameter under its API name, validated and normalised.

Phone numbers accept ``+86``/``0086`` prefixes, spaces and hyphens, and are sent as bare digits.
``Expiration`` is read as Asia/Shanghai time (UTC+8, no daylight saving since 1991); an ISO-8601
timestamp with an offset, or ``TtlSeconds``, may be given instead.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import RequestValidationError
from .log import shown
from .phone import normalise_phone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
EXPIRATION_FORMAT = "%Y-%m-%d %H:%M:%S"
MIN_LEAD_SECONDS = 60
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600

# re.ASCII: only 0-9 are digits; Arabic-Indic, Devanagari or fullwidth digits are refused.
_EXTENSION = re.compile(r"\d{1,3}", re.ASCII)
_LOCAL_EXPIRATION = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})", re.ASCII)
EXPIRATION_REQUIRED = (
    "is required, or TtlSeconds instead: 'yyyy-MM-dd HH:mm:ss' in Asia/Shanghai time "
    "(e.g. Expiration=2030-01-01 12:00:00, or TtlSeconds=3600)"
)


def _now(info: ValidationInfo) -> datetime:
    """The time validation is judged at: ``context={"now": …}`` when given (tests), else now."""
    now = (info.context or {}).get("now") if info is not None else None
    return (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI)


def parse_expiration(value: Any) -> datetime:
    """An aware datetime from ``yyyy-MM-dd HH:mm:ss`` (Asia/Shanghai) or ISO-8601 with an offset."""
    if not isinstance(value, str):
        raise ValueError("must be a string 'yyyy-MM-dd HH:mm:ss' (Asia/Shanghai time)")
    text = value.strip()
    local = _LOCAL_EXPIRATION.fullmatch(text)
    if local:
        try:  # the fields as they are (strptime would take 4 times as long)
            return datetime(*map(int, local.groups()), tzinfo=SHANGHAI)  # type: ignore[misc]
        except ValueError:
            raise ValueError(f"{text!r} is not a real date and time") from None
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso) if iso.isascii() else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(
            "must be 'yyyy-MM-dd HH:mm:ss' (Asia/Shanghai time) or an ISO-8601 timestamp with an "
            "offset such as 2030-01-01T12:00:00+08:00"
        )
    return parsed


class BindRequest(BaseModel):
    """One BindAxnExtension call. Unknown fields are rejected so a typo cannot drop a parameter."""

    # Numbers are accepted for text fields (an order id often arrives as a JSON number).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)
    _params: dict[str, str] | None = PrivateAttr(default=None)

    PoolKey: str = Field(min_length=1, max_length=64)
    PhoneNoA: str
    Expiration: datetime | None = None  # always set once validated (from TtlSeconds if need be)
    TtlSeconds: int | None = Field(default=None, exclude=True)
    Extension: str | None = None
    PhoneNoX: str | None = None
    PhoneNoB: str | None = None
    ExpectCity: str | None = Field(default=None, max_length=32)
    IsRecordingEnabled: bool | None = None
    OutId: str | None = Field(default=None, max_length=256)
    OutOrderId: str | None = Field(default=None, max_length=256)
    CallDisplayType: int | None = None
    CallRestrict: Literal["CONTROL_AX_DISABLE", "CONTROL_BX_DISABLE"] | None = None
    RingConfig: str | None = Field(default=None, max_length=1024)
    ASRStatus: bool | None = None
    ASRModelId: str | None = Field(default=None, max_length=128)

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("(request): a bind request must be a JSON object")
        # Empty optional values (as form bodies and query strings send them) mean "not given".
        data = {k: v for k, v in data.items() if v is not None and v != ""}
        return data

    @field_validator("TtlSeconds", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> int:
        if isinstance(value, bool) or not (
            isinstance(value, int)
            or (isinstance(value, str) and value.strip().isascii() and value.strip().isdigit())
        ):
            raise ValueError("must be a whole number of seconds")
        seconds = int(value)
        if not MIN_LEAD_SECONDS < seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"must be more than {MIN_LEAD_SECONDS} and at most {MAX_TTL_SECONDS}")
        return seconds

    @field_validator("PhoneNoA", "PhoneNoB", "PhoneNoX", mode="before")
    @classmethod
    def _phone(cls, value: Any) -> str:
        return normalise_phone(value)

    @field_validator("Expiration", mode="before")
    @classmethod
    def _expiration(cls, value: Any, info: ValidationInfo) -> datetime:
        when = value if isinstance(value, datetime) else parse_expiration(value)
        now = _now(info)
        try:
            local = when.astimezone(SHANGHAI)
        except OverflowError:  # e.g. 9999-12-31T23:00:00-02:00 is past year 9999 in UTC+8
            raise ValueError(
                "is out of range: it falls after the year 9999 in Asia/Shanghai time"
            ) from None
        if local <= now + timedelta(seconds=MIN_LEAD_SECONDS):
            raise ValueError(
                f"must be more than {MIN_LEAD_SECONDS} seconds in the future; "
                f"{local.strftime(EXPIRATION_FORMAT)} (Asia/Shanghai) is not"
            )
        return local

    @field_validator("CallDisplayType", mode="before")
    @classmethod
    def _display_type(cls, value: Any) -> int:
        if value in (1, "1") and not isinstance(value, bool):
            return 1
        raise ValueError("must be 1 (the only value Dyplsapi accepts)")

    @field_validator("Extension", mode="before")
    @classmethod
    def _extension(cls, value: Any) -> str:
        text = (
            str(value).strip()
            if isinstance(value, (str, int)) and not isinstance(value, bool)
            else ""
        )
        if not _EXTENSION.fullmatch(text):
            raise ValueError("must be 1 to 3 digits")
        return text

    @model_validator(mode="after")
    def _cross_field_rules(self, info: ValidationInfo) -> BindRequest:
        if self.Extension is not None and self.PhoneNoX is None:
            raise ValueError(
                "Extension: can only be given together with PhoneNoX, the X number it extends "
                "(e.g. PhoneNoX=17000000001 and Extension=100), or left out to get one allocated"
            )
        if self.TtlSeconds is not None:
            if self.Expiration is not None:
                raise ValueError(
                    "TtlSeconds: cannot be given together with Expiration; send one of them "
                    "(e.g. TtlSeconds=3600 alone)"
                )
            self.Expiration = _now(info) + timedelta(seconds=self.TtlSeconds)
        elif self.Expiration is None:
            raise ValueError("Expiration: " + EXPIRATION_REQUIRED)
        return self

    def expiration_text(self) -> str:
        assert self.Expiration is not None  # set by _cross_field_rules
        # EXPIRATION_FORMAT, written by isoformat (a year after 999 has its 4 digits either way)
        local = self.Expiration.astimezone(SHANGHAI)
        return local.replace(tzinfo=None, microsecond=0).isoformat(" ")

    def to_params(self) -> dict[str, str]:
        """The parameters sent to Dyplsapi, all strings, booleans as ``true``/``false``; made
        once per request (the fingerprint, the call and the event all need them), a new dict
        each time."""
        private = self.__pydantic_private__  # self._params would go through pydantic's getattr
        params = private["_params"]  # type: ignore[index]
        if params is None:
            params = {}
            for name, value in self.model_dump(exclude_none=True).items():
                if name == "Expiration":
                    params[name] = self.expiration_text()
                elif isinstance(value, bool):
                    params[name] = "true" if value else "false"
                else:
                    params[name] = str(value)
            private["_params"] = params  # type: ignore[index]
        return dict(params)


# What each field takes, and an example: the second half of every message about it.
RULES: dict[str, tuple[str, str]] = {
    "PoolKey": ("the number pool's key, 1 to 64 characters", "FC100000012345678"),
    "PhoneNoA": ("a mainland mobile or a landline with its area code", "13900000001"),
    "PhoneNoB": ("a mainland mobile or a landline with its area code", "13900000002"),
    "PhoneNoX": ("an X number of the pool", "17000000001"),
    "Expiration": ("'yyyy-MM-dd HH:mm:ss' in Asia/Shanghai time", "2030-01-01 12:00:00"),
    "TtlSeconds": (f"whole seconds from now, {MIN_LEAD_SECONDS + 1} to {MAX_TTL_SECONDS}", "3600"),
    "Extension": ("1 to 3 digits, with PhoneNoX", "100"),
    "ExpectCity": ("a city name in Chinese, at most 32 characters", "北京"),
    "IsRecordingEnabled": ("true or false", "true"),
    "ASRStatus": ("true or false", "false"),
    "OutId": ("text of at most 256 characters", "shop-42"),
    "OutOrderId": ("text of at most 256 characters", "DD-20240501-0001"),
    "CallDisplayType": ("1", "1"),
    "CallRestrict": ("CONTROL_AX_DISABLE or CONTROL_BX_DISABLE", "CONTROL_BX_DISABLE"),
    "RingConfig": ("text of at most 1024 characters", "{}"),
    "ASRModelId": ("text of at most 128 characters", "model-1"),
}
BOOLEANS = "true/false, 1/0, yes/no, on/off, y/n, t/f, in any letter case"


def _example(field: str) -> str:
    rule = RULES.get(field)
    return f" (e.g. {field}={rule[1]})" if rule else ""


# Longer names are quoted cut short, and cannot be a near miss of any parameter name.
MAX_SHOWN_NAME = 64


def shown_name(name: str) -> str:
    """A field name the caller sent, as a message quotes it: at most MAX_SHOWN_NAME characters,
    phone numbers masked (a number sent as a key is still a number)."""
    return shown(name, MAX_SHOWN_NAME) + ("…" if len(name) > MAX_SHOWN_NAME else "")


def did_you_mean(name: str) -> str | None:
    """The parameter ``name`` was probably meant to be: same letters in another case, or close."""
    if len(name) > MAX_SHOWN_NAME:
        return None
    for field in RULES:
        if field.lower() == name.lower():
            return field
    import difflib

    close = difflib.get_close_matches(name, list(RULES), n=1, cutoff=0.75)
    if close:
        return close[0]
    lowered = {f.lower(): f for f in RULES}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None


def _problem(error: Any, field: str) -> str:
    """What is wrong, in this project's words (never pydantic's own text)."""
    kind = error.get("type", "")
    rule = RULES.get(field, ("a valid value", ""))[0]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        if field == "PoolKey":
            return "is required (or set AXN_POOL_KEY for the function): " + rule
        return f"is required: {rule}"
    if kind == "string_too_long":
        return f"is too long: at most {ctx.get('max_length')} characters"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false ({BOOLEANS})"
    if kind == "literal_error":
        return f"must be {rule}"
    if kind in ("string_type", "int_type", "int_parsing", "dict_type", "model_type"):
        return f"has the wrong type: it must be {rule}"
    if kind == "value_error":
        return str(ctx.get("error") or error.get("msg", "")).removeprefix("Value error, ")
    return f"is not valid: it must be {rule}"


def _describe(error: Any) -> dict[str, str]:
    """``{"Field", "Message"}`` for one validation error, the message naming the rule and an
    example. Model-level rules raise "Field: text"."""
    kind = error.get("type", "")
    loc = ".".join(str(p) for p in error.get("loc", ()))
    if kind == "extra_forbidden":
        meant = did_you_mean(loc)
        hint = f"did you mean {meant}?" if meant else "the fields are " + ", ".join(RULES)
        return {
            "Field": shown_name(loc),
            "Message": f"is not a field of a bind request (names are case-sensitive); {hint}",
        }
    if kind == "string_unicode":  # a lone surrogate escape (\ud800) in a name or a value
        return {
            "Field": loc or "(request)",
            "Message": "holds text that is not valid Unicode (a lone surrogate such as \\ud800); "
            "send UTF-8 text",
        }
    if not loc:
        text = _problem(error, "")
        loc, _, text = text.partition(": ") if ": " in text else ("(request)", "", text)
        return {"Field": loc, "Message": text}
    return {"Field": loc, "Message": _problem(error, loc) + _example(loc)}


def build_request(data: Any, *, default_pool: str = "", now: datetime | None = None) -> BindRequest:
    """Validate ``data`` into a BindRequest or raise RequestValidationError listing every problem.

    ``now`` (an aware datetime) is the time the request is judged at; the default is the clock.
    """
    if isinstance(data, dict) and not data.get("PoolKey") and default_pool:
        data = {**data, "PoolKey": default_pool}
    try:
        return BindRequest.model_validate(data, context={"now": now} if now else None)
    except ValidationError as exc:
        raw = exc.errors(include_url=False, include_input=False)
        # A misspelt field is one problem, not two: its "did you mean" replaces the "required".
        meant = {did_you_mean(str(e["loc"][0])) for e in raw if e["type"] == "extra_forbidden"}
        errors = [
            _describe(e)
            for e in raw
            if not (e["type"] == "missing" and e["loc"] and e["loc"][0] in meant)
        ]
        if (
            isinstance(data, dict)
            and all(data.get(k) in (None, "") for k in ("Expiration", "TtlSeconds"))
            and not {"Expiration", "TtlSeconds"} & meant
        ):
            # The cross-field rule runs only once every field is valid; name it with the rest.
            missing = {"Field": "Expiration", "Message": EXPIRATION_REQUIRED}
            if missing not in errors:
                errors.append(missing)
        raise RequestValidationError.from_fields(errors) from None
