"""What a phone number is: the one rule the bind request validates with (``models``) and the log
scrubber masks with (``log``), so that what is accepted as a number is always masked as one.

A mainland mobile (``1`` + 10 digits) or a landline with its area code (``0`` + 9 to 11 digits),
written with any whitespace and hyphens, and after ``+86`` or ``0086``.
"""

from __future__ import annotations

import re

# What may separate the digits: any whitespace (Unicode: tab, newline, NBSP, U+3000, ...) and
# the hyphen. A character class body, so that the scrubber's candidate runs use the same one.
SEPARATOR = r"\s\-"
_SEPARATORS = re.compile(f"[{SEPARATOR}]")
# re.ASCII: only 0-9 are digits; Arabic-Indic, Devanagari or fullwidth digits are refused.
_NUMBER = re.compile(r"1\d{10}|0\d{9,11}", re.ASCII)
# How many digits a number is written with: from a 10-digit landline to 0086 before a 12-digit
# one (0 + a 3-digit area code + 8 digits).
FEWEST_DIGITS, MOST_DIGITS = 10, 16
INVALID = (
    "must be a mainland mobile (11 digits starting with 1) or a landline with its area code "
    "(e.g. 057188992688); +86/0086 prefixes, spaces and hyphens are allowed"
)


def number_in(written: str) -> str | None:
    """The bare digits of the number ``written`` with its separators already removed (such as
    ``+8657188992688``), or None when it is not one."""
    digits = written
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
            # The international form drops a landline's trunk 0 (+86 571 …, +86 10 …). A 1 after
            # the prefix begins a mobile, except for Beijing's area code 10 before a 7 or 8 digit
            # number: 10 is the only area code that starts with 1, and 11 digits are a mobile.
            if 9 <= len(digits) <= 11 and (
                not digits.startswith(("0", "1")) or (digits.startswith("10") and len(digits) < 11)
            ):
                digits = "0" + digits
            break
    return digits if _NUMBER.fullmatch(digits) else None


def normalise_phone(value: object) -> str:
    """Bare digits of a mainland mobile (``1xxxxxxxxxx``) or a landline with area code (``0...``);
    ValueError when ``value`` is not one."""
    ok = isinstance(value, (str, int)) and not isinstance(value, bool)
    number = number_in(_SEPARATORS.sub("", str(value))) if ok else None
    if number is None:
        raise ValueError(INVALID)
    return number
