"""Bindings held by the emulator and allocation of X numbers and extensions."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .clock import format_shanghai
from .config import Pool, XNumber
from .errors import BusinessError

FIRST_EXTENSION = 100
LAST_EXTENSION = 999


@dataclass
class Binding:
    """One AXN extension binding."""

    subs_id: str
    pool_key: str
    phone_no_a: str
    secret_no: str
    extension: str
    expiration: str
    expire_at: float
    gmt_create: float
    city: str
    phone_no_b: str = ""
    out_id: str = ""
    out_order_id: str = ""
    need_record: bool = False
    call_restrict: str = ""
    asr_status: bool = False
    asr_model_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    unbound_at: float | None = None

    def is_active(self, now: float) -> bool:
        """Active until its expiration or until unbound."""
        return self.unbound_at is None and now < self.expire_at

    def status(self, now: float) -> str:
        """`active`, `expired` or `unbound`."""
        if self.unbound_at is not None:
            return "unbound"
        return "active" if now < self.expire_at else "expired"

    def to_admin(self, now: float) -> dict[str, object]:
        """All fields, for the introspection API."""
        return {
            "SubsId": self.subs_id,
            "PoolKey": self.pool_key,
            "PhoneNoA": self.phone_no_a,
            "PhoneNoB": self.phone_no_b,
            "SecretNo": self.secret_no,
            "Extension": self.extension,
            "City": self.city,
            "Expiration": self.expiration,
            "GmtCreate": format_shanghai(self.gmt_create),
            "OutId": self.out_id,
            "OutOrderId": self.out_order_id,
            "NeedRecord": self.need_record,
            "CallRestrict": self.call_restrict,
            "ASRStatus": self.asr_status,
            "ASRModelId": self.asr_model_id,
            "Extra": dict(self.extra),
            "status": self.status(now),
        }


class BindingStore:
    """Pools and bindings; callers serialise access."""

    def __init__(self, pools: list[Pool]) -> None:
        self.pools: dict[str, Pool] = {pool.key: pool for pool in pools}
        self.bindings: dict[str, Binding] = {}
        self._next_subs = 1000000800000000 + random.randrange(10**8)

    def clear(self) -> None:
        """Forget every binding."""
        self.bindings.clear()

    def new_subs_id(self) -> str:
        """A fresh 16-digit SubsId."""
        self._next_subs += 1
        return str(self._next_subs)

    def active_on(self, number: str, now: float) -> list[Binding]:
        """Active bindings on an X number."""
        return [b for b in self.bindings.values() if b.secret_no == number and b.is_active(now)]

    def allocate(
        self,
        pool: Pool,
        phone_no_a: str,
        phone_no_x: str | None,
        extension: str | None,
        expect_city: str | None,
        now: float,
    ) -> tuple[XNumber, str]:
        """Choose the X number and extension for a new binding, or raise BusinessError."""
        if phone_no_x:
            return self._allocate_on(pool, phone_no_a, phone_no_x, extension, now)
        blocked_by_a = False
        for number in self._candidates(pool, expect_city):
            active = self.active_on(number.number, now)
            if any(b.phone_no_a == phone_no_a for b in active):
                blocked_by_a = True
                continue
            if len(active) < pool.max_extensions_per_number:
                return number, _free_extension(active)
        detail = "phoneNoA already bound with the available numbers" if blocked_by_a else ""
        raise BusinessError("isv.NO_AVAILABLE_NUMBER", f"no available number {detail}".strip())

    def _allocate_on(
        self, pool: Pool, phone_no_a: str, phone_no_x: str, extension: str | None, now: float
    ) -> tuple[XNumber, str]:
        number = pool.find(phone_no_x)
        if number is None:
            raise BusinessError(
                "isv.FORBIDDEN_ACTION", "createSubs forbidden: phoneNoX does not belong to the pool"
            )
        active = self.active_on(number.number, now)
        if any(b.phone_no_a == phone_no_a for b in active):
            raise BusinessError("isv.BIND_CONFLICT", "phoneNoA already bound with phoneNoX")
        if extension and any(b.extension == extension for b in active):
            raise BusinessError("isv.BIND_CONFLICT", "extension already bound on phoneNoX")
        if len(active) >= pool.max_extensions_per_number:
            raise BusinessError("isv.NO_AVAILABLE_NUMBER", "no available extension on phoneNoX")
        return number, extension or _free_extension(active)

    def _candidates(self, pool: Pool, expect_city: str | None) -> list[XNumber]:
        if not expect_city:
            return list(pool.numbers)
        in_city = [x for x in pool.numbers if x.city == expect_city]
        if pool.strict:
            return in_city
        return in_city + [x for x in pool.numbers if x.city != expect_city]

    def find(self, subs_id: str, pool_key: str, secret_no: str) -> Binding | None:
        """The binding with this SubsId, pool and X, unless it was unbound (expired ones too)."""
        binding = self.bindings.get(subs_id)
        if binding is None or binding.unbound_at is not None:
            return None
        if binding.pool_key != pool_key or binding.secret_no != secret_no:
            return None
        return binding

    def find_active(
        self, subs_id: str, pool_key: str, secret_no: str, now: float
    ) -> Binding | None:
        """Like `find`, but None for an expired binding too."""
        binding = self.find(subs_id, pool_key, secret_no)
        return binding if binding is not None and binding.is_active(now) else None


def _free_extension(active: list[Binding]) -> str:
    taken = {b.extension for b in active}
    for n in range(FIRST_EXTENSION, LAST_EXTENSION + 1):
        if str(n) not in taken:
            return str(n)
    raise BusinessError("isv.NO_AVAILABLE_NUMBER", "no free extension")
