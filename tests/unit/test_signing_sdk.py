"""The project's signer against an independent verifier built from the official SDK's functions.

A real HTTP server on 127.0.0.1 plays the Dyplsapi gateway: for every request it receives it decodes
what arrived on the wire (method, path, query, headers, body) and recomputes the signature with ONLY
``alibabacloud_tea_openapi.utils.Utils`` (``get_authorization`` for V3, ``get_rpcsignature`` for
V1), then answers 200 ``{"ok": true}`` or 400 with both signatures. The project's signer is used
only on the client side, exactly as ``dypls.py`` uses it.

The SDK is a declared test dependency: if it cannot be imported these tests fail; they never skip.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import pytest
import requests

from axn_bind.config import Credentials
from axn_bind.signing import (
    SignedRequest,
    canonical_query,
    new_nonce,
    sign_v1,
    sign_v3,
    utc_timestamp,
)
from tests import vectors

_SDK_IMPORT_ERROR: ImportError | None = None
try:
    from alibabacloud_tea_openapi.utils import Utils as SdkUtils
    from darabonba.request import DaraRequest
except ImportError as exc:  # pragma: no cover - exercised only when the dependency is missing
    _SDK_IMPORT_ERROR = exc

V3_ALGORITHM = "ACS3-HMAC-SHA256"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_SKEW = timedelta(minutes=15)
ACTION = "BindAxnExtension"

PLAIN = Credentials("LTAI5tTestKeyId", "plain-secret/with+chars=")
STS = Credentials("STS.NUgYrLnoC4Test", "sts-secret", "CAIS+token/with=chars&more~")
# What the gateway knows: access key id -> (secret, STS token or None).
KEYS = {
    PLAIN.access_key_id: (PLAIN.access_key_secret, None),
    STS.access_key_id: (STS.access_key_secret, STS.security_token),
}

OUT_ID = "order*1~a b+c&d=e/f g"
BIND_PARAMS = {
    "PoolKey": "FC100000012345678",
    "PhoneNoA": "13900000000",
    "Extension": "130",
    "PhoneNoB": "13800000000",
    "PhoneNoX": "17000000000",
    "Expiration": "2030-09-05 12:00:00",
    "ExpectCity": "北京",
    "IsRecordingEnabled": "true",
    "OutId": OUT_ID,
}


def _require_sdk() -> None:
    if _SDK_IMPORT_ERROR is not None:
        pytest.fail(
            "alibabacloud-tea-openapi (the official SDK) is a declared test dependency and could "
            f"not be imported: {_SDK_IMPORT_ERROR!r}",
            pytrace=False,
        )


# --------------------------------------------------------------------------- SDK-based verifier


@dataclass
class Verdict:
    ok: bool
    reason: str
    version: str | None = None
    expected: str | None = None
    received: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    token_checked: bool = False
    form: dict[str, str] = field(default_factory=dict)  # parameters of a form body
    target: str = ""  # the request's path and query, as sent


class SdkVerifier:
    """Recomputes signatures from wire data with the official SDK's functions only."""

    def __init__(
        self, keys: Mapping[str, tuple[str, str | None]], max_skew: timedelta | None = MAX_SKEW
    ) -> None:
        self.keys = dict(keys)
        self.max_skew = max_skew
        self.verdicts: list[Verdict] = []
        self._nonces: set[str] = set()
        self._lock = threading.Lock()

    def verify(
        self, method: str, target: str, header_items: list[tuple[str, str]], body: bytes
    ) -> Verdict:
        verdict = self._verify(method, target, header_items, body)
        verdict.target = target
        with self._lock:
            self.verdicts.append(verdict)
        return verdict

    def _fresh(self, stamp: str | None) -> bool:
        if stamp is None:
            return False
        try:
            when = datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            return False
        return self.max_skew is None or abs(datetime.now(timezone.utc) - when) <= self.max_skew

    def _first_use(self, nonce: str) -> bool:
        with self._lock:
            if nonce in self._nonces:
                return False
            self._nonces.add(nonce)
            return True

    def _verify(
        self, method: str, target: str, header_items: list[tuple[str, str]], body: bytes
    ) -> Verdict:
        parts = urlsplit(target)
        path = unquote(parts.path) or "/"
        # The gateway decodes the query first: %XX as UTF-8 and "+" as a space.
        pairs = parse_qsl(parts.query, keep_blank_values=True, encoding="utf-8", errors="strict")
        query = dict(pairs)
        if len(query) != len(pairs):
            return Verdict(False, "duplicate query parameter")
        headers: dict[str, str] = {}
        for name, value in header_items:
            if name.lower() in headers:
                return Verdict(False, f"duplicate header {name}", query=query)
            headers[name.lower()] = value
        form: dict[str, str] = {}
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
        authorization = headers.get("authorization", "")
        if authorization.startswith(V3_ALGORITHM + " "):
            verdict = self._verify_v3(
                method, path, query=query, headers=headers, body=body, authorization=authorization
            )
        elif "Signature" in query or "Signature" in form:
            # The gateway reads an RPC request's parameters from the query and the form body.
            verdict = self._verify_v1(method, {**query, **form})
        else:
            verdict = Verdict(False, "request is not signed", query=query)
        verdict.form = form
        return verdict

    def _verify_v3(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        authorization: str,
    ) -> Verdict:
        def reject(reason: str) -> Verdict:
            return Verdict(False, reason, "v3", query=query)

        fields = dict(
            item.strip().partition("=")[::2]
            for item in authorization[len(V3_ALGORITHM) + 1 :].split(",")
        )
        access_key_id = fields.get("Credential", "")
        if access_key_id not in self.keys:
            return reject("unknown access key id")
        secret, token = self.keys[access_key_id]
        signed = [name for name in fields.get("SignedHeaders", "").split(";") if name]
        required = {"host", *(name for name in headers if name.startswith("x-acs-"))}
        if missing := sorted(required - set(signed)):
            return reject(f"headers not signed: {missing}")
        if absent := [name for name in signed if name not in headers]:
            return reject(f"signed headers absent: {absent}")
        if token is not None and headers.get("x-acs-security-token") != token:
            return reject("security token missing or wrong")
        payload = SdkUtils.hex_encode(SdkUtils.hash(body, V3_ALGORITHM))
        if headers.get("x-acs-content-sha256") != payload:
            return reject("x-acs-content-sha256 does not match the body")
        if not self._fresh(headers.get("x-acs-date")):
            return reject("x-acs-date missing, malformed or stale")

        request = DaraRequest()
        request.method = method
        request.pathname = path
        request.query = dict(query)
        request.headers = {name: headers[name] for name in signed}
        expected = SdkUtils.get_authorization(request, V3_ALGORITHM, payload, access_key_id, secret)
        if not hmac.compare_digest(expected.encode(), authorization.encode()):
            return Verdict(False, "signature mismatch", "v3", expected, authorization, query)
        if not self._first_use(headers["x-acs-signature-nonce"]):
            return reject("signature nonce already used")
        return Verdict(True, "ok", "v3", expected, authorization, query, token is not None)

    def _verify_v1(self, method: str, query: dict[str, str]) -> Verdict:
        def reject(reason: str) -> Verdict:
            return Verdict(False, reason, "v1", query=query)

        signed_params = {k: v for k, v in query.items() if k != "Signature"}
        received = query["Signature"]
        access_key_id = signed_params.get("AccessKeyId", "")
        if access_key_id not in self.keys:
            return reject("unknown access key id")
        secret, token = self.keys[access_key_id]
        if signed_params.get("SignatureMethod") != "HMAC-SHA1":
            return reject("SignatureMethod must be HMAC-SHA1")
        if signed_params.get("SignatureVersion") != "1.0":
            return reject("SignatureVersion must be 1.0")
        if token is not None and signed_params.get("SecurityToken") != token:
            return reject("SecurityToken missing or wrong")
        if not signed_params.get("SignatureNonce"):
            return reject("SignatureNonce missing")
        if not self._fresh(signed_params.get("Timestamp")):
            return reject("Timestamp missing, malformed or stale")

        expected = SdkUtils.get_rpcsignature(signed_params, method, secret)
        if not hmac.compare_digest(expected.encode(), received.encode()):
            return Verdict(False, "signature mismatch", "v1", expected, received, query)
        if not self._first_use(signed_params["SignatureNonce"]):
            return reject("SignatureNonce already used")
        return Verdict(True, "ok", "v1", expected, received, query, token is not None)


# --------------------------------------------------------------------------- capture server


class _GatewayHandler(BaseHTTPRequestHandler):
    server: _CaptureServer

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        verdict = self.server.verifier.verify(
            self.command, self.path, list(self.headers.items()), body
        )
        if verdict.ok:
            status, answer = 200, {"ok": True}
        else:
            status = 400
            answer = {
                "ok": False,
                "reason": verdict.reason,
                "expected": verdict.expected,
                "received": verdict.received,
            }
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = _handle
    do_GET = _handle

    def log_message(self, *args: Any) -> None:  # keep pytest output quiet
        pass


class _CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, verifier: SdkVerifier) -> None:
        super().__init__(("127.0.0.1", 0), _GatewayHandler)
        self.verifier = verifier


@dataclass
class Gateway:
    endpoint: str
    host: str
    verifier: SdkVerifier
    session: requests.Session


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    _require_sdk()
    verifier = SdkVerifier(KEYS)
    server = _CaptureServer(verifier)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    host, port = server.server_address[:2]
    session = requests.Session()
    session.trust_env = False  # never route the loopback call through an environment proxy
    try:
        yield Gateway(f"http://{host}:{port}", f"{host}:{port}", verifier, session)
    finally:
        session.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- client side


def _sign(
    version: str, creds: Credentials, host: str, params: Mapping[str, str] = BIND_PARAMS
) -> SignedRequest:
    if version == "v3":
        return sign_v3(
            method="POST",
            host=host,
            action=ACTION,
            params=params,
            credentials=creds,
            date=utc_timestamp(),
            nonce=new_nonce(),
        )
    return sign_v1(
        method="POST",
        action=ACTION,
        params=params,
        credentials=creds,
        timestamp=utc_timestamp(),
        nonce=new_nonce(),
    )


def _send(
    gw: Gateway,
    signed: SignedRequest,
    *,
    wire: str = "params",
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """POST to / with every parameter in the query and the signed headers, as the official SDK
    sends them. This is the test's own client, not the function (which sends a form body): its
    URLs hold the parameters, so urllib3's DEBUG line about them is kept out of the privacy scan."""
    params = signed.params if params is None else params
    headers = signed.headers if headers is None else headers
    if wire == "params":  # requests' own encoding (space -> "+")
        url, query = f"{gw.endpoint}/", dict(params)
    else:  # the canonical encoding
        url, query = f"{gw.endpoint}/?{canonical_query(params)}", None
    urllib3_log = logging.getLogger("urllib3")
    level = urllib3_log.level
    urllib3_log.setLevel(logging.INFO)
    try:
        return gw.session.post(
            url,
            params=query,
            headers=dict(headers),
            data=signed.body,
            timeout=5,
            allow_redirects=False,
        )
    finally:
        urllib3_log.setLevel(level)


def _only_verdict(gw: Gateway) -> Verdict:
    assert len(gw.verifier.verdicts) == 1, gw.verifier.verdicts
    return gw.verifier.verdicts[0]


def _assert_signature_rejected(response: requests.Response) -> None:
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["ok"] is False
    assert answer["reason"] == "signature mismatch", answer
    assert answer["expected"] and answer["received"]
    assert answer["expected"] != answer["received"]


# --------------------------------------------------------------------------- tests


def test_official_sdk_signing_functions_are_importable() -> None:
    _require_sdk()
    assert callable(SdkUtils.get_authorization)
    assert callable(SdkUtils.get_rpcsignature)


# The published vectors' keys (access key id -> secret), and the signed requests as sent.
VECTOR_KEYS = {
    vectors.V3_DOC_KEY_ID: vectors.V3_DOC_SECRET,
    vectors.BIND_KEY_ID: vectors.BIND_SECRET,
}
V1_BIND_PARAMS = {**vectors.BIND_PARAMS, **vectors.BIND_V1_COMMON}
V1_BIND_QUERY = {**V1_BIND_PARAMS, "Signature": vectors.BIND_V1_POST_SIGNATURE}
V1_DOC_PARAMS, _, V1_DOC_SIGNATURE = vectors.V1_DOC_VECTORS["DescribeDedicatedHosts"]
V1_DOC_QUERY = {**V1_DOC_PARAMS, "Signature": V1_DOC_SIGNATURE}


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        pytest.param(
            "POST",
            "/?" + urlencode(vectors.V3_DOC_PARAMS),
            [*vectors.V3_DOC_HEADERS.items(), ("Authorization", vectors.V3_DOC_AUTHORIZATION)],
            id="v3-official-doc-vector",
        ),
        pytest.param("GET", "/?" + urlencode(V1_DOC_QUERY), [], id="v1-official-doc-vector"),
        pytest.param("POST", "/?" + urlencode(V1_BIND_QUERY), [], id="v1-bind-vector"),
    ],
)
def test_sdk_verifier_itself_accepts_published_vectors(
    method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    """The verifier is right independently of the project: it accepts the published vectors."""
    _require_sdk()
    verifier = SdkVerifier({k: (secret, None) for k, secret in VECTOR_KEYS.items()}, max_skew=None)
    verdict = verifier.verify(method, target, headers, b"")
    assert verdict.ok, verdict
    wrong = SdkVerifier({k: ("wrong", None) for k in VECTOR_KEYS}, max_skew=None).verify(
        method, target, headers, b""
    )
    assert not wrong.ok
    assert wrong.reason == "signature mismatch"


@pytest.mark.parametrize("wire", ["params", "canonical-url"])
@pytest.mark.parametrize("creds", [PLAIN, STS], ids=["ak", "sts"])
@pytest.mark.parametrize("version", ["v3", "v1"])
def test_project_signature_accepted_by_sdk_verifier(
    gateway: Gateway, version: str, creds: Credentials, wire: str
) -> None:
    signed = _sign(version, creds, gateway.host)
    response = _send(gateway, signed, wire=wire)
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True}

    verdict = _only_verdict(gateway)
    assert verdict.ok and verdict.version == version
    assert verdict.token_checked is (creds.security_token is not None)
    # The awkward values survived the wire and were what the SDK verified.
    assert verdict.query["ExpectCity"] == "北京"
    assert verdict.query["OutId"] == OUT_ID
    assert verdict.query == signed.params


@pytest.mark.parametrize("creds", [PLAIN, STS], ids=["ak", "sts"])
@pytest.mark.parametrize("version", ["v3", "v1"])
def test_the_client_sends_its_parameters_in_a_signed_form_body(
    gateway: Gateway, version: str, creds: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Dyplsapi client as it runs: the URL is a bare "/" (a URL is what HTTP libraries log
    at DEBUG), every parameter travels in the form body, and the SDK accepts the signature."""
    from axn_bind.budget import Budget
    from axn_bind.config import Settings
    from axn_bind.dypls import DyplsClient

    settings = Settings.from_env(
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": creds.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": creds.access_key_secret,
            "DYPLS_ENDPOINT": gateway.endpoint,
            "DYPLS_SIGNATURE_VERSION": version,
            "DYPLS_MAX_ATTEMPTS": "1",
        }
    )
    client = DyplsClient(settings)
    try:
        client.call(ACTION, BIND_PARAMS, creds, Budget(10, call_seconds=5, record_seconds=0.1))
    finally:
        client.close()
    verdict = _only_verdict(gateway)
    assert verdict.ok and verdict.version == version, verdict
    assert verdict.token_checked is (creds.security_token is not None)
    assert verdict.target == "/"
    assert {k: verdict.form[k] for k in BIND_PARAMS} == BIND_PARAMS


@pytest.mark.parametrize("version", ["v3", "v1"])
def test_every_request_gets_a_fresh_nonce_and_a_replay_is_rejected(
    gateway: Gateway, version: str
) -> None:
    first, second = _sign(version, STS, gateway.host), _sign(version, STS, gateway.host)
    assert _send(gateway, first).status_code == 200
    assert _send(gateway, second).status_code == 200
    replay = _send(gateway, first)
    assert replay.status_code == 400
    assert "already used" in replay.json()["reason"]


@pytest.mark.parametrize("creds", [PLAIN, STS], ids=["ak", "sts"])
@pytest.mark.parametrize("version", ["v3", "v1"])
def test_parameter_tampered_after_signing_is_rejected(
    gateway: Gateway, version: str, creds: Credentials
) -> None:
    signed = _sign(version, creds, gateway.host)
    tampered = {**signed.params, "OutId": OUT_ID.replace("*", "%2A")}
    _assert_signature_rejected(_send(gateway, signed, params=tampered))
    extra = {**signed.params, "PhoneNoB": "13800000001"}
    _assert_signature_rejected(_send(gateway, signed, params=extra))


def test_v3_signed_header_tampered_after_signing_is_rejected(gateway: Gateway) -> None:
    signed = _sign("v3", PLAIN, gateway.host)
    headers = {**signed.headers, "x-acs-action": "UnbindSubscription"}
    _assert_signature_rejected(_send(gateway, signed, headers=headers))


@pytest.mark.parametrize("creds", [PLAIN, STS], ids=["ak", "sts"])
@pytest.mark.parametrize("version", ["v3", "v1"])
def test_wrong_secret_is_rejected(gateway: Gateway, version: str, creds: Credentials) -> None:
    wrong = Credentials(creds.access_key_id, creds.access_key_secret + "x", creds.security_token)
    _assert_signature_rejected(_send(gateway, _sign(version, wrong, gateway.host)))
