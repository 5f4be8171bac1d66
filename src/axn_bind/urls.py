"""One reading of every URL the function connects to, and the one loopback rule.

Two parsers that read a URL differently send a connection somewhere the check did not look:
``http://100.100.100.200\\@127.0.0.1:9/`` is 127.0.0.1 to :func:`urllib.parse.urlsplit` and
100.100.100.200 to urllib3, which requests (and so Dyplsapi and every HTTP target) connects
with. :func:`split` reads a URL setting once and refuses what parsers are known to read
differently, and any URL whose scheme, host or port ``urlsplit`` and urllib3's ``parse_url`` do
read differently; redis-py and pika read with ``urllib.parse``, requests with urllib3, so an
accepted URL means the same place to all of them. What connects is built from the :class:`Url`
it returns (:attr:`Url.origin`, :meth:`Url.text`), never from the text as given.

A refusal is a ConfigurationError naming the setting and what to fix. It never quotes the value:
a URL may hold a password or a token.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from .errors import ConfigurationError

LOOPBACK_NAMES = frozenset({"localhost"})
# Patterns, compiled (and cached by re) on first use, not at import: a cold start pays for them
# only once a URL is read.
_SCHEME = r"([A-Za-z][A-Za-z0-9+.-]*):"
# scheme://authority as urlsplit and urllib3 both find it: up to the first /, ? or # (a
# backslash, which only urllib3 ends it at, is refused before).
_AUTHORITY = r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)"


def scheme_of(value: str) -> str:
    """The scheme of ``value`` in lower case, as urlsplit finds it, or "" when it has none;
    never raises (urlsplit does, for an unreadable host)."""
    found = re.match(_SCHEME, value)
    return found.group(1).lower() if found else ""


def is_loopback(host: str) -> bool:
    """True for the name ``localhost`` and for IP literals in 127.0.0.0/8 or ``::1`` (brackets
    or not); every other spelling (``0x7f000001``, ``127.1``, ``localhost.``) is not."""
    host = host.lower()
    if host in LOOPBACK_NAMES:
        return True
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Url(NamedTuple):
    """A URL as both parsers read it. ``host`` is in lower case, an IPv6 address without its
    brackets, "" when there is none; ``userinfo`` is the ``user:password`` part as written
    (percent-encoded), "" when there is none."""

    scheme: str
    host: str
    port: int | None
    userinfo: str
    path: str
    query: str
    fragment: str

    def __repr__(self) -> str:  # never the user:password, nor a token in the path or query
        return f"Url({self.origin})"

    @property
    def netloc(self) -> str:
        """``host[:port]``, an IPv6 address in brackets: no user or password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host + (f":{self.port}" if self.port is not None else "")

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``: where a connection goes, and nothing secret."""
        return f"{self.scheme}://{self.netloc}"

    def text(self) -> str:
        """The URL rebuilt from its checked parts (the fragment left out: it is never sent)."""
        user = f"{self.userinfo}@" if self.userinfo else ""
        query = f"?{self.query}" if self.query else ""
        path = self.path or ("/" if query else "")  # https://host?q: the request target is /?q
        return f"{self.scheme}://{user}{self.netloc}{path}{query}"


def _refuse(setting: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"{setting} {problem}")


def split(value: str, setting: str, *, credentials: bool = True) -> Url:
    """Read the URL ``value`` of ``setting`` (the name shown in a refusal, e.g. ``DYPLS_ENDPOINT``
    or ``AXN_PUBLISH_TO: a webhook target``). ConfigurationError, naming ``setting`` and what to
    fix and never quoting the value, for a backslash, a control character, a space or DEL; an
    ``@`` anywhere but once at the end of the ``user:password`` part (anywhere at all when
    ``credentials`` is false: the URL carries none); a percent-encoded or non-ASCII host; a URL
    ``urlsplit`` or urllib3 cannot read, or that they read with another scheme, host or port;
    and port 0."""
    from urllib3.exceptions import LocationParseError  # loaded with requests already
    from urllib3.util import parse_url

    if "\\" in value:
        raise _refuse(
            setting,
            "holds a backslash (\\), which one URL parser reads as part of the host and another "
            "as the start of the path; remove it (inside a path or password, write it %5C).",
        )
    if any(c <= " " or c == "\x7f" for c in value):
        raise _refuse(
            setting,
            "holds a space, a tab, a line break or another control character; remove it "
            "(inside a path or password, write a space %20).",
        )
    found = re.match(_AUTHORITY, value)
    authority = found.group(1) if found else ""
    if "@" in value and not credentials:
        raise _refuse(
            setting,
            "must not carry credentials (the function signs with its role's): remove the "
            "user:password part (an @ that belongs in a name or option is written %40).",
        )
    if value.count("@") > 1:
        raise _refuse(
            setting,
            "holds more than one @; only the one ending user:password@ may stay: write an @ "
            "inside a user name or password as %40.",
        )
    if "@" in value and "@" not in authority:
        raise _refuse(
            setting,
            "holds an @ after the host (in the path, query or fragment); write it %40 there, "
            "and percent-encode a /, ? or # inside a password (%2F, %3F, %23).",
        )
    hostport = authority.rpartition("@")[2]
    if "%" in hostport:
        raise _refuse(
            setting,
            "has a percent-encoded host (%…), which URL parsers decode differently; write the "
            "host name or address plainly.",
        )
    if not hostport.isascii():
        raise _refuse(
            setting,
            "has a host with characters other than ASCII (full-width dots or digits included); "
            "write an internationalised name in its punycode form, xn--….",
        )
    unreadable = _refuse(
        setting,
        "is not a valid URL: check the port (a number 1-65535), the [ ] around an "
        "IPv6 address, and that a password holding /, ?, # or @ is percent-encoded (%2F, %3F, "
        "%23, %40); the value is not shown.",
    )
    try:
        parts = urlsplit(value)
        port = parts.port
        theirs = parse_url(value)
    except (ValueError, LocationParseError):
        raise unreadable from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    their_host = (theirs.host or "").lower()
    if their_host.startswith("[") and their_host.endswith("]"):
        their_host = their_host[1:-1]
    if (scheme, host, port) != ((theirs.scheme or "").lower(), their_host, theirs.port):
        raise _refuse(
            setting,
            "is read with another scheme, host or port by urllib.parse than by urllib3; write "
            "it plainly as scheme://[user:password@]host[:port]/path, percent-encoding anything "
            "else.",
        )
    if port == 0:
        raise _refuse(setting, "has port 0: the port must be between 1 and 65535.")
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    return Url(scheme, host, port, userinfo, parts.path, parts.query, parts.fragment)
