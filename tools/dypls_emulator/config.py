"""Credentials and number pools served by the emulator, and their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

API_VERSION = "2017-05-25"
HOST_ID = "dyplsapi.aliyuncs.com"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 18021

DEFAULT_ACCESS_KEY_ID = "LTAIemulatorAK0001"
DEFAULT_ACCESS_KEY_SECRET = "emulator-secret-0001"
DEFAULT_STS_ACCESS_KEY_ID = "STS.emulator0001"
DEFAULT_STS_ACCESS_KEY_SECRET = "emulator-sts-secret-0001"
DEFAULT_STS_SECURITY_TOKEN = "emulator-sts-token+/=0001"

DEFAULT_POOL_KEY = "FC100000000000001"
STRICT_POOL_KEY = "FC100000000000002"
EMPTY_POOL_KEY = "FC100000000000003"
DEFAULT_MAX_EXTENSIONS_PER_NUMBER = 5


@dataclass(frozen=True)
class Credential:
    """An AccessKey pair; STS keys also carry a security token."""

    access_key_id: str
    secret: str
    security_token: str | None = None
    active: bool = True


@dataclass(frozen=True)
class XNumber:
    """An X number owned by a pool, with its city."""

    number: str
    city: str


@dataclass
class Pool:
    """A number pool; strict pools never leave the ExpectCity."""

    key: str
    numbers: tuple[XNumber, ...] = field(default_factory=tuple)
    strict: bool = False
    max_extensions_per_number: int = DEFAULT_MAX_EXTENSIONS_PER_NUMBER

    def find(self, number: str) -> XNumber | None:
        """Return the pool's X number equal to `number`, if any."""
        for x in self.numbers:
            if x.number == number:
                return x
        return None


def default_credentials() -> list[Credential]:
    """The plain and STS credentials the emulator accepts by default."""
    return [
        Credential(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
        Credential(
            DEFAULT_STS_ACCESS_KEY_ID, DEFAULT_STS_ACCESS_KEY_SECRET, DEFAULT_STS_SECURITY_TOKEN
        ),
    ]


def default_pools() -> list[Pool]:
    """A normal pool over three cities, a strict pool and an empty pool."""
    normal = (
        XNumber("17000000001", "北京"),
        XNumber("17000000002", "北京"),
        XNumber("17000000003", "北京"),
        XNumber("17100000001", "上海"),
        XNumber("17100000002", "上海"),
        XNumber("17100000003", "杭州"),
    )
    strict = (XNumber("17000000011", "北京"), XNumber("17100000011", "上海"))
    return [
        Pool(DEFAULT_POOL_KEY, normal),
        Pool(STRICT_POOL_KEY, strict, strict=True),
        Pool(EMPTY_POOL_KEY, ()),
    ]
