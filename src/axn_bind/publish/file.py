"""A JSON-lines file (``file:///path/to/events.jsonl``), for local use: one event per line,
appended and flushed to disk before ``send`` returns."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError, PublishError
from .event import Event


class FileTarget:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConfigurationError(
                "AXN_PUBLISH_TO: a file target is file:///absolute/path.jsonl (three slashes)."
            )
        self.path = Path(unquote(parts.path))
        self.name = f"file://{self.path}"

    def send(self, event: Event, *, timeout: float) -> None:
        line = event.text.replace("\n", " ") + "\n"  # JSON text has no raw newlines; be sure
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise PublishError(
                f"cannot append to the file ({exc.strerror or type(exc).__name__})",
                target=self.name,
                retryable=True,
            ) from None
