"""Announcing outcomes to the order flow: one small module per kind of target, behind one
interface, each imported only when a target of its kind is configured.

A target is named by a URL (see :func:`open_target`). ``send`` delivers one event or raises
:class:`PublishError`, which says whether trying again later may succeed. Targets never log or
return their credentials, and a target's ``name`` is safe to show.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from ..errors import ConfigurationError, PublishError
from .event import Event

__all__ = ["Event", "PublishError", "Target", "open_target"]


class Target(Protocol):
    name: str  # the URL without credentials or query: safe in logs and answers

    def send(self, event: Event, *, timeout: float) -> None:
        """Deliver ``event`` within ``timeout`` seconds, or raise PublishError."""


def open_target(url: str, *, webhook_secret: str | None = None) -> Target:
    """The target ``url`` names. Raises ConfigurationError naming what is wrong (never the
    URL's credentials)."""
    scheme = urlsplit(url.strip()).scheme.lower()
    if scheme in ("https", "http"):
        from .webhook import WebhookTarget

        return WebhookTarget(url.strip(), webhook_secret)
    if scheme == "file":
        from .file import FileTarget

        return FileTarget(url.strip())
    raise ConfigurationError(
        f"AXN_PUBLISH_TO: {scheme or 'a target without a scheme'}:// is not a kind of target "
        "this function publishes to; use https://… (a webhook) or file://… (local)."
    )
