"""Structured, privacy-safe log lines: one JSON object per line, phone numbers always masked.

Callers pass masked values (:func:`mask_phone`); as a second line of defence every value is scanned
and any number the bind request would accept as a phone number (:mod:`axn_bind.phone`) is masked
before the line is written. Secrets, tokens and raw bodies are never passed to the logger, and the
library loggers that write a URL write it without its query or credentials.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from .phone import FEWEST_DIGITS, MOST_DIGITS, SEPARATOR, number_in

LOGGER_NAME = "axn_bind"
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


# Where a number can be: a run of digits and the separators the validator removes (any
# whitespace, hyphens), from a digit or a + (of +86) to a digit, long enough to hold the fewest
# digits a number has. Only such runs are examined (a log line has a few), which is several times
# faster than examining the whole line; a leading [+0-9] class scans about twice as fast as an
# optional "\+?".
_CANDIDATE = re.compile(f"[+0-9][0-9{SEPARATOR}]{{{FEWEST_DIGITS - 2},}}[0-9]")
_GROUP = re.compile("[0-9]+")
# Examining the stretches of a run costs up to 7 calls of the validator a group of digits: past
# this many groups in one text ("1 2 3 4 …", a table of figures) the runs left are masked whole,
# every digit, so that no text costs more than a few milliseconds.
_MOST_GROUPS = 256


def _stars(group: re.Match[str]) -> str:
    return "*" * len(group.group())


def _number(written: str) -> str | None:
    """The number ``written`` (digits, perhaps after a +) is by the validator's rule, or None.
    A bare 86 before a number is read as the country code too, as this scrubber always has."""
    number = number_in(written)
    if number is None and written.startswith("86") and number_in(written[2:]) == written[2:]:
        number = written[2:]
    return number


def _mask_run(run: re.Match[str], budget: list[int]) -> str:
    text = run.group()
    if text.isdigit():  # bare digits: a number in it would have to be all of it
        number = _number(text)
        return mask_phone(number) or text
    # Every stretch from the start of a group of digits (or the + before the first) to the end of
    # one is a number if the validator takes it for one: "order +86 571 8899 2688" holds one
    # from the +, and "0571 8899 2688" from its first digit. A number never begins or ends inside
    # a group: "1893456000000" (a time in ms) holds no mobile. From each start the longest one
    # is taken, and only if it reaches past what is masked already.
    groups = [(m.start(), m.end()) for m in _GROUP.finditer(text)]
    budget[0] -= len(groups)
    if budget[0] < 0:
        return _GROUP.sub(_stars, text)
    found: list[tuple[int, int, str]] = []
    covered = 0
    for i, (start, _) in enumerate(groups):
        ends: list[tuple[int, str]] = []
        written = ""
        for first, end in groups[i:]:
            written += text[first:end]
            if len(written) > MOST_DIGITS:
                break
            if len(written) >= FEWEST_DIGITS:
                ends.append((end, written))
        for end, written in reversed(ends):
            if end <= covered:
                break
            if i == 0 and text[0] == "+" and (number := _number("+" + written)):
                found.append((0, end, number))
            elif number := _number(written):
                found.append((start, end, number))
            else:
                continue
            covered = end
            break
    if not found:
        return text
    # Numbers that overlap are masked as one piece: the digits of the piece.
    pieces: list[str] = []
    at = j = 0
    while j < len(found):
        start, end, number = found[j]
        k = j + 1
        while k < len(found) and found[k][0] < end:
            end = found[k][1]
            k += 1
        if k > j + 1:
            number = "".join(_GROUP.findall(text, start, end))
        pieces += [text[at:start], mask_phone(number) or ""]
        at, j = end, k
    pieces.append(text[at:])
    return "".join(pieces)


def scrub(text: str) -> str:
    """Mask every phone number found in ``text``: every number the bind request would accept
    (:func:`axn_bind.phone.normalise_phone`), however it is spelt and wherever it sits."""
    budget = [_MOST_GROUPS]
    return _CANDIDATE.sub(lambda run: _mask_run(run, budget), text)


# A number cut by the limit would show its first digits; this much more is scrubbed before the
# text is cut, so that a number in it is cut masked.
_SHOWN_MARGIN = 32


def shown(text: str, limit: int) -> str:
    """What a caller or a platform sent, as a message may quote it: at most ``limit``
    characters, and never a phone number (a path such as ``/bind/13900000001`` is quoted masked)."""
    return scrub(text[: limit + _SHOWN_MARGIN])[:limit]


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


# How a line writes the whitespace JSON escapes: \n, \t, \r, \f, and \u000b, \u001c to \u001f.
_ESCAPED_SPACE = re.compile(r"\\[ntrfu]")
# A JSON number nearer 0 than this has too few digits to be a phone number.
_SMALL = 10 ** (FEWEST_DIGITS - 1)


def _scrubbed(value: Any) -> Any:
    """``value`` as the line writes it, every number in it masked: its text, its keys and items
    at any depth, a JSON number (one that is a phone number is written as its masked text)."""
    if isinstance(value, str):
        return scrub(value) if len(value) >= FEWEST_DIGITS else value
    if isinstance(value, dict):
        return {_scrubbed(k): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if -_SMALL < value < _SMALL:  # a count, a status, a duration
            return value
        text = float.__repr__(value) if isinstance(value, float) else int.__repr__(value)
        masked = scrub(text)  # as JSON writes it (NaN and Infinity hold no digits)
        return value if masked == text else masked
    return value  # None, True, False; anything else is written as _text(value)


def _text(value: Any) -> str:
    """A value the encoder does not know, as its str() with every number masked."""
    return scrub(str(value))


logger = logging.getLogger(LOGGER_NAME)

# The library loggers that write a URL: urllib3's request line ("POST /hooks/axn?token=… HTTP/1.1"
# at DEBUG), its retries, redirects and header warnings. requests, redis-py and pika write none
# (their reprs leave out passwords). A webhook URL's query may carry a token, and any URL's
# user:password@ a password: both are cut from their records, by a filter set here, on import,
# so that it is in place before any request is sent, whether or not configure() is called.
_URL_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.util.retry",
)
# A query runs to the next whitespace: a quote or a bracket may be part of it (requests sends
# ' ( ) as they are).
_URL_SECRETS = re.compile(r"(?<=://)[^\s@]*@|\?\S*")


def _cut(found: re.Match[str]) -> str:
    return "?…" if found.group().startswith("?") else ""


class _UrlFilter(logging.Filter):
    """Cuts every URL's query and ``user:password@`` from a library's record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: its template and arguments, as logging shows them
            message = f"{record.msg} {record.args}"
        cut = _URL_SECRETS.sub(_cut, message)
        if cut != message:
            record.msg, record.args = cut, None
        return True


_URL_FILTER = _UrlFilter()
for _name in _URL_LOGGERS:
    logging.getLogger(_name).addFilter(_URL_FILTER)


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
    line = json.dumps(shown, ensure_ascii=False, default=str, separators=(",", ":"))
    # Most lines hold no number and are written as dumped. One that holds a number, or escapes
    # whitespace (a newline is \n in the line: "139\n0000\n0001" is no run of digits there), is
    # dumped again from its values with every number masked, so that it stays JSON.
    if ("\\" in line and _ESCAPED_SPACE.search(line)) or scrub(line) != line:
        line = json.dumps(
            _scrubbed(shown), ensure_ascii=False, default=_text, separators=(",", ":")
        )
    line = clean(line)
    if kept:
        line = line[:-1] + kept + "}"
    # The record is made here, not by logger.log: that would walk the stack for the file and
    # line of every line (fields FC's log format does not show, and that would name this file).
    logger.handle(logger.makeRecord(LOGGER_NAME, level, __file__, 0, line, None, None))
