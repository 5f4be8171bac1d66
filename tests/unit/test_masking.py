"""Phone numbers in what the function writes: whatever the bind request accepts as a number is
masked in a log line and in a quoted value, however it is spelt and wherever it sits.

The numbers are generated in every spelling the validator accepts, and each one is checked
against :func:`normalise_phone` first, so the generator cannot drift from the rule it tests.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from axn_bind.log import LOGGER_NAME, log, mask_phone, scrub, shown
from axn_bind.models import normalise_phone

# Every character the validator takes for a separator: any whitespace (tab, newline, NBSP,
# U+3000, ...; str.isspace is what a str pattern's \s matches) and the hyphen.
SEPARATORS = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()] + ["-"]


@contextmanager
def written() -> Iterator[io.StringIO]:
    """What the function's logger writes while the block runs, through a real stream handler
    with the format :func:`axn_bind.log.configure` gives it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def lines(output: str) -> list[Any]:
    """The JSON objects of the log lines in ``output`` (each must parse)."""
    return [json.loads(line.split("] ", 1)[1]) for line in output.splitlines()]


def flattened(node: Any) -> str:
    """Every key and value of a parsed line as text, one after another: what a reader of the
    decoded line sees (a newline written as \\n in the line is a newline here)."""
    if isinstance(node, dict):
        return "|".join(f"{flattened(k)}|{flattened(v)}" for k, v in node.items())
    if isinstance(node, list):
        return "|".join(flattened(v) for v in node)
    return str(node)


def leaks(number: str, spelling: str, text: str) -> list[str]:
    """What ``text`` shows of ``number``: any 7 of its digits in a row, as normalised or as
    spelt (with the spelling's own separators between them)."""
    found = [number[i : i + 7] for i in range(len(number) - 6) if number[i : i + 7] in text]
    at = [i for i, c in enumerate(spelling) if c in "0123456789"]
    for k in range(len(at) - 6):
        piece = spelling[at[k] : at[k + 6] + 1]
        if piece in text:
            found.append(piece)
    return found


def digits(count: int, lowest: str = "0") -> st.SearchStrategy[str]:
    """``count`` digits, the first of them at least ``lowest``."""
    first = st.sampled_from([d for d in "0123456789" if d >= lowest])
    rest = st.text("0123456789", min_size=count - 1, max_size=count - 1)
    return st.tuples(first, rest).map("".join)


@st.composite
def spelt(draw: st.DrawFn, written: str) -> str:
    """``written`` cut into groups anywhere (after the + too), joined by runs of separators."""
    cuts = sorted(draw(st.sets(st.integers(1, len(written) - 1), max_size=len(written) - 1)))
    pieces = [written[a:b] for a, b in zip([0, *cuts], [*cuts, len(written)], strict=True)]
    # Mostly the separators people type; any of the others now and then.
    one = st.sampled_from([" ", "-"]) | st.sampled_from(SEPARATORS)
    joins = [draw(st.text(one, min_size=1, max_size=3)) for _ in pieces[1:]]
    return pieces[0] + "".join(j + p for j, p in zip(joins, pieces[1:], strict=True))


@st.composite
def numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(normalised digits, a spelling of them): a mobile, or a landline with the 2-digit area
    code of Beijing (10) or Shanghai (21), another 02x one or a 3-digit one (0571 ...); with no
    prefix, +86 or 0086, and after a prefix with or without the landline's trunk 0."""
    if draw(st.booleans()):
        number = national = "1" + draw(digits(10))
        trunk = ""
    else:
        area = draw(st.sampled_from(["10", "21"]) | digits(1).map("2".__add__) | digits(3, "3"))
        national = area + draw(digits(7, "2") | digits(8, "2"))
        number = "0" + national
        trunk = "0"
    prefix = draw(st.sampled_from(["", "+86", "0086"]))
    if prefix and trunk and draw(st.booleans()):
        trunk = ""  # the international form drops the landline's 0
    spelling = draw(spelt(prefix + trunk + national))
    assert normalise_phone(spelling) == number, (spelling, number)  # the generator's own check
    return number, spelling


# Text around a number inside an identifier or a sentence: no digit and no +, which would make
# the number part of a longer one.
CONTEXT = st.text(st.sampled_from("abcxyzABC_:/.=#@?&"), max_size=6)


class Quoted:
    """A value the JSON encoder does not know: it is written as its str()."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return f"<{self.text}>"


def placed(text: str, where: str) -> dict[str, Any]:
    """``text`` as the log fields of a call: a field of its own, or deeper down."""
    return {
        "field": {"note": text},
        "list": {"items": ["first", text]},
        "dict": {"detail": {"outer": {"inner": text}, "n": 1}},
        "key": {"detail": {text: 1}},
        "object": {"detail": Quoted(text)},
    }[where]


@st.composite
def embedded(draw: st.DrawFn) -> tuple[str, str, str]:
    """(number, spelling, text): the spelling inside an identifier or between words."""
    number, spelling = draw(numbers())
    before = draw(CONTEXT) + draw(st.sampled_from(["", "-", " ", ":", "/", "\n"]))
    after = draw(st.sampled_from(["", "-", " ", "/", ".", "\t"])) + draw(CONTEXT)
    return number, spelling, before + spelling + after


@settings(max_examples=400, deadline=None)
@given(embedded(), st.sampled_from(["field", "list", "dict", "key", "object"]))
@example(("057188992688", "+8657188992688", "cloudevent:+8657188992688/x"), "field")
@example(("13900000001", "13900000001", "order-13900000001"), "field")
@example(("01088886666", "+86 10 8888 6666", "desk +86 10 8888 6666"), "field")
@example(("13900000001", "139\n0000\n0001", "call 139\n0000\n0001"), "list")
def test_a_number_the_validator_accepts_is_masked_in_every_log_line(case, where):
    number, spelling, text = case
    with written() as out:
        log("probe", **placed(text, where))
    output = out.getvalue()
    [line] = lines(output)  # still one JSON object
    assert not leaks(number, spelling, output), output
    assert not leaks(number, spelling, flattened(line)), line
    assert mask_phone(number) in output  # the operator still sees which number it was


@settings(max_examples=400, deadline=None)
@given(embedded())
@example(("057188992688", "0571-8899-2688", "/bind/0571-8899-2688"))
def test_a_number_the_validator_accepts_is_masked_where_a_message_quotes_it(case):
    number, spelling, text = case
    for quoted in (shown(text, 200), scrub(text)):
        assert not leaks(number, spelling, quoted), quoted
        assert mask_phone(number) in quoted


@pytest.mark.parametrize("spelling", ["+86 571 8899 2688", "008657188992688", "0571-8899-2688"])
def test_landline_spellings_the_validator_accepts_are_masked(spelling):
    assert normalise_phone(spelling) == "057188992688"
    assert scrub(f"desk {spelling}.") == "desk 057*****2688."
    with written() as out:
        log("bind", message_id=f"cloudevent:{spelling}/0001", note=f"call {spelling}")
    [line] = lines(out.getvalue())
    assert line["message_id"] == "cloudevent:057*****2688/0001"
    assert line["note"] == "call 057*****2688"


@pytest.mark.parametrize(
    "spelling", ["+86 10 8888 6666", "+861088886666", "0086-10-8888-6666", "+86 010 8888 6666"]
)
def test_a_beijing_landline_in_international_form_is_accepted_and_masked(spelling):
    """The international form drops the trunk 0, and Beijing's area code 10 starts with 1."""
    assert normalise_phone(spelling) == "01088886666"
    assert scrub(f"desk {spelling}") == "desk 010****6666"


@pytest.mark.parametrize("spelling", ["+86 139 0000 000", "+86 13 9000 0000", "+86 11 8888 6666"])
def test_a_mistyped_mobile_in_international_form_is_still_refused(spelling):
    """Only 10 is an area code that starts with 1: a short number after +86 1… is a mobile
    missing a digit, not a landline."""
    with pytest.raises(ValueError, match="mainland mobile"):
        normalise_phone(spelling)


def test_whitespace_a_log_line_escapes_does_not_hide_a_number():
    """A newline or a tab in a value is written as \\n or \\t in the JSON line: the number is
    masked before that, in lists, dicts and values the encoder writes as text too."""
    fields = {
        "note": "call 139\n0000\n0001",
        "items": ["0571\t8899\t2688"],
        "detail": {"phone": "+86\u3000139\xa00000\r\n0002", "139\x0b0000\x0c0003": 1},
        "other": Quoted("13900000004\n"),
    }
    with written() as out:
        log("probe", **fields)
    [line] = lines(out.getvalue())
    assert line == {
        "event": "probe",
        "note": "call 139****0001",
        "items": ["057*****2688"],
        "detail": {"phone": "139****0002", "139****0003": 1},
        "other": "<139****0004\n>",
    }


def test_a_number_logged_as_a_json_number_is_masked_and_the_line_stays_json():
    with written() as out:
        log("probe", phone=13900000001, negative=-13900000002, real=13900000003.0, count=12)
    [line] = lines(out.getvalue())
    assert line == {
        "event": "probe",
        "phone": "139****0001",
        "negative": "-139****0002",
        "real": "139****0003.0",
        "count": 12,
    }


def test_a_bare_86_before_a_number_is_still_taken_for_a_country_code():
    assert scrub("tel 8613900000001") == "tel 139****0001"
    assert scrub("tel 86 0571 88992688") == "tel 057*****2688"


def test_times_counts_and_identifiers_are_logged_as_they_are():
    """What is not a number the validator accepts is not masked: the figures an operator reads
    (and some that look close to a number) come out exactly as they went in."""
    fields = {
        "expiration": "2030-01-01 12:00:00",
        "iso": "2030-01-01T12:00:00+08:00",
        "when_ms": 1893456000000,
        "when_ms_text": "1893456000000",
        "when_s": 1893456000,
        "elapsed_ms": 123456,
        "pool": "FC100000000000001",
        "subs_id": "1000000872774721",
        "upstream_request_id": "C026F887-72A3-40E5-8E5F-39B1A660DE7D",
        "range": "1000-2000 3000-4000",
        "counts": [1, 23, 456, 7890123],
        "twelve_digits": "139000000012",
    }
    with written() as out:
        log("probe", **fields)
    [line] = lines(out.getvalue())
    assert line == {"event": "probe", **fields}


def test_a_quoted_value_cut_short_shows_no_more_of_a_number_than_its_mask():
    assert "1390000" not in shown("/bind/13900000001", 13)
    assert shown("/bind/13900000001", 13) == "/bind/139****"
