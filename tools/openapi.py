"""``make openapi``: the OpenAPI 3.1 contract of the HTTP API, generated into docs/openapi.json.

Nothing in it is written twice. The request schema is the JSON Schema of
:class:`axn_bind.models.BindRequest`; the answer bodies are the JSON Schemas of the pydantic
models below; every status and ``Code`` comes from the code itself: each :class:`AxnError`
subclass, every ``code=`` given where one is raised (found in the source), and every verdict of
:func:`axn_bind.dypls.classify.classify` on the table of :mod:`axn_bind.dypls.codes` and on
probe exchanges (every HTTP status, with and without a code it has never heard of). A new error
class, a new upstream code or a new status therefore appears in the contract on the next run, and
``--check`` (run by tests/e2e/test_openapi.py) fails until the committed file is regenerated.

    python -m tools.openapi            # writes docs/openapi.json
    python -m tools.openapi --check    # exit 1 when docs/openapi.json is not what this writes
"""

from __future__ import annotations

import argparse
import ast
import http
import importlib
import json
import pkgutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

ROOT = Path(__file__).resolve().parents[1]
CODE_ROOT = ROOT / "src"  # FC's code root (/code); the package is imported from here
if str(CODE_ROOT) not in sys.path:
    sys.path.insert(0, str(CODE_ROOT))

import axn_bind  # noqa: E402
from axn_bind.errors import AxnError, Kind, MethodNotAllowedError, NotFoundError  # noqa: E402
from axn_bind.idempotency.keys import MAX_HEADER_KEY  # noqa: E402
from axn_bind.models import RULES, BindRequest  # noqa: E402
from axn_bind.triggers.http import MAX_BODY_BYTES  # noqa: E402

OUTPUT = ROOT / "docs" / "openapi.json"
PACKAGE = CODE_ROOT / "axn_bind"

# Codes of the function that an HTTP request can never receive, and why. Each must still exist
# (tests/e2e/test_openapi.py checks), so that a code that becomes reachable is not left out silently.
NOT_ON_HTTP_PATH = {
    "UnsupportedEvent": "answers an event of no known shape; an HTTP trigger event always has one",
    "PublishFailed": "a failed announcement marks the answer `Announced: false`; it is never "
    "the answer itself",
    "NotAttempted": "a record of a batch that the time left could not cover",
}
# Request fields that a setting of the deployment can supply.
DEFAULTED_BY_SETTING = {"PoolKey": "AXN_POOL_KEY"}
# Served on other routes than POST /: the path is checked first, then the method.
NOT_FOUND, NOT_ALLOWED = NotFoundError.code, MethodNotAllowedError.code
OTHER_METHODS = ("get", "put", "patch", "delete")


# -- the answer bodies -----------------------------------------------------------------------


def _no_null_defaults(schema: dict[str, Any]) -> None:
    """An optional field is left out of a body, never sent as its default: no ``default: null``."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None:
            del prop["default"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_defaults)


class SecretBindDTO(_Body):
    """The binding Dyplsapi made: dial SecretNo, then Extension, to reach PhoneNoA."""

    Extension: str = pydantic.Field(description="the extension after X; empty when none")
    SecretNo: str = pydantic.Field(description="the privacy number X")
    SubsId: str = pydantic.Field(
        description="the binding's id (QuerySubscriptionDetail, UnbindSubscription)"
    )


class FieldError(_Body):
    """One problem with the request: the field and what is wrong with it, with an example."""

    Field: str = pydantic.Field(description="the field, e.g. PhoneNoA, or (request)")
    Message: str


class _Answer(_Body):
    Code: str
    Message: str
    RequestId: str = pydantic.Field(
        description="Dyplsapi's RequestId when the call reached it, else the FC request id"
    )
    PossibleOrphanRequestId: str | None = pydantic.Field(
        default=None,
        description="only with AXN_UNKNOWN_OUTCOME=reexecute, when this key's earlier attempt "
        "had an unknown outcome: that attempt's upstream RequestId (null when it has none). It "
        "may have left a binding.",
    )
    PossibleOrphanAttemptId: str | None = pydantic.Field(
        default=None,
        description="with PossibleOrphanRequestId: that attempt's AttemptId (null when unknown)",
    )
    Announced: Literal[False] = pydantic.Field(
        default=None,
        description="only with AXN_PUBLISH_TO: false when a target could not be given the "
        "event of this outcome (it is republished later)",
    )


class SuccessBody(_Answer):
    """A binding, made now or replayed."""

    Code: Literal["OK"]
    SecretBindDTO: SecretBindDTO
    Expiration: str = pydantic.Field(
        default=None,
        description="when the binding ends, 'yyyy-MM-dd HH:mm:ss' in Asia/Shanghai time (from "
        "Expiration or TtlSeconds); absent only in answers kept before it was recorded",
    )
    Expired: Literal[True] = pydantic.Field(
        default=None,
        description="only in a replay (Idempotent-Replayed: true) after Expiration has passed: "
        "the binding no longer exists, and the order is not bound again",
    )


class ErrorBody(_Answer):
    """A failure, shaped like Dyplsapi's own error answers."""

    Code: str = pydantic.Field(description="this function's code, or Dyplsapi's passed through")
    Errors: list[FieldError] = pydantic.Field(
        default=None, description="with InvalidParameter: every problem, one per field"
    )
    AttemptId: str = pydantic.Field(
        default=None,
        description="with an unknown outcome: this attempt's own name (signature nonce @ "
        "signing time), to look for a binding it may have made",
    )


class _Schemas(GenerateJsonSchema):
    """JSON Schema as a client sends and reads it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # a field's title would only repeat its name

    def datetime_schema(self, schema: Any) -> dict[str, Any]:
        # BindRequest reads 'yyyy-MM-dd HH:mm:ss' (Asia/Shanghai) as well as ISO-8601 with an
        # offset; RFC 3339's date-time format would exclude the first.
        return {"type": "string"}


# -- every answer the HTTP path can give -------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One status and Code the function answers, and where it comes from."""

    status: int
    code: str | None  # None: any code (Dyplsapi's, passed through), or any with ``prefix``
    prefix: str | None = None  # a prefix of codes.PREFIXES
    retry_after: bool = False  # answered with Retry-After
    replayable: bool = False  # kept by the idempotency record: replayed (Idempotent-Replayed)


def error_classes() -> dict[str, type[AxnError]]:
    """Every AxnError subclass of the package (every module imported first), by class name."""
    for module in pkgutil.walk_packages(axn_bind.__path__, "axn_bind."):
        importlib.import_module(module.name)
    found: dict[str, type[AxnError]] = {}
    todo = [AxnError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def _literal(node: ast.expr | None, kind: type, where: str) -> Any:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, kind):
        return node.value
    raise SystemExit(
        f"tools.openapi: {where}: the {kind.__name__} given here is not a literal, so the "
        "contract cannot list it; give a literal or extend tools/openapi.py"
    )


def raised_answers() -> list[Answer]:
    """Each place an AxnError subclass is made, with its code, status and Retry-After."""
    classes = error_classes()
    out: list[Answer] = []
    made: set[str] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            cls = classes.get(str(name))
            if cls is None:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            given = {k.arg: k.value for k in node.keywords if k.arg}
            code = _literal(given.get("code"), str, where) or cls.code
            status = _literal(given.get("status"), int, where) or cls.status
            made.add(cls.__name__)
            out.append(Answer(status, code, retry_after="retry_after" in given))
    for name, cls in sorted(classes.items()):
        if name not in made and cls is not AxnError:  # declared, raised only indirectly
            out.append(Answer(cls.status, cls.code))
    return out


def upstream_answers() -> list[Answer]:
    """The verdicts of :func:`classify`: every code of the table, every prefix, every HTTP
    status with and without a code, and the exchanges that got no answer."""
    from axn_bind.dypls import codes
    from axn_bind.dypls.classify import classify
    from axn_bind.dypls.transport import Answered, NoAnswer, NotSent

    probe = "Probe.NeverHeardOf"

    def answered(status: int, body: Any) -> Answered:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Answered(status, {}, raw)

    exchanges: list[tuple[Any, str | None]] = [
        (NotSent("probe"), None),
        (NoAnswer("probe", timed_out=True), None),
        (NoAnswer("probe", timed_out=False), None),
        (answered(200, {"Code": "OK", "SecretBindDTO": {"SecretNo": "1", "SubsId": "1"}}), None),
    ]
    for code in codes.CODES:
        exchanges += [(answered(200, {"Code": code}), None), (answered(400, {"Code": code}), None)]
    for prefix, _ in codes.PREFIXES:
        exchanges.append((answered(400, {"Code": prefix + probe}), prefix))
    for status in range(100, 600):
        for body in (b"", b"{}", {"Code": "OK"}, {"Code": probe}):
            exchanges.append((answered(status, body), None))
    out = []
    for exchange, prefix in exchanges:
        verdict = classify(exchange)
        passed = verdict.code.endswith(probe)  # the probe came back: any such code does
        out.append(
            Answer(
                verdict.status,
                None if passed else verdict.code,
                prefix if passed and verdict.code == f"{prefix}{probe}" else None,
                retry_after=verdict.kind is Kind.THROTTLED,
                replayable=verdict.kind in (None, Kind.REJECTED),
            )
        )
    return out


def http_answers() -> list[Answer]:
    """Every answer of the HTTP path (see NOT_ON_HTTP_PATH for the codes left out)."""
    return [a for a in raised_answers() + upstream_answers() if a.code not in NOT_ON_HTTP_PATH]


# -- the document -------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _code_schema(answers: list[Answer]) -> dict[str, Any]:
    known = sorted({a.code for a in answers if a.code is not None})
    patterns = sorted({"^" + re.escape(a.prefix) for a in answers if a.prefix is not None})
    if any(a.code is None and a.prefix is None for a in answers):
        return {
            "type": "string",
            "description": "Dyplsapi's code passed through, or one of the examples",
            "examples": known,
        }
    if not patterns:
        return {"type": "string", "enum": known}
    return {
        "type": "string",
        "anyOf": [{"enum": known}, *({"pattern": p} for p in patterns)],
    }


def _describe(status: int, answers: list[Answer]) -> str:
    known = ", ".join(f"`{c}`" for c in sorted({a.code for a in answers if a.code is not None}))
    more = [f"any `{a.prefix}*` code" for a in answers if a.prefix is not None]
    if any(a.code is None and a.prefix is None for a in answers):
        more.append("any other code of Dyplsapi's, passed through")
    return f"{http.HTTPStatus(status).phrase}: " + "; ".join([known, *sorted(set(more))])


def _response(status: int, answers: list[Answer]) -> dict[str, Any]:
    body: dict[str, Any] = (
        _ref("SuccessBody")
        if status == 200
        else {"allOf": [_ref("ErrorBody"), {"properties": {"Code": _code_schema(answers)}}]}
    )
    out: dict[str, Any] = {
        "description": _describe(status, answers),
        "content": {"application/json": {"schema": body}},
    }
    headers: dict[str, Any] = {}
    if any(a.retry_after for a in answers):
        headers["Retry-After"] = {
            "description": "seconds to wait before retrying",
            "required": all(a.retry_after for a in answers),
            "schema": {"type": "integer", "minimum": 1},
        }
    if any(a.replayable for a in answers):
        headers["Idempotent-Replayed"] = {
            "description": "the stored answer of an earlier request with the same key, byte "
            "for byte; Dyplsapi was not called",
            "required": False,
            "schema": {"type": "string", "enum": ["true"]},
        }
    if any(a.code == NOT_ALLOWED for a in answers):
        headers["Allow"] = {
            "description": "the one method served",
            "required": True,
            "schema": {"type": "string", "enum": ["POST"]},
        }
    if headers:
        out["headers"] = headers
    return out


def _responses(answers: list[Answer]) -> dict[str, Any]:
    statuses = sorted({a.status for a in answers})
    return {str(s): _response(s, [a for a in answers if a.status == s]) for s in statuses}


def _example(text: str, schema: dict[str, Any]) -> Any:
    """A RULES example in the field's own JSON type (3600, true), else as text."""
    types = {b.get("type") for b in schema.get("anyOf", [schema])}
    try:
        value = json.loads(text)
    except ValueError:
        return text
    kind = {bool: "boolean", int: "integer", str: "string"}.get(type(value))
    return value if kind in types else text


def _request_schema(schema: dict[str, Any]) -> None:
    """BindRequest's schema, each field described by its rule (RULES) with its example."""
    schema["required"] = [f for f in schema["required"] if f not in DEFAULTED_BY_SETTING]
    _no_null_defaults(schema)
    for name, prop in schema["properties"].items():
        rule, example = RULES[name]
        setting = DEFAULTED_BY_SETTING.get(name)
        prop["description"] = rule + (f"; required unless {setting} is set" if setting else "")
        prop["examples"] = [_example(example, prop)]


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field may come in the query string instead of the body (never in both)."""
    out = []
    for name, prop in schema["properties"].items():
        branches = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
        value = branches[0] if len(branches) == 1 else {"anyOf": branches}
        out.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": prop["description"] + " (instead of the body field)",
                "schema": {k: v for k, v in value.items() if k not in ("description", "examples")},
            }
        )
    return out


def document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(BindRequest, "validation"), (SuccessBody, "validation"), (ErrorBody, "validation")],
        ref_template="#/components/schemas/{model}",
        schema_generator=_Schemas,
    )
    schemas = defs["$defs"]
    _request_schema(schemas["BindRequest"])
    answers = http_answers()
    bind = [a for a in answers if a.code not in (NOT_FOUND, NOT_ALLOWED)]
    request_examples = {
        "ttl": {
            "summary": "bind for an hour (PoolKey from AXN_POOL_KEY)",
            "value": {"PhoneNoA": RULES["PhoneNoA"][1], "TtlSeconds": 3600},
        },
        "order": {
            "summary": "bind an order's A and B numbers until a time (Asia/Shanghai)",
            "value": {
                "PhoneNoA": RULES["PhoneNoA"][1],
                "PhoneNoB": RULES["PhoneNoB"][1],
                "Expiration": RULES["Expiration"][1],
                "OutOrderId": RULES["OutOrderId"][1],
            },
        },
    }
    other_method = {
        "summary": "any method but POST",
        "responses": _responses([a for a in answers if a.code == NOT_ALLOWED]),
    }
    not_found = {
        "summary": "any path but / (on an FC HTTP trigger)",
        "parameters": [
            {
                "name": "path",
                "in": "path",
                "required": True,
                # "." and ".." are not paths of their own (RFC 3986 removes dot segments)
                "schema": {"type": "string", "minLength": 1, "not": {"enum": [".", ".."]}},
            }
        ],
        "responses": _responses([a for a in answers if a.code == NOT_FOUND]),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "axn-bind",
            "version": axn_bind.__version__,
            "description": (
                "Creates a Dyplsapi BindAxnExtension privacy binding (A ↔ X + extension) from "
                "an Alibaba Cloud Function Compute HTTP trigger. Generated by "
                "`python -m tools.openapi` from the code: do not edit."
            ),
        },
        "servers": [
            {"url": "http://127.0.0.1:9000", "description": "make run: the local function"}
        ],
        "paths": {
            "/": {
                "post": {
                    "operationId": "bindAxnExtension",
                    "summary": "Bind a number A to a privacy number X plus an extension",
                    "description": (
                        "The bind request is a JSON object body, a form body, query parameters, "
                        "or a mix of query and body with no field in both; at most "
                        f"{MAX_BODY_BYTES} bytes. The FC invoke-API path "
                        "(`/2023-03-30/functions/{name}/invocations`) is served the same way, "
                        "and behind API Gateway any path is. Give Expiration or TtlSeconds, not "
                        "both; Extension only with PhoneNoX."
                    ),
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "binds this key once; a retry gets the same answer "
                            "(Idempotent-Replayed: true). Without it, OutOrderId is the key.",
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_HEADER_KEY,
                                "pattern": "^[ -~]+$",
                            },
                        },
                        *_query_parameters(schemas["BindRequest"]),
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": _ref("BindRequest"),
                                "examples": request_examples,
                            },
                            "application/x-www-form-urlencoded": {"schema": _ref("BindRequest")},
                        },
                    },
                    "responses": _responses(bind),
                },
                **{method: dict(other_method) for method in OTHER_METHODS},
            },
            "/{path}": {method: dict(not_found) for method in ("post", *OTHER_METHODS)},
        },
        "components": {
            "schemas": schemas,
        },
    }


def render() -> str:
    return json.dumps(document(), ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.openapi", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the output file differs from what would be written",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=OUTPUT,
        help="where the document goes (default docs/openapi.json)",
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        try:
            current = args.output.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            print(
                f"{args.output} is stale: regenerate it with `make openapi` "
                "(python -m tools.openapi) and commit it.",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
