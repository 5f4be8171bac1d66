"""The OpenAPI contract (docs/openapi.json, written by ``python -m tools.openapi``) against the code
and against the running function.

(a) the committed file is what the generator writes now;
(b) every status and Code the HTTP path can answer is declared: each error class, each ``code=``
    in the source, each code of the upstream table and each verdict of ``classify`` on every
    HTTP status, and every answer of a run of real scenarios (faults of the emulator, settings)
    through the local HTTP trigger;
(c) schemathesis generates requests from the contract and sends them to the local trigger with
    the emulator behind it: no 5xx, only declared statuses, content types, headers and bodies.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import logging
import pkgutil
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.redisproc import MEMORY_ONLY
from tools import openapi
from tools.localserver import TriggerHandler

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 40  # fuzzed requests per operation; the coverage and examples phases add their own


# -- helpers -------------------------------------------------------------------------------


@functools.cache
def _contract() -> dict[str, Any]:
    return json.loads(DOC.read_text(encoding="utf-8"))


@functools.cache
def _response_schema(path: str, method: str, status: int) -> dict[str, Any] | None:
    doc = _contract()
    response = doc["paths"][path][method]["responses"].get(str(status))
    if response is None:
        return None
    return _inline(response["content"]["application/json"]["schema"], doc)


def _inline(node: Any, doc: dict[str, Any]) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points to."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return _inline({**copy.deepcopy(target), **rest}, doc)
        return {k: _inline(v, doc) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, doc) for v in node]
    return node


def declared_problem(path: str, method: str, status: int, body: dict[str, Any]) -> str | None:
    """Why ``status`` with ``body`` is not an answer the contract declares, or None."""
    schema = _response_schema(path, method, status)
    if schema is None:
        return f"{method.upper()} {path}: status {status} is not declared"
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(body), key=str)
    return f"{method.upper()} {path} {status}: {errors[0].message}" if errors else None


def _body(code: str, status: int) -> dict[str, Any]:
    body: dict[str, Any] = {"Code": code, "Message": "m", "RequestId": "r"}
    if status == 200:
        body["SecretBindDTO"] = {"Extension": "100", "SecretNo": "17000000001", "SubsId": "1"}
    return body


def _route(code: str) -> tuple[str, str]:
    return {"NotFound": ("/{path}", "post"), "MethodNotAllowed": ("/", "get")}.get(
        code, ("/", "post")
    )


# -- (a) the committed file is current ---------------------------------------------------------


def test_the_committed_contract_is_what_the_generator_writes(capsys):
    assert openapi.main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_on_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "openapi.json"
    stale.write_text(DOC.read_text(encoding="utf-8").replace('"3.1.0"', '"3.0.0"'))
    assert openapi.main(["--check", "--output", str(stale)]) == 1
    assert "is stale: regenerate it with `make openapi`" in capsys.readouterr().err
    assert openapi.main(["--output", str(stale)]) == 0
    assert stale.read_bytes() == DOC.read_bytes()


def test_the_request_schema_is_the_models():
    from axn_bind.models import RULES, BindRequest

    schema = _contract()["components"]["schemas"]["BindRequest"]
    assert list(schema["properties"]) == list(BindRequest.model_fields)
    assert set(schema["properties"]) == set(RULES)
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["PhoneNoA"]  # PoolKey may come from AXN_POOL_KEY
    post = _contract()["paths"]["/"]["post"]
    header = next(p for p in post["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key"
    assert {p["name"] for p in post["parameters"] if p["in"] == "query"} == set(RULES)


# -- (b) every answer of the HTTP path is declared -------------------------------------------


def _error_classes() -> list[type]:
    import axn_bind
    from axn_bind.errors import AxnError

    for module in pkgutil.walk_packages(axn_bind.__path__, "axn_bind."):
        importlib.import_module(module.name)
    found, todo = [], list(AxnError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_is_declared_at_its_status():
    classes = _error_classes()
    assert {c.__name__ for c in classes} >= {"StoreUnavailableError", "PublishError"}
    problems = [
        declared_problem(*_route(cls.code), cls.status, _body(cls.code, cls.status))
        for cls in classes
        if cls.code not in openapi.NOT_ON_HTTP_PATH
    ]
    assert [p for p in problems if p] == []


def test_every_code_given_in_the_source_is_declared():
    declared = json.dumps(_contract())
    literal = re.compile(r"""\bcode\s*=\s*["']([^"']+)["']""")
    codes = {
        code
        for path in (ROOT / "src" / "axn_bind").rglob("*.py")
        for code in literal.findall(path.read_text(encoding="utf-8"))
    }
    assert {"StoreNotDurable", "MissingCredentials", "InvalidParameter"} <= codes
    missing = sorted(c for c in codes - set(openapi.NOT_ON_HTTP_PATH) if f'"{c}"' not in declared)
    assert missing == []


def test_the_codes_left_out_exist_and_are_not_http_answers():
    every = {c.code for c in _error_classes()}
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "axn_bind").rglob("*.py"))
    for code in openapi.NOT_ON_HTTP_PATH:
        assert code in every or f'code="{code}"' in source, f"{code} no longer exists"
    assert all(a.code not in openapi.NOT_ON_HTTP_PATH for a in openapi.http_answers())


def test_every_upstream_code_and_verdict_is_declared():
    from axn_bind.dypls import codes
    from axn_bind.dypls.classify import classify
    from axn_bind.dypls.transport import Answered, NoAnswer, NotSent

    problems = []
    for code, cls in codes.CODES.items():
        problems.append(declared_problem("/", "post", cls.status, _body(code, cls.status)))
    for prefix, cls in codes.PREFIXES:
        problems.append(
            declared_problem("/", "post", cls.status, _body(prefix + "New", cls.status))
        )
    exchanges: list[Any] = [NotSent("x"), NoAnswer("x", timed_out=True), NoAnswer("x", False)]
    for status in range(100, 600):
        for body in (b"", b"[]", b'{"Code": "Brand.New"}', b'{"Code": "isv.NEW"}'):
            exchanges.append(Answered(status, {"retry-after": "2"}, body))
    for exchange in exchanges:
        verdict = classify(exchange)
        problems.append(
            declared_problem("/", "post", verdict.status, _body(verdict.code, verdict.status))
        )
    assert [p for p in problems if p] == []


def test_every_field_put_in_a_body_is_declared():
    schemas = _contract()["components"]["schemas"]
    declared = set(schemas["ErrorBody"]["properties"]) | set(schemas["SuccessBody"]["properties"])
    added = re.compile(r"""\bbody\[["']([A-Z]\w*)["']\]\s*=|with_fields\(([^)]*)\)""")
    fields = set()
    for path in (ROOT / "src" / "axn_bind").rglob("*.py"):
        for key, args in added.findall(path.read_text(encoding="utf-8")):
            fields |= {key} if key else set(re.findall(r"\b([A-Z]\w*)=", args))
    assert {"Announced", "PossibleOrphanRequestId"} <= fields
    assert fields - declared == set()


def test_codes_are_checked_per_status():
    # the contract is not "any string anywhere": a code at a status it never has is refused
    assert declared_problem("/", "post", 404, _body("NotFound", 404))
    assert declared_problem("/", "post", 400, _body("IdempotencyKeyReused", 400))
    assert declared_problem("/", "post", 409, _body("isv.NO_AVAILABLE_NUMBER", 409))
    assert declared_problem("/", "post", 200, {"Code": "OK", "Message": "OK", "RequestId": "r"})
    assert declared_problem("/", "post", 400, {**_body("InvalidParameter", 400), "Extra": 1})
    assert not declared_problem("/", "post", 400, _body("isv.SOMETHING_NEW", 400))


# -- the local HTTP trigger ------------------------------------------------------------------


class _Trigger(ThreadingHTTPServer):
    """tools/localserver.py's handler, each request in a thread marked as the function's."""

    daemon_threads = True
    serving = threading.local()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        self.serving.function = True
        super().process_request_thread(request, client_address)


def _function_only(record: logging.LogRecord) -> bool:
    """Keep urllib3's lines of the function (its calls to Dyplsapi) for the privacy scan; drop
    those of this test's own HTTP client, whose URLs are whatever schemathesis generated."""
    return getattr(_Trigger.serving, "function", False)


@pytest.fixture(scope="module")
def trigger() -> Iterator[str]:
    """The local trigger on a free loopback port."""
    server = _Trigger(("127.0.0.1", 0), TriggerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client_log = logging.getLogger("urllib3.connectionpool")
    client_log.addFilter(_function_only)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        client_log.removeFilter(_function_only)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def function(env, trigger) -> str:
    """The function behind the trigger, configured against a clean emulator."""
    return trigger


SCHEMA = schemathesis.openapi.from_path(
    DOC,
    config=schemathesis.Config.from_dict(
        {
            "seed": 20240501,
            "generation": {"max-examples": EXAMPLES, "mode": "all", "database": "none"},
            "operations": [
                # one answer (404) whatever the path: a few examples each are enough
                {"include-path": "/{path}", "generation": {"max-examples": 5}},
            ],
            "phases": {
                "stateful": {"enabled": False},
                # methods the contract does not declare reach the local server, which answers
                # 501 without calling the function; the methods it serves are declared
                "coverage": {"unexpected-methods": []},
            },
        }
    ),
)


@SCHEMA.hook
def map_case(context: Any, case: Any) -> Any:
    """A field may come in the query or in the body, not in both (400 MalformedRequest, met in
    test_scenarios_through_the_trigger): most generated cases would have both, so the query
    keeps only fields the body lacks, and the rules of every field are reached."""
    if isinstance(case.body, dict) and case.query:
        case.query = {k: v for k, v in case.query.items() if k not in case.body}
    return case


@SCHEMA.parametrize()
@hypothesis.settings(
    # the function's environment is set once per operation, not per example, on purpose
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
    deadline=None,
)
def test_the_function_answers_as_the_contract_says(case, function, emulator):
    # The emulator's pools are small: after a few bindings the same A (an example) meets a pool
    # whose numbers it is bound to already (503 isv.NO_AVAILABLE_NUMBER). They are emptied
    # first, so that a 5xx can only be a defect.
    if len(emulator.bindings()) >= 4:
        emulator.reset()
    case.call_and_validate(base_url=function, checks=CHECKS, timeout=30)


def test_the_local_server_serves_the_contract(function):
    answer = requests.get(function + "/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.content == DOC.read_bytes()


# -- (b) real answers, one scenario each ------------------------------------------------------


class Client:
    """Sends requests to the trigger and checks each answer against the contract with the same
    checks as the schemathesis run (all but the one against 5xx, which these provoke)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.seen: set[tuple[int, str]] = set()
        self.operations = {
            (op.path, op.method): op for op in (r.ok() for r in SCHEMA.get_all_operations())
        }

    def send(self, method: str = "POST", path: str = "/", **kw: Any) -> requests.Response:
        answer = requests.request(method, self.base + path, timeout=30, **kw)
        route = ("/", method.lower()) if path == "/" else ("/{path}", method.lower())
        case = self.operations[route].Case(path_parameters={"path": path.lstrip("/")})
        case.validate_response(answer, checks=CHECKS[1:])  # 5xx are provoked on purpose here
        self.seen.add((answer.status_code, answer.json()["Code"]))
        return answer

    def bind(self, expect: int, code: str, **body: Any) -> requests.Response:
        headers = body.pop("headers", None)
        request = {"PhoneNoA": phone(), "TtlSeconds": 3600, **body}
        answer = self.send(json=request, headers=headers)
        assert (answer.status_code, answer.json()["Code"]) == (expect, code), answer.text
        return answer


_orders = iter(range(10**6))


def order() -> str:
    return f"DD-openapi-{time.time_ns()}-{next(_orders)}"


def phone() -> str:
    return f"139{next(_orders):08d}"  # a new A each time: the emulator's pool is small


def test_scenarios_through_the_trigger(function, emulator, env, monkeypatch, tmp_path):
    from axn_bind.dypls import codes
    from axn_bind.errors import Kind

    client = Client(function)
    # bound, replayed, key reused
    a, key = phone(), {"Idempotency-Key": "k-1"}
    first = client.bind(200, "OK", PhoneNoA=a, headers=key)
    again = client.bind(200, "OK", PhoneNoA=a, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true" and again.text == first.text
    client.bind(409, "IdempotencyKeyReused", PhoneNoA=a, TtlSeconds=7200, headers=key)
    client.bind(400, "InvalidParameter", headers={"Idempotency-Key": "\x7f"})
    # the request itself
    bad = client.bind(400, "InvalidParameter", PhoneNoA="12", PhoneNob="1")
    assert {e["Field"] for e in bad.json()["Errors"]} == {"PhoneNoA", "PhoneNob"}
    assert client.send(data=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    form = client.send(data={"PhoneNoA": "13900000002", "TtlSeconds": "3600"})
    assert form.status_code == 200
    assert client.send(params={"TtlSeconds": "3600"}, json={"TtlSeconds": 3600}).status_code == 400
    assert client.send(data=b" " * (70 * 1024)).status_code == 413
    wrong = client.send("GET")
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert client.send("POST", "/elsewhere", json={}).status_code == 404
    # what Dyplsapi answers
    faults: list[tuple[dict[str, Any], int, str]] = [
        ({"kind": "throttle", "count": 10, "retry_after": 1}, 429, "Throttling.User"),
        ({"kind": "flow_limit", "count": 10}, 429, "isv.FLOW_LIMIT"),
        ({"kind": "business", "code": "isv.BIND_CONFLICT"}, 409, "isv.BIND_CONFLICT"),
        ({"kind": "business", "code": "isv.NO_AVAILABLE_NUMBER"}, 503, "isv.NO_AVAILABLE_NUMBER"),
        (
            {"kind": "business", "code": "isv.MOBILE_NUMBER_ILLEGAL"},
            400,
            "isv.MOBILE_NUMBER_ILLEGAL",
        ),
        ({"kind": "business", "code": "isv.NEVER_SEEN"}, 400, "isv.NEVER_SEEN"),
        ({"kind": "gateway"}, 502, "InternalError"),
        (
            {"kind": "gateway", "status": 400, "code": "SignatureDoesNotMatch"},
            500,
            "SignatureDoesNotMatch",
        ),
        (
            {"kind": "gateway", "status": 403, "code": "Forbidden.NoSuchThing"},
            500,
            "Forbidden.NoSuchThing",
        ),
        ({"kind": "isp_error", "bind": True}, 502, "isp.SYSTEM_ERROR"),
        ({"kind": "http_5xx", "status": 503}, 502, "ServiceUnavailable"),
        ({"kind": "raw", "status": 200, "body": ""}, 502, "UnreadableResponse"),
        ({"kind": "bind_then_drop"}, 502, "UpstreamConnectionLost"),
    ]
    for fault, status, code in faults:
        emulator.clear_faults()
        emulator.add_fault(**fault)
        same = {"OutOrderId": order(), "PhoneNoA": phone()}
        answer = client.bind(status, code, **same)
        if status == 429:
            assert int(answer.headers["Retry-After"]) >= 1
        emulator.clear_faults()
        known = codes.lookup(code)
        if known is not None and known.kind is Kind.REJECTED:  # kept by the record: replayed
            replay = client.bind(status, code, **same)
            assert replay.headers["Idempotent-Replayed"] == "true"
        if code == "isp.SYSTEM_ERROR":
            client.bind(409, "OutcomeUnknown", **same)
    # a call that is still running
    emulator.add_fault("delay", seconds=1.5)
    same = {"OutOrderId": order(), "PhoneNoA": phone()}
    slow = threading.Thread(target=client.bind, args=(200, "OK"), kwargs=same)
    slow.start()
    try:
        deadline = time.monotonic() + 5
        while emulator.info().get("in_flight", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = client.bind(409, "IdempotencyInProgress", **same)
        assert int(busy.headers["Retry-After"]) >= 1
    finally:
        slow.join(timeout=10)
    # settings
    env(DYPLS_READ_TIMEOUT="0.3")
    emulator.add_fault("delay", seconds=0.8)
    client.bind(504, "UpstreamTimeout")
    assert emulator.wait_idle()
    env(DYPLS_READ_TIMEOUT=None, DYPLS_CONNECT_TIMEOUT="30")
    client.bind(504, "DeadlineExceeded")  # a whole call no longer fits in the function's time
    env(DYPLS_CONNECT_TIMEOUT=None, AXN_UNKNOWN_OUTCOME="reexecute")
    emulator.add_fault("isp_error", bind=True)
    same = {"OutOrderId": order(), "PhoneNoA": phone()}
    client.bind(502, "isp.SYSTEM_ERROR", **same)
    orphan = client.bind(200, "OK", **same)
    assert "PossibleOrphanRequestId" in orphan.json()
    env(AXN_UNKNOWN_OUTCOME="sometimes")
    client.bind(500, "InvalidConfiguration")
    env(AXN_UNKNOWN_OUTCOME=None, AXN_PUBLISH_TO=f"file://{tmp_path}/not-a-dir/x/events.jsonl")
    (tmp_path / "not-a-dir").write_text("")
    assert client.bind(200, "OK", OutOrderId=order()).json()["Announced"] is False
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env(AXN_PUBLISH_TO=None, DYPLS_ENDPOINT=f"http://127.0.0.1:{port}")
    client.bind(503, "UpstreamUnavailable")
    env(DYPLS_ENDPOINT=emulator.url, AXN_IDEMPOTENCY_URL=f"redis://127.0.0.1:{port}/0")
    client.bind(503, "IdempotencyStoreUnavailable", OutOrderId=order())
    env(AXN_IDEMPOTENCY_URL=None, ALIBABA_CLOUD_ACCESS_KEY_ID=None)
    client.bind(500, "MissingCredentials")
    env(ALIBABA_CLOUD_ACCESS_KEY_ID="LTAIemulatorAK0001")

    def defect(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a defect")

    with monkeypatch.context() as patch:
        patch.setattr("axn_bind.service.BindService._call", defect)
        client.bind(500, "InternalError")

    # every status of the README's table was met (and answered as declared)
    assert {s for s, _ in client.seen} >= {200, 400, 404, 405, 409, 413, 429, 500, 502, 503, 504}


def test_a_store_that_may_lose_records_is_declared(function, env, redis_processes):
    # A Redis that keeps nothing on disk, of this test's own: the test Redis is durable.
    server = redis_processes.start(*MEMORY_ONLY)
    client = Client(function)
    env(AXN_IDEMPOTENCY_URL=server.url(), AXN_STORE_DURABILITY="enforce")
    client.bind(500, "StoreNotDurable", OutOrderId=order())
