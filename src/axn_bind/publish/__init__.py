"""Announcing outcomes to the order flow: one small module per kind of target, behind one
interface, each imported only when a target of its kind is configured.

A target is named by a URL (see :func:`open_target`). ``send`` delivers one event or raises
:class:`PublishError`, which says whether trying again later may succeed. Targets never log or
return their credentials, and a target's ``name`` is safe to show.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import parse_qsl

from ..errors import ConfigurationError, PublishError
from ..urls import scheme_of, split
from .event import Event

__all__ = ["Event", "PublishError", "Target", "open_target", "query_options"]


class Target(Protocol):
    name: str  # the URL without credentials or query: safe in logs and answers

    def send(self, event: Event, *, timeout: float) -> None:
        """Deliver ``event`` within ``timeout`` seconds, or raise PublishError."""


# scheme -> (module, class): each module is imported only when a target of its kind is named.
KINDS: dict[str, tuple[str, str]] = {
    "https": ("webhook", "WebhookTarget"),
    "http": ("webhook", "WebhookTarget"),
    "file": ("file", "FileTarget"),
    "eventbridge": ("eventbridge", "EventBridgeTarget"),
    "mns": ("mns", "MnsTarget"),
    "fc": ("fc", "FcTarget"),
    "fc2": ("fc2", "Fc2Target"),
    "amqp": ("amqp", "AmqpTarget"),
    "amqps": ("amqp", "AmqpTarget"),
}
# The kinds whose client `pip install axn-bind` leaves out: module -> (client, extra that brings
# it). The FC code package carries them all (tools/package.py).
EXTRAS: dict[str, tuple[str, str]] = {"amqp": ("pika", "amqp")}
# The kinds whose URL may carry user:password@ (a webhook's Basic credentials, an AMQP static
# account); the others sign with the function's role and carry none.
CREDENTIALS = frozenset({"https", "http", "amqp", "amqps"})


def query_options(query: str, name: str, known: tuple[str, ...]) -> dict[str, str]:
    """The options given in the query of the target ``name``'s URL, each one of ``known``, at
    most once. ConfigurationError naming the setting, the target and the option for an unknown
    or repeated one (never its value: it may be a secret)."""
    if len(known) == 1:
        takes = f"it takes one query parameter, {known[0]}="
    else:
        takes = "its options are " + ", ".join(f"{k}=" for k in known[:-1]) + f" and {known[-1]}="
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in known:
            raise ConfigurationError(
                f"AXN_PUBLISH_TO: {name} has an unknown option ?{key[:40]}=; {takes}."
            )
        if key in options:
            raise ConfigurationError(f"AXN_PUBLISH_TO: {name} gives ?{key}= twice; give it once.")
        options[key] = value
    return options


def open_target(url: str, *, webhook_secret: str | None = None) -> Target:
    """The target ``url`` names. Raises ConfigurationError naming what is wrong (never the
    URL's credentials). Every URL is first read by :func:`axn_bind.urls.split`, so that what a
    target connects to is what urllib.parse, urllib3 and pika all read; then the target's own
    module applies the rules of its kind."""
    import importlib

    text = url.strip()
    scheme = scheme_of(text)
    kind = KINDS.get(scheme)
    if kind is None:
        forms = ", ".join(f"{k}://" for k in KINDS)
        raise ConfigurationError(
            f"AXN_PUBLISH_TO: {scheme or 'a target without a scheme'}:// is not a kind of target "
            f"this function publishes to; use one of {forms} (README, Publishing)."
        )
    split(text, f"AXN_PUBLISH_TO: the {scheme}:// target", credentials=scheme in CREDENTIALS)
    try:
        module = importlib.import_module(f"{__name__}.{kind[0]}")
    except ModuleNotFoundError as error:
        client, extra = EXTRAS.get(kind[0], ("", ""))
        if not client or error.name != client:
            raise
        raise ConfigurationError(
            f"AXN_PUBLISH_TO: {scheme}:// targets need the {client} package, which could not be "
            f"imported here; install the function with it: pip install 'axn-bind[{extra}]' (the "
            "code package tools/package.py builds carries it)."
        ) from None
    cls = getattr(module, kind[1])
    if kind[0] == "webhook":
        return cls(text, webhook_secret)
    return cls(text)
