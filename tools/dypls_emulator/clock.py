"""The emulator's adjustable clock and the time formats it reads and writes."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_UTC_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_LOCAL_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


class Clock:
    """Wall-clock time shifted by an offset in seconds."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self.offset_seconds = float(offset_seconds)

    def now(self) -> float:
        """Current emulator time as a Unix timestamp."""
        return time.time() + self.offset_seconds


def parse_utc_stamp(text: str) -> float | None:
    """Parse `yyyy-MM-ddTHH:mm:ssZ`; None when malformed."""
    if not _UTC_STAMP.match(text):
        return None
    try:
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc).timestamp()


def format_utc_stamp(epoch: float) -> str:
    """Format as `yyyy-MM-ddTHH:mm:ssZ`."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_shanghai(text: str) -> float | None:
    """Parse `yyyy-MM-dd HH:mm:ss` as Asia/Shanghai time; None when malformed."""
    if not _LOCAL_STAMP.match(text):
        return None
    try:
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return parsed.replace(tzinfo=SHANGHAI).timestamp()


def format_shanghai(epoch: float) -> str:
    """Format as `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai time."""
    return datetime.fromtimestamp(epoch, SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
