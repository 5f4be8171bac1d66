"""The whole handler under hostile input, for every trigger shape, against the emulator.

``tests/e2e/test_triggers.py`` checks that ``parse_event`` raises only its own errors and that random
or damaged bytes come back as a dict. Here every sample event is taken apart (nested JSON text and
Base64 bodies included), mutated (fields deleted, renamed, repeated, values swapped for other types
or for hostile values: huge strings, deep nesting, NaN/Infinity, lone surrogates, invalid UTF-8,
phone numbers), put back together, sometimes truncated, and delivered twice (as a platform
redelivers) to ``index.handler`` on a fresh instance with the memory idempotency store. Each
answer must hold:

- nothing but ``TransientFailureError`` is raised, and only for a batch;
- an HTTP trigger event gets ``{statusCode, headers, isBase64Encoded, body}`` with a documented
  status, a body that is strict JSON, encodes as UTF-8 and has Code/Message/RequestId;
- any other event gets a Dyplsapi-shaped dict (Code/Message/RequestId), a batch a report whose
  Records say what happened to each message;
- no answer holds a mainland mobile number that was in the input, except where a binding returns
  its numbers (``SecretBindDTO``);
- no defect was met (no ``unexpected_failure`` log line, no ``InternalError``), and everything the
  function sent to Dyplsapi was a correctly signed BindAxnExtension.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from axn_bind import app
from axn_bind.errors import AxnError, TransientFailureError
from axn_bind.models import RULES
from axn_bind.triggers import Batch, SweepRequest, parse_event
from axn_bind.triggers.jsonload import load_json
from tests.conftest import call
from tests.e2e.test_events import PROJECT_EVENTS
from tests.e2e.test_triggers import SAMPLES, damaged_samples
from tools.fc_local import FcContext

pytestmark = pytest.mark.usefixtures("env")

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

DOCUMENTED_STATUS = {200, 400, 404, 405, 409, 413, 429, 500, 502, 503, 504}
# The README's status table, for the codes the function itself gives.
STATUS_OF = {
    "OK": 200,
    "InvalidParameter": 400,
    "MalformedRequest": 400,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "IdempotencyKeyReused": 409,
    "PayloadTooLarge": 413,
}
REPORT_SOURCES = {"timer", "cloudevents", "mns-topic", "direct-batch"}
MOBILE = re.compile(r"1[3-9]\d{9}")


def mobiles(text: str) -> set[str]:
    """The mainland mobile numbers in ``text``: 11 digits from 13… to 19…, not inside a longer
    run of digits, alone or after the country code 86 / 0086. (The same as the regular
    expression ``(?<!\\d)(?:0086|86)?(1[3-9]\\d{9})(?!\\d)``, which is slow on long text.)"""
    found = set()
    for match in MOBILE.finditer(text):
        start, end = match.span()
        if end < len(text) and text[end].isdigit():
            continue
        prefix = next(p for p in ("0086", "86", "") if text.endswith(p, 0, start))
        at = start - len(prefix)
        if at == 0 or not text[at - 1].isdigit():
            found.add(match.group())
    return found


# The numbers the function's own messages give as examples ("e.g. PhoneNoA=13900000001").
EXAMPLE_NUMBERS = frozenset(mobiles(json.dumps(RULES)))


# --- Documents that JSON libraries will not write -----------------------------------------------


@dataclass(frozen=True)
class Raw:
    """Bytes written as they are: NaN, 1e999, a 5000-digit number, a ``\\ud800`` escape, invalid
    UTF-8, truncated or over-deep JSON."""

    data: bytes


@dataclass(frozen=True)
class Pairs:
    """A JSON object that may repeat a key."""

    items: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Wrapped:
    """A string that holds another document: ``json`` text, ``base64`` of it, ``json2`` (JSON text
    of JSON text), or ``bare64`` (Base64 text as the whole event, not a JSON string)."""

    how: str
    doc: Any


def string(value: str | bytes) -> bytes:
    """A JSON string literal. Text that UTF-8 cannot hold (a lone surrogate) is written as a
    ``\\u`` escape; bytes are written as they are, so invalid UTF-8 stays invalid."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(value).encode("ascii")
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    return b'"' + _ESCAPED.sub(_escape, value) + b'"'


_ESCAPED = re.compile(rb'["\\\x00-\x1f]')


def _escape(match: re.Match[bytes]) -> bytes:
    byte = match.group()
    return b"\\" + byte if byte in b'"\\' else b"\\u%04x" % byte[0]


def dumps(node: Any) -> bytes:
    """The JSON bytes of ``node`` (plain values, :class:`Raw`, :class:`Pairs`, :class:`Wrapped`)."""
    if isinstance(node, Raw):
        return node.data
    if isinstance(node, Wrapped):
        inner = dumps(node.doc)
        if node.how == "bare64":
            return base64.b64encode(inner)
        if node.how == "base64":
            return string(base64.b64encode(inner))
        if node.how == "json2":
            return string(string(inner))
        return string(inner)
    if isinstance(node, dict):
        node = Pairs(tuple(node.items()))
    if isinstance(node, Pairs):
        return b"{" + b",".join(string(k) + b":" + dumps(v) for k, v in node.items) + b"}"
    if isinstance(node, list):
        return b"[" + b",".join(dumps(v) for v in node) + b"]"
    if isinstance(node, str):
        return string(node)
    return json.dumps(node).encode("ascii")  # numbers (NaN, Infinity too), booleans, null


def unwrap(value: Any) -> Any:
    """A sample's JSON value with every JSON text and Base64-of-JSON string made a Wrapped node,
    so that mutations reach the bind requests inside message bodies."""
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return Wrapped("json", unwrap(json.loads(text)))
            except ValueError:
                return value
        try:
            decoded = base64.b64decode(text, validate=True)
            if decoded.lstrip()[:1] in (b"{", b"["):
                return Wrapped("base64", unwrap(json.loads(decoded)))
        except (binascii.Error, ValueError):
            pass
    return value


def sample_tree(raw: bytes) -> Any:
    try:
        return unwrap(json.loads(raw))
    except ValueError:
        pass
    try:
        return Wrapped("bare64", unwrap(json.loads(base64.b64decode(raw, validate=True))))
    except (binascii.Error, ValueError):
        return Raw(raw)


SAMPLE_TREES = [sample_tree(p.read_bytes()) for p in SAMPLES]


def test_sample_trees_write_back_to_the_same_json():
    for path, tree in zip(SAMPLES, SAMPLE_TREES, strict=True):
        raw = path.read_bytes()
        if isinstance(tree, Raw):
            assert tree.data == raw
            continue
        written = dumps(tree)
        if isinstance(tree, Wrapped):
            assert json.loads(base64.b64decode(written)) == json.loads(base64.b64decode(raw))
            continue
        assert _plain(json.loads(written)) == _plain(json.loads(raw)), path.name


def _plain(value: Any) -> Any:
    """Every nested JSON text or Base64 of JSON decoded, for comparing documents."""
    tree = unwrap(value)

    def strip(node: Any) -> Any:
        if isinstance(node, Wrapped):
            return strip(node.doc)
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items()}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(tree)


# --- Hostile values ------------------------------------------------------------------------------

PHONES = (
    st.integers(13_000_000_000, 19_999_999_999).map(str).filter(lambda p: p not in EXAMPLE_NUMBERS)
)
PHONE_TEXT = st.tuples(
    PHONES,
    st.sampled_from(
        ["{}", "+86{}", "0086 {}", "86{}", "{a} {b} {c}", "{a}-{b}-{c}", "tel:{}", "call {} now"]
    ),
).map(lambda pf: pf[1].format(pf[0], a=pf[0][:3], b=pf[0][3:7], c=pf[0][7:]))

HUGE = 70_000  # over the 64 KiB an HTTP body may have
HOSTILE_TEXT = st.one_of(
    PHONE_TEXT,
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud800",
            "\udfff",
            "a\ud800b",
            "\ufeff",
            "\u202e",
            "\u2028",
            "１３９１２３４５６７８",  # fullwidth digits
            "١٣٩١٢٣٤٥٦٧٨",  # Arabic-Indic digits
            "null",
            "true",
            "NaN",
            "{",
            "[1,",
            '"',
            "\\",
            "%ff%00",
            "=?&=",
            "2030-01-01 12:00:00",
            "9999-12-31T23:59:59-14:00",
            "0000-00-00 00:00:00",
            "PhoneNoA",
            "axn:idem:" + "0" * 64,
        ]
    ),
    st.text(max_size=24),
    st.text(st.characters(codec=None, categories=["Cs", "Co", "Cc", "Zs", "Nd"]), max_size=12),
    st.sampled_from(["9", " ", "é", "\ud800", "北", "1", "{"]).map(lambda c: c * HUGE),
)

NESTED = [
    Raw(b"[" * 40 + b"]" * 40),
    Raw(b'{"a":' * 40 + b"1" + b"}" * 40),
    Raw(b"[" * 100_000 + b"]" * 100_000),
]
HOSTILE_TOKENS = st.sampled_from(
    [
        Raw(b"NaN"),
        Raw(b"Infinity"),
        Raw(b"-Infinity"),
        Raw(b"1e999"),
        Raw(b"-0"),
        Raw(b"1" * 5000),
        Raw(b'"\\ud800"'),
        Raw(b'"x\\udfff\\ud800"'),
        Raw(b'"\\u0000"'),
        Raw(b'"\xff\xfe"'),
        Raw(b'"\xed\xa0\x80"'),  # a surrogate written as UTF-8
        Raw(b'"\xc0\xaf"'),  # overlong
        Raw(b'"13912345678\xff"'),
        *NESTED,
    ]
)
SMALL_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
HOSTILE = st.one_of(
    HOSTILE_TEXT,
    HOSTILE_TOKENS,
    PHONES.map(int),
    st.integers(),
    st.sampled_from([0, -1, 61, 62, 3600, 315360000, 315360001, 2**63, -(2**63), 10**30]),
    st.floats(),
    st.booleans(),
    st.none(),
    SMALL_JSON,
)
HOSTILE_KEYS = st.one_of(
    PHONES,
    PHONE_TEXT,
    st.sampled_from(
        [
            "",
            "\ud800",
            "phoneNoA",
            "PHONENOA",
            "PhoneNo A",
            "PhoneNoA ",
            "Phone\x00NoA",
            "PoolKey",
            "TtlSeconds",
            "Expiration",
            "Idempotency-Key",
            "__proto__",
            "k" * HUGE,
        ]
    ),
    st.sampled_from(list(RULES)),
    st.text(max_size=12),
)


# --- Mutations of the sample events -------------------------------------------------------------

DOC = object()  # the path step into a Wrapped node


def paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))
    elif isinstance(node, Wrapped):
        yield from paths(node.doc, (*prefix, DOC))


def node_at(node: Any, path: tuple) -> Any:
    for step in path:
        node = node.doc if step is DOC else node[step]
    return node


def update(node: Any, path: tuple, new: Any) -> Any:
    """``node`` with the node at ``path`` replaced by ``new``."""
    if not path:
        return new
    step, rest = path[0], path[1:]
    if step is DOC:
        return Wrapped(node.how, update(node.doc, rest, new))
    if isinstance(node, dict):
        return {k: update(v, rest, new) if k == step else v for k, v in node.items()}
    return [update(v, rest, new) if i == step else v for i, v in enumerate(node)]


def swapped(node: Any) -> list[Any]:
    """The same value as another JSON type."""
    text = dumps(node).decode("utf-8", "replace")
    out: list[Any] = [[node], {"value": node}, text, None, True, 0, 1.5]
    if isinstance(node, str) and node.strip().lstrip("-").isdigit():
        out.append(Raw(node.strip().encode()))
    return out


@st.composite
def mutation(draw, tree: Any) -> Any:
    path = draw(st.sampled_from(list(paths(tree))))
    node = node_at(tree, path)
    ops = ["replace", "swap", "nest"]
    if path:
        ops.append("delete")
    if isinstance(node, dict):
        ops += ["insert", "rename", "duplicate"] if node else ["insert"]
    if isinstance(node, Wrapped):
        ops += ["rewrap", "unwrap"]
    op = draw(st.sampled_from(ops))
    if op == "replace":
        return update(tree, path, draw(HOSTILE))
    if op == "swap":
        return update(tree, path, draw(st.sampled_from(swapped(node))))
    if op == "nest":
        for _ in range(40):
            node = [node]
        return update(tree, path, node)
    if op == "delete":
        parent = node_at(tree, path[:-1])
        if isinstance(parent, dict):
            new = {k: v for k, v in parent.items() if k != path[-1]}
        elif isinstance(parent, list):
            new = [v for i, v in enumerate(parent) if i != path[-1]]
        else:  # the document inside a Wrapped string: the string is left empty
            return update(tree, path[:-1], "")
        return update(tree, path[:-1], new)
    if op == "insert":
        return update(tree, path, {**node, draw(HOSTILE_KEYS): draw(HOSTILE)})
    if op in ("rename", "duplicate"):
        key = draw(st.sampled_from(list(node)))
        items = list(node.items())
        at = [k for k, _ in items].index(key)
        if op == "rename":
            items[at] = (draw(HOSTILE_KEYS), items[at][1])
        else:
            extra = (key, draw(HOSTILE))
            items.insert(at + draw(st.integers(0, 1)), extra)
        return update(tree, path, Pairs(tuple(items)))
    if op == "rewrap":
        how = draw(st.sampled_from(["json", "base64", "json2"]))
        return update(tree, path, Wrapped(how, node.doc))
    return update(tree, path, node.doc)  # unwrap: an object where a string was


@st.composite
def mutated_samples(draw) -> bytes:
    tree = draw(st.sampled_from(SAMPLE_TREES))
    for _ in range(draw(st.integers(1, 3))):
        tree = draw(mutation(tree))
    data = dumps(tree)
    if draw(st.integers(0, 7)) == 0:  # truncated JSON
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return data


# --- Bind requests, hostile or valid, in every shape --------------------------------------------

VALID = {
    "PhoneNoA": PHONE_TEXT,
    "PhoneNoB": PHONE_TEXT,
    "TtlSeconds": st.sampled_from([62, 3600, "3600", 315360000]),
    "Expiration": st.sampled_from(["2030-01-01 12:00:00", "2030-01-01T04:00:00Z"]),
    "ExpectCity": st.sampled_from(["北京", "上海"]),
    "IsRecordingEnabled": st.sampled_from([True, "yes", "0"]),
    "ASRStatus": st.sampled_from([False, "t"]),
    "CallDisplayType": st.just(1),
    "CallRestrict": st.sampled_from(["CONTROL_AX_DISABLE", "CONTROL_BX_DISABLE"]),
    "OutId": st.one_of(PHONE_TEXT, st.text(max_size=10)),
    "OutOrderId": st.one_of(PHONE_TEXT, st.text(min_size=1, max_size=10), st.integers()),
    "RingConfig": st.just("{}"),
    "ASRModelId": st.just("m-1"),
}


FIELD_VALUES = {name: st.one_of(VALID.get(name, HOSTILE), HOSTILE) for name in RULES}
OPTIONAL_FIELDS = st.lists(
    st.sampled_from(sorted(set(RULES) - {"PhoneNoA", "TtlSeconds"})), max_size=3
)


@st.composite
def bind_requests(draw) -> Any:
    request: dict[Any, Any] = {
        "PhoneNoA": draw(st.one_of(PHONE_TEXT, FIELD_VALUES["PhoneNoA"])),
        "TtlSeconds": draw(FIELD_VALUES["TtlSeconds"]),
    }
    for name in draw(OPTIONAL_FIELDS):
        request[name] = draw(FIELD_VALUES[name])
    if draw(st.booleans()):
        request[draw(HOSTILE_KEYS)] = draw(HOSTILE)
    return request


def slots(node: Any) -> list[tuple]:
    """The paths of the bind requests a sample carries (objects with a PhoneNoA)."""
    return [p for p in paths(node) if isinstance(q := node_at(node, p), dict) and "PhoneNoA" in q]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return dumps(value).decode("utf-8", "surrogateescape")


def _form(request: Any) -> str:
    pairs = request.items() if isinstance(request, dict) else [("PhoneNoA", request)]
    return urlencode(
        [(_as_text(k), _as_text(v)) for k, v in pairs], encoding="utf-8", errors="surrogatepass"
    )


HTTP_POST = sample_tree((PROJECT_EVENTS / "http_post.json").read_bytes())
TEMPLATES = [
    (p.name, tree)
    for p, tree in zip(SAMPLES, SAMPLE_TREES, strict=True)
    if p.parent == PROJECT_EVENTS and slots(tree)
]


@st.composite
def requests_in_every_shape(draw) -> bytes:
    shape = draw(st.sampled_from([name for name, _ in TEMPLATES] + ["http-form", "http-query"]))
    request = draw(bind_requests())
    if shape == "http-form":
        tree = {
            **HTTP_POST,
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "body": _form(request),
        }
    elif shape == "http-query":
        items = request.items() if isinstance(request, dict) else []
        query = {_as_text(k): _as_text(v) for k, v in items}
        tree = {**HTTP_POST, "queryParameters": query, "body": ""}
    else:
        tree = dict(TEMPLATES)[shape]
        for path in slots(tree):
            tree = update(tree, path, request)
            request = draw(bind_requests())
    return dumps(tree)


# --- Documents of no shape at all ---------------------------------------------------------------

DOCUMENTS = st.one_of(
    HOSTILE.map(dumps),
    st.lists(HOSTILE, min_size=1, max_size=3).map(dumps),
    st.dictionaries(HOSTILE_KEYS, HOSTILE, max_size=3).map(dumps),
    st.sampled_from(
        [
            b'{"a":1,"a":2}',
            b'{"PhoneNoA":"13912345678","PhoneNoA":"0","TtlSeconds":3600}',
            b"NaN",
            b"[Infinity]",
            b'"\\ud800"',
            b'["\\ud800"]',
            b'{"\\ud800":1}',
            b'{"PhoneNoA":"1\xff"}',
            b"\xef\xbb\xbf{}",
            b'"{\\"PhoneNoA\\":\\"13912345678\\"}"',
        ]
    ),
)


# --- The properties -----------------------------------------------------------------------------


class DefectLog(logging.Handler):
    """The ``unexpected_failure`` lines the function logs (a defect was met)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if '"event":"unexpected_failure"' in message:
            self.lines.append(message)


@pytest.fixture
def defects() -> Iterator[DefectLog]:
    handler = DefectLog()
    logger = logging.getLogger("axn_bind")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def input_phones(event: bytes) -> set[str]:
    """Every mobile number in ``event``: in its text, in its JSON strings, keys and numbers, and
    in the JSON text, Base64, form encoding or spaced-out form inside them."""
    found: set[str] = set()
    seen: set[str] = set()
    todo: list[tuple[Any, int]] = [(event.decode("utf-8", "replace"), 0)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, dict):
            todo += [(x, depth) for kv in value.items() for x in kv]
        elif isinstance(value, list):
            todo += [(x, depth) for x in value]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found |= mobiles(str(value))
        elif isinstance(value, str) and depth < 5 and value not in seen:
            seen.add(value)
            for text in {value, unquote_plus(value), re.sub(r"[\s\-]", "", value)}:
                found |= mobiles(text)
            if value.lstrip()[:1] in ('"', "{", "["):
                with contextlib.suppress(ValueError, RecursionError):
                    todo.append((json.loads(value), depth + 1))
            with contextlib.suppress(binascii.Error, ValueError):
                decoded = base64.b64decode("".join(value.split()), validate=True)
                todo.append((decoded.decode("utf-8", "replace"), depth + 1))
    return found - EXAMPLE_NUMBERS


def expected_kind(event: bytes) -> str:
    """``http`` for the HTTP trigger shapes, ``batch`` for arrays and CloudEvents, ``other`` for
    the rest (a direct request, a timer, an MNS topic message, or what cannot be read)."""
    try:
        value = load_json(event, "event")
        if isinstance(value, str) and value.strip()[:1] in ("{", "["):
            value = load_json(value, "event")
    except AxnError:
        return "other"
    if isinstance(value, list) and value:
        return "batch"
    if not isinstance(value, dict):
        return "other"
    context = value.get("requestContext")
    if isinstance(context, dict) and isinstance(context.get("http"), dict) and "rawPath" in value:
        return "http"
    if (
        isinstance(value.get("httpMethod"), str)
        and isinstance(value.get("path"), str)
        and ("headers" in value or "queryParameters" in value)
    ):
        return "http"
    if value.get("specversion") == "1.0" and isinstance(value.get("id"), str) and "source" in value:
        return "batch"
    return "other"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constant)


def _check_text(value: Any) -> str:
    """``value`` as the JSON text FC would send: strict JSON that UTF-8 can encode."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    return text


def _check_body(body: Any) -> None:
    """A Dyplsapi-shaped body: Code, Message, RequestId; Errors as Field/Message pairs."""
    assert isinstance(body, dict), body
    for name in ("Code", "Message", "RequestId"):
        assert isinstance(body.get(name), str), (name, body)
    assert body["Code"], body
    assert body["Code"] != "InternalError", body
    if "Errors" in body:
        assert body["Errors"], body
        for error in body["Errors"]:
            assert set(error) == {"Field", "Message"}, error
            assert all(isinstance(v, str) for v in error.values()), error


def _check_report(report: dict[str, Any]) -> None:
    _check_body(report)
    assert report["Source"] in REPORT_SOURCES, report
    records = report["Records"]
    assert isinstance(records, list), report
    assert records, report
    for index, record in enumerate(records):
        assert record["Index"] == index, record
        assert record["Id"] is None or isinstance(record["Id"], str), record
        # a failed record makes the handler raise instead of answering
        assert record["Result"] in ("bound", "rejected"), record
        assert isinstance(record["Code"], str), record
        assert isinstance(record["Message"], str), record
        assert record["Code"] != "InternalError", record
        assert (record["Result"] == "bound") == (record["Code"] == "OK"), record
        assert (record["Result"] == "bound") == isinstance(record.get("SecretBindDTO"), dict)
    all_bound = all(r["Result"] == "bound" for r in records)
    assert report["Code"] == ("OK" if all_bound else "PartialFailure"), report


def _without_bindings(body: Any) -> Any:
    """``body`` without what a binding returns (its SecretBindDTO holds the privacy number)."""
    if not isinstance(body, dict):
        return body
    out = {k: v for k, v in body.items() if k != "Records"}
    if out.get("Code") == "OK":
        out.pop("SecretBindDTO", None)
    if isinstance(body.get("Records"), list):
        out["Records"] = [
            {k: v for k, v in r.items() if not (k == "SecretBindDTO" and r["Result"] == "bound")}
            for r in body["Records"]
        ]
    return out


def deliver(event: bytes) -> tuple[Any, TransientFailureError | None]:
    try:
        return call(event, FcContext()), None
    except TransientFailureError as exc:
        return None, exc


def check(
    event: bytes, answer: Any, raised: TransientFailureError | None, phones: set[str]
) -> None:
    """The properties of one answer to ``event``; ``phones`` are the numbers it holds."""
    kind = expected_kind(event)
    try:
        invocation = parse_event(event)
    except AxnError:
        invocation = None
    if raised is not None:
        assert kind != "http", raised
        assert isinstance(invocation, Batch), raised  # only a batch is redelivered
        message = str(raised)
        message.encode("utf-8")
        assert not mobiles(message) & phones, message
        return
    if kind == "http":
        assert isinstance(answer, dict), answer
        assert set(answer) == {"statusCode", "headers", "isBase64Encoded", "body"}, answer
        status, headers, body = answer["statusCode"], answer["headers"], answer["body"]
        assert type(status) is int, answer
        assert status in DOCUMENTED_STATUS, answer
        assert answer["isBase64Encoded"] is False, answer
        assert isinstance(headers, dict), answer
        for name, value in headers.items():
            assert isinstance(name, str), headers
            assert isinstance(value, str), headers
            assert not {"\r", "\n", "\x00"} & set(name + value), headers
        assert isinstance(body, str), answer
        body.encode("utf-8")
        parsed = _strict_json(body)
        _check_body(parsed)
        assert (status == 200) == (parsed["Code"] == "OK"), answer
        assert (status == 200) == isinstance(parsed.get("SecretBindDTO"), dict), answer
        assert status == STATUS_OF.get(parsed["Code"], status), answer
        if status == 405:
            assert headers.get("Allow") == "POST", answer
        shown = _check_text(_without_bindings(parsed)) + _check_text(headers)
    else:
        assert isinstance(answer, dict), answer
        assert "statusCode" not in answer, answer
        _check_text(answer)
        if "Records" in answer:
            _check_report(answer)
        else:
            assert kind != "batch", answer
            _check_body(answer)
            if not isinstance(invocation, SweepRequest):
                bound = isinstance(answer.get("SecretBindDTO"), dict)
                assert (answer["Code"] == "OK") == bound, answer
        shown = _check_text(_without_bindings(answer))
    leaked = mobiles(shown) & phones
    assert not leaked, (leaked, shown[:2000])


def run(event: bytes, emulator, defects: DefectLog) -> None:
    """Deliver ``event`` twice to a fresh instance and check both answers."""
    emulator.reset()
    app.service().client.close()
    app.reset()
    defects.lines.clear()
    phones = input_phones(event)
    for _ in range(2):
        answer, raised = deliver(event)
        check(event, answer, raised, phones)
    assert not defects.lines, defects.lines
    for request in emulator.requests():
        assert request["action"] == "BindAxnExtension", request
        assert request["verified"], request  # signed correctly, whatever the parameters held


@settings(FUZZ, max_examples=600)
@given(mutated_samples())
@example(b'{"PhoneNoA":"13912345678","TtlSeconds":3600,"OutId":"\\ud800"}')
@example(b'{"PhoneNoA":"13912345678","TtlSeconds":3600,"\\ud800":1}')
@example(b'{"13912345678":"x","PhoneNoA":"13900000011","TtlSeconds":3600}')
@example(
    b'{"version":"v1","rawPath":"/bind/13912345678","body":"","isBase64Encoded":false,'
    b'"headers":{},"queryParameters":{},"requestContext":{"http":{"method":"POST"}}}'
)
@example(b'{"triggerTime":"T","triggerName":"13912345678","payload":"{}"}')  # a record's Id
@example(b'{"triggerTime":"\\ud800","triggerName":"n","payload":"{}"}')
def test_mutated_sample_events(emulator, defects, event):
    run(event, emulator, defects)


@settings(FUZZ, max_examples=300)
@given(requests_in_every_shape())
def test_hostile_bind_requests_in_every_shape(emulator, defects, event):
    run(event, emulator, defects)


@settings(FUZZ, max_examples=300)
@given(st.one_of(DOCUMENTS, damaged_samples()))
def test_documents_of_no_known_shape_and_damaged_bytes(emulator, defects, event):
    run(event, emulator, defects)
