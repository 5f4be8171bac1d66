"""HTTP-shaped events: the FC 3.0 HTTP trigger struct and the API Gateway struct.

Each adapter has a cheap ``matches`` check and turns the event into an :class:`HttpRequest`;
:func:`bind_payload` turns that request into the bind payload (JSON body, form body or query).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from ..errors import (
    MalformedRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)
from ..log import shown
from .jsonload import b64decode, load_json

MAX_BODY_BYTES = 64 * 1024
# JSON is also read from text/plain and octet-stream (what `s invoke` and many SDKs send).
_JSON_TYPES = ("", "application/json", "text/plain", "application/octet-stream")
_INVOKE_PATH = re.compile(r"/20\d\d-\d\d-\d\d/functions/[^/]+/invocations/?")


class HttpRequest(NamedTuple):
    """An HTTP trigger or API gateway request, as its adapter read it."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    query: dict[str, str]
    raw_body: Any  # as it arrived; decoded (Base64, size) by bind_payload, which can answer errors
    base64: bool
    source: str  # "http" (FC 3.0 trigger) or "apigw"
    # Header names sent more than once (in any case, or as a list) with different values.
    conflicts: frozenset[str] = frozenset()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, str] = {}
    for key, val in value.items():
        if isinstance(val, list):  # some gateways send multi-valued entries as lists
            out[str(key)] = ",".join(str(v) for v in val)
        else:
            out[str(key)] = "" if val is None else str(val)
    return out


# The headers this function reads: one sent twice with different values is refused, never
# decided by whichever copy a dict kept last.
READ_HEADERS = {"idempotency-key": "Idempotency-Key", "content-type": "Content-Type"}


def _headers(value: Any) -> tuple[dict[str, str], frozenset[str]]:
    """Header names in lower case, and the names given more than once with different values
    (``Idempotency-Key`` and ``idempotency-key``, or a list of two values)."""
    if not isinstance(value, dict):
        return {}, frozenset()
    out: dict[str, str] = {}
    seen: dict[str, set[str]] = {}
    for key, val in value.items():
        name = str(key).lower()
        values = (
            [str(v) for v in val] if isinstance(val, list) else ["" if val is None else str(val)]
        )
        seen.setdefault(name, set()).update(values)
        out[name] = ",".join(values)
    return out, frozenset(name for name, found in seen.items() if len(found) > 1)


def _body(req: HttpRequest) -> bytes:
    raw = req.raw_body
    if raw is None or raw == "":
        return b""
    if req.base64:
        return b64decode(raw, "request body")
    if isinstance(raw, str):
        return raw.encode("utf-8")
    raise MalformedRequestError("The request body must be a string.")


def is_fc3_http(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("requestContext"), dict)
        and isinstance(event["requestContext"].get("http"), dict)
        and "rawPath" in event
    )


def is_apigw(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("httpMethod"), str)
        and isinstance(event.get("path"), str)
        and ("headers" in event or "queryParameters" in event)
    )


def from_fc3_http(event: dict[str, Any]) -> HttpRequest:
    ctx = event["requestContext"]
    headers, conflicts = _headers(event.get("headers"))
    return HttpRequest(
        method=str(ctx["http"].get("method") or "").upper(),
        path=str(event.get("rawPath") or ctx["http"].get("path") or "/"),
        headers=headers,
        query=_str_map(event.get("queryParameters")),
        raw_body=event.get("body"),
        base64=event.get("isBase64Encoded") is True,
        source="http",
        conflicts=conflicts,
    )


def from_apigw(event: dict[str, Any]) -> HttpRequest:
    headers, conflicts = _headers(event.get("headers"))
    return HttpRequest(
        method=event["httpMethod"].upper(),
        path=event["path"] or "/",
        headers=headers,
        query=_str_map(event.get("queryParameters")),
        raw_body=event.get("body"),
        base64=event.get("isBase64Encoded") is True,
        source="apigw",
        conflicts=conflicts,
    )


def _path_served(req: HttpRequest) -> bool:
    if req.source == "apigw":
        return True  # the API definition chooses the path; the backend serves whatever it routes
    path = req.path.split("?", 1)[0]
    return path in ("", "/") or bool(_INVOKE_PATH.fullmatch(path))


def bind_payload(req: HttpRequest) -> dict[str, Any]:
    """The bind request carried by ``req``: JSON or form body, plus query parameters."""
    if not _path_served(req):
        raise NotFoundError(f"Nothing is served at {shown(req.path, 200)!r}; send POST /.")
    if req.method != "POST":
        method = shown(req.method, 32) or "This method"
        raise MethodNotAllowedError(f"{method} is not allowed; use POST.")
    twice = sorted(label for name, label in READ_HEADERS.items() if name in req.conflicts)
    if twice:
        raise MalformedRequestError(
            f"The {' and '.join(twice)} header{'s are' if len(twice) > 1 else ' is'} sent more "
            "than once with different values (header names are case-insensitive); send each "
            "once."
        )
    raw = _body(req)
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"The body is {len(raw)} bytes; at most {MAX_BODY_BYTES} are accepted."
        )
    content_type = (req.header("content-type") or "").split(";", 1)[0].strip().lower()
    body: dict[str, Any] = {}
    if raw.strip():
        if content_type == "application/x-www-form-urlencoded":
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedRequestError("The form body is not UTF-8 text.") from None
            pairs = parse_qsl(text, keep_blank_values=True)
            body = dict(pairs)
            if len(body) != len(pairs):
                raise MalformedRequestError("The form body repeats a field.")
        elif content_type in _JSON_TYPES or content_type.endswith("+json"):
            parsed = load_json(raw, "request body")
            if not isinstance(parsed, dict):
                raise MalformedRequestError("The request body must be a JSON object.")
            body = parsed
        else:
            raise MalformedRequestError(
                f"Content-Type {shown(content_type, 100)!r} is not accepted; send "
                "application/json or application/x-www-form-urlencoded."
            )
    both = sorted(shown(name, 64) for name in set(body) & set(req.query))
    if both:
        names = " and ".join(both) if len(both) <= 2 else ", ".join(both)
        each = "it" if len(both) == 1 else "each"
        raise MalformedRequestError(
            f"{names} {'is' if len(both) == 1 else 'are'} given both in the query string and in "
            f"the body; send {each} once, in one place (e.g. all fields in a JSON body)."
        )
    return {**req.query, **body}
