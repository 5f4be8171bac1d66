"""All settings, read from environment variables and validated once per instance.

Every variable the function reads is listed in ``SETTINGS`` (name, default, description); the README
table and the ``s.yaml`` environment are checked against it by the test suite.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import ConfigurationError
from .mapping import FieldMap
from .urls import is_loopback, split

# name -> (default, one-line description). Credentials have no default.
SETTINGS: dict[str, tuple[str | None, str]] = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": (None, "Access key id (set by FC from the function's role)."),
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": (None, "Access key secret (set by FC; never logged)."),
    "ALIBABA_CLOUD_SECURITY_TOKEN": (None, "STS token for role credentials (set by FC)."),
    "AXN_POOL_KEY": ("", "Number pool used when a request carries no PoolKey."),
    "DYPLS_ENDPOINT": ("https://dyplsapi.aliyuncs.com", "Dyplsapi endpoint."),
    "DYPLS_SIGNATURE_VERSION": ("v3", "v3 (ACS3-HMAC-SHA256) or v1 (HMAC-SHA1)."),
    "DYPLS_CONNECT_TIMEOUT": ("5", "Seconds to wait for a connection."),
    "DYPLS_READ_TIMEOUT": ("10", "Seconds to wait for the answer once the request is sent."),
    "DYPLS_MAX_ATTEMPTS": ("4", "Attempts per call for retryable failures (1 = no retry)."),
    "DYPLS_BACKOFF_BASE_MS": ("200", "First retry delay in ms; doubles each attempt, with jitter."),
    "DYPLS_BACKOFF_MAX_MS": ("3000", "Longest single retry delay in ms."),
    "AXN_DEADLINE_MARGIN_MS": ("1500", "Time kept in reserve before the function's timeout."),
    "AXN_LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING or ERROR."),
    "AXN_FIELD_MAP": ("", "JSON map from bind fields to $.paths in event messages, or constants."),
    "AXN_IDEMPOTENCY_URL": ("memory://", "memory:// (one instance) or redis:// / rediss:// URL."),
    "AXN_IDEMPOTENCY_TTL_SECONDS": ("86400", "How long idempotency records are kept."),
    "AXN_UNKNOWN_OUTCOME": ("refuse", "After an unknown outcome: refuse (409) or reexecute."),
    "AXN_STORE_DURABILITY": (
        "enforce",
        "enforce: refuse to bind on a Redis that may evict or forget records; warn: log it.",
    ),
    "AXN_PUBLISH_TO": (
        "",
        "Where outcomes are announced: comma-separated target URLs; empty: nowhere.",
    ),
    "AXN_WEBHOOK_SECRET": ("", "whsec_… secret that signs webhook deliveries (never logged)."),
    "AXN_PUBLISH_TIMEOUT_MS": ("5000", "Longest one target may take to accept an event."),
    "AXN_SWEEP_GRACE_SECONDS": (
        "300",
        "Age after which the sweep republishes an outcome still unannounced.",
    ),
    "AXN_DIRECT_INVOCATION": (
        "sync",
        "sync: a direct invocation answers every failure; async: "
        "it raises for transient ones so FC retries.",
    ),
}


def _text(env: Mapping[str, str], name: str) -> str:
    """The value of ``name``, stripped, or its default from SETTINGS (the one place defaults live)."""
    return (env.get(name) or "").strip() or SETTINGS[name][0] or ""


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = _text(env, name).lower()
    if value not in choices:
        raise ConfigurationError(f"{name} must be {' or '.join(choices)}, got {value[:40]!r}.")
    return value


def _number(env: Mapping[str, str], name: str, low: float, high: float) -> float:
    raw = _text(env, name)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}.") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low:g} and {high:g}, got {raw}.")
    return value


class Settings(NamedTuple):
    """Every setting of the function, read from the environment and checked once per instance
    (:meth:`from_env`). No field has a default of its own: the defaults are SETTINGS'."""

    pool_key: str
    endpoint: str
    signature_version: str
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    backoff_base: float
    backoff_max: float
    deadline_margin: float
    log_level: str
    field_map: FieldMap | None
    idempotency_url: str
    idempotency_ttl: int
    unknown_outcome: str
    direct_async: bool
    enforce_durability: bool
    publish_to: tuple[str, ...]
    webhook_secret: str  # never shown (__repr__)
    publish_timeout: float
    sweep_grace: float

    def __repr__(self) -> str:
        """Never a secret: no webhook secret, and URLs (a Redis password, a token in a webhook's
        query) shown as scheme://host only."""
        shown = {**self._asdict(), "idempotency_url": _origin(self.idempotency_url)}
        shown["publish_to"] = tuple(_origin(url) for url in self.publish_to)
        del shown["webhook_secret"]
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; raise ConfigurationError naming the first bad one."""
        env = os.environ if env is None else env
        endpoint = _endpoint(_text(env, "DYPLS_ENDPOINT"))
        version = _choice(env, "DYPLS_SIGNATURE_VERSION", ("v3", "v1"))
        level = _choice(env, "AXN_LOG_LEVEL", ("debug", "info", "warning", "error")).upper()
        return cls(
            pool_key=_text(env, "AXN_POOL_KEY"),
            endpoint=endpoint,
            signature_version=version,
            connect_timeout=_number(env, "DYPLS_CONNECT_TIMEOUT", 0.1, 60),
            read_timeout=_number(env, "DYPLS_READ_TIMEOUT", 0.1, 120),
            max_attempts=int(_number(env, "DYPLS_MAX_ATTEMPTS", 1, 10)),
            backoff_base=_number(env, "DYPLS_BACKOFF_BASE_MS", 0, 60_000) / 1000,
            backoff_max=_number(env, "DYPLS_BACKOFF_MAX_MS", 0, 60_000) / 1000,
            deadline_margin=_number(env, "AXN_DEADLINE_MARGIN_MS", 0, 60_000) / 1000,
            log_level=level,
            field_map=FieldMap.parse(env.get("AXN_FIELD_MAP") or "", _bind_fields()),
            idempotency_url=_text(env, "AXN_IDEMPOTENCY_URL"),
            idempotency_ttl=int(_number(env, "AXN_IDEMPOTENCY_TTL_SECONDS", 3600, 30 * 86400)),
            unknown_outcome=_choice(env, "AXN_UNKNOWN_OUTCOME", ("refuse", "reexecute")),
            direct_async=_choice(env, "AXN_DIRECT_INVOCATION", ("sync", "async")) == "async",
            enforce_durability=_choice(env, "AXN_STORE_DURABILITY", ("enforce", "warn"))
            == "enforce",
            publish_to=tuple(
                u.strip() for u in _text(env, "AXN_PUBLISH_TO").split(",") if u.strip()
            ),
            webhook_secret=(env.get("AXN_WEBHOOK_SECRET") or "").strip(),
            publish_timeout=_number(env, "AXN_PUBLISH_TIMEOUT_MS", 100, 60_000) / 1000,
            sweep_grace=_number(env, "AXN_SWEEP_GRACE_SECONDS", 0, 86_400),
        )


def _endpoint(text: str) -> str:
    """``scheme://host[:port]`` of DYPLS_ENDPOINT, built from the parts :func:`split` checked:
    the place the check names is the place the client connects to."""
    url = split(text, "DYPLS_ENDPOINT", credentials=False)
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError("DYPLS_ENDPOINT must be an https:// URL: https://host[:port].")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ConfigurationError(
            "DYPLS_ENDPOINT may use plain http:// only for a loopback host "
            f"(127.0.0.1, ::1, localhost); use https:// for {url.host}."
        )
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ConfigurationError("DYPLS_ENDPOINT must not carry a path or query.")
    return url.origin


def _origin(url: str) -> str:
    """``scheme://host`` of ``url``: no user, password, path or query. A URL :func:`split`
    refuses shows nothing of itself: the host it seems to name may not be the one."""
    if not url:
        return url
    try:
        parts = split(url, "")
    except ConfigurationError:
        return "(refused)"
    return f"{parts.scheme}://{parts.host}"


def _bind_fields() -> set[str]:
    from .models import BindRequest

    return set(BindRequest.model_fields)


def fc_location(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """FC_REGION and FC_ACCOUNT_ID, which Function Compute sets, from ``env`` (default: the
    process environment), stripped; "" for one not set. Not checked: a caller that builds a
    host name from them checks them first (:func:`axn_bind.publish.http.endpoint`)."""
    env = os.environ if env is None else env
    return (env.get("FC_REGION") or "").strip(), (env.get("FC_ACCOUNT_ID") or "").strip()


class Credentials(NamedTuple):
    """An access key pair, with the STS token when the key is temporary."""

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None

    def __repr__(self) -> str:  # never show the secret or the token
        return f"Credentials(access_key_id={self.access_key_id!r}, sts={bool(self.security_token)})"


def credentials_from(env: Mapping[str, str] | None = None, context: Any = None) -> Credentials:
    """Credentials from the environment, else from ``context.credentials`` (python3.10 runtime).

    Read on every call: FC rotates role credentials while an instance lives.
    """
    env = os.environ if env is None else env
    key_id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "").strip()
    secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "").strip()
    token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN", "").strip() or None
    if not (key_id and secret):
        creds = getattr(context, "credentials", None)
        key_id = (getattr(creds, "access_key_id", None) or "").strip()
        secret = (getattr(creds, "access_key_secret", None) or "").strip()
        token = (getattr(creds, "security_token", None) or "").strip() or None
    if not (key_id and secret):
        raise ConfigurationError(
            "No Alibaba Cloud credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET, or give the function a role.",
            code="MissingCredentials",
        )
    if key_id.startswith("STS.") and not token:
        raise ConfigurationError(
            "The access key id is an STS key but ALIBABA_CLOUD_SECURITY_TOKEN is empty.",
            code="MissingCredentials",
        )
    return Credentials(key_id, secret, token)


_cached: Settings | None = None


def get_settings() -> Settings:
    """The instance's settings, validated on first use."""
    global _cached  # noqa: PLW0603 - one validated copy per instance
    if _cached is None:
        _cached = Settings.from_env()
    return _cached


def reset_settings() -> None:
    """Forget the cached settings (tests, and ``initialize`` after an environment change)."""
    global _cached  # noqa: PLW0603
    _cached = None
