"""Local Dyplsapi emulator (BindAxnExtension and a binding's life: query, update, unbind).

Local test tooling served on loopback; never deployed.
"""

from .admin import EmulatorAdmin, EmulatorAdminError
from .config import (
    API_VERSION,
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_MAX_EXTENSIONS_PER_NUMBER,
    DEFAULT_POOL_KEY,
    DEFAULT_PORT,
    DEFAULT_STS_ACCESS_KEY_ID,
    DEFAULT_STS_ACCESS_KEY_SECRET,
    DEFAULT_STS_SECURITY_TOKEN,
    EMPTY_POOL_KEY,
    STRICT_POOL_KEY,
    Credential,
    Pool,
    XNumber,
    default_credentials,
    default_pools,
)
from .faults import KINDS as FAULT_KINDS
from .server import Emulator

__all__ = [
    "API_VERSION",
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCESS_KEY_SECRET",
    "DEFAULT_MAX_EXTENSIONS_PER_NUMBER",
    "DEFAULT_POOL_KEY",
    "DEFAULT_PORT",
    "DEFAULT_STS_ACCESS_KEY_ID",
    "DEFAULT_STS_ACCESS_KEY_SECRET",
    "DEFAULT_STS_SECURITY_TOKEN",
    "EMPTY_POOL_KEY",
    "FAULT_KINDS",
    "STRICT_POOL_KEY",
    "Credential",
    "Emulator",
    "EmulatorAdmin",
    "EmulatorAdminError",
    "Pool",
    "XNumber",
    "default_credentials",
    "default_pools",
]
