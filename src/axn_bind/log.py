"""Structured, privacy-safe log lines: one JSON object per line, phone numbers always masked.

Callers pass masked values (:func:`mask_phone`); as a second line of defence every line is scanned
and any mainland mobile or landline number left in it is masked before it is written. Secrets,
tokens and raw bodies are never passed to the logger.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

LOGGER_NAME = "axn_bind"
# A mainland mobile (1 + 10 digits) or a landline with its area code (0 + 9 to 11 digits), also
# written in groups (139-0000-0001, 139 0000 0001, 0571-88992688) or after +86 / 0086 / 86.
_PHONE = re.compile(
    r"(?<!\d)(?:(?:\+|00)?86[- ]?)?"
    r"(1\d{2}[- ]?\d{4}[- ]?\d{4}|0\d{2,3}[- ]?\d{7,8}|0\d{9,11})(?!\d)"
)
# Fields written as they are, but only in this exact shape: an idempotency record's key is a
# hash whose digit runs can look like a phone number, and masking them would make the key useless
# to the operator who must clear it (python -m tools.idem --record …).
_VERBATIM = {"record": re.compile(r"axn:idem:[0-9a-f]{64}")}


def mask_phone(number: str | None) -> str | None:
    """``13912345678`` → ``139****5678``; keeps the first 3 and the last 4 digits."""
    if not number:
        return number
    if len(number) <= 7:
        return "*" * len(number)
    return f"{number[:3]}{'*' * (len(number) - 7)}{number[-4:]}"


# Where a number can be: a run of at least 10 digits, spaces and hyphens from digit to digit,
# or from a + (of +86). Only such runs are searched (a log line has a few), which is several
# times faster than running _PHONE over the whole line; a leading [+\d] class scans about twice
# as fast as an optional "\+?".
_CANDIDATE = re.compile(r"[+\d][\d -]{8,}\d")


def _mask(match: re.Match[str]) -> str:
    return mask_phone(match.group(1).replace("-", "").replace(" ", "")) or ""


def _mask_run(run: re.Match[str]) -> str:
    text = run.group()
    if text.isdigit():  # bare digits: a number in it would have to be all of it
        found = _PHONE.fullmatch(text)
        return _mask(found) if found else text
    return _PHONE.sub(_mask, text)


def scrub(text: str) -> str:
    """Mask every phone number found in ``text`` (written in groups or not)."""
    return _CANDIDATE.sub(_mask_run, text)


def shown(text: str, limit: int) -> str:
    """What a caller or a platform sent, as a message may quote it: at most ``limit``
    characters, and never a phone number (a path such as ``/bind/13900000001`` is quoted masked)."""
    return scrub(text[:limit])


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with every lone surrogate (JSON's ``"\\ud800"`` decodes to one) replaced by
    U+FFFD, so that it can be written as UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")  # fails only on a surrogate
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


logger = logging.getLogger(LOGGER_NAME)


def configure(level: str) -> None:
    """Set the level; add a stderr handler only when nothing (such as the FC runtime) has one."""
    logger.setLevel(level)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
        logger.addHandler(handler)


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Write ``{"event": event, **fields}`` as one scrubbed JSON line (None values left out)."""
    if not logger.isEnabledFor(level):
        return
    shown = {"event": event}
    kept = ""
    for name, value in fields.items():
        if value is None:
            continue
        verbatim = _VERBATIM.get(name)
        if verbatim is not None and isinstance(value, str) and verbatim.fullmatch(value):
            kept += f',"{name}":"{value}"'  # plain ASCII, checked: appended after the scrub
        else:
            shown[name] = value
    line = scrub(clean(json.dumps(shown, ensure_ascii=False, default=str, separators=(",", ":"))))
    if kept:
        line = line[:-1] + kept + "}"
    # The record is made here, not by logger.log: that would walk the stack for the file and
    # line of every line (fields FC's log format does not show, and that would name this file).
    logger.handle(logger.makeRecord(LOGGER_NAME, level, __file__, 0, line, None, None))
