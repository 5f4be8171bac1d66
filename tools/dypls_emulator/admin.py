"""Client for the emulator's admin API, for tests that run the emulator in another process."""

from __future__ import annotations

import http.client
import json
import time
from typing import cast
from urllib.parse import urlsplit

JSON_TYPE = "application/json"


class EmulatorAdminError(RuntimeError):
    """The admin API refused a call."""


class EmulatorAdmin:
    """The `Emulator` control methods, over HTTP."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._netloc = urlsplit(self.url).netloc

    def _call(self, method: str, name: str, payload: object = None) -> dict[str, object]:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        conn = http.client.HTTPConnection(self._netloc, timeout=self.timeout)
        try:
            conn.request(
                method, f"/_emulator/{name}", body=body, headers={"Content-Type": JSON_TYPE}
            )
            response = conn.getresponse()
            data = response.read().decode("utf-8")
        finally:
            conn.close()
        if response.status != 200:
            raise EmulatorAdminError(f"{response.status}: {data}")
        return cast("dict[str, object]", json.loads(data))

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll /_emulator/info until the emulator answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.info()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def info(self) -> dict[str, object]:
        """API version, AccessKeyIds, pools and clock."""
        return self._call("GET", "info")

    def add_fault(self, kind: str, count: int = 1, **options: object) -> dict[str, object]:
        """Queue a fault; returns it as stored."""
        reply = self._call("POST", "faults", {"kind": kind, "count": count, **options})
        return cast("list[dict[str, object]]", reply["added"])[0]

    def clear_faults(self) -> None:
        """Drop all queued faults."""
        self._call("DELETE", "faults")

    def faults(self) -> list[dict[str, object]]:
        """Queued faults."""
        return cast("list[dict[str, object]]", self._call("GET", "faults")["faults"])

    def bindings(self) -> list[dict[str, object]]:
        """All bindings with their status."""
        return cast("list[dict[str, object]]", self._call("GET", "bindings")["bindings"])

    def requests(self) -> list[dict[str, object]]:
        """The request log."""
        return cast("list[dict[str, object]]", self._call("GET", "requests")["requests"])

    def reset(self) -> None:
        """Clear bindings, requests, faults and nonces; restore clock and caps."""
        self._call("POST", "reset")

    def set_clock_offset(self, seconds: float) -> None:
        """Shift the emulator clock by `seconds` from wall-clock time."""
        self._call("POST", "clock", {"offset_seconds": seconds})

    def set_max_extensions(self, count: int) -> None:
        """Set every pool's per-number extension cap."""
        self._call("POST", "config", {"max_extensions_per_number": count})
