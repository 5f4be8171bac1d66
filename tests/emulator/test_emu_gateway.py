"""Gateway behaviour of the emulator: signatures, credentials, timestamps, nonces, formats."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
import requests

from tools.dypls_emulator import (
    DEFAULT_POOL_KEY,
    DEFAULT_STS_ACCESS_KEY_ID,
    DEFAULT_STS_ACCESS_KEY_SECRET,
    Emulator,
)
from tools.dypls_emulator.client import Reply, SignedClient
from tools.dypls_emulator.clock import format_shanghai, format_utc_stamp


def expiration_in(emulator: Emulator, seconds: float) -> str:
    return format_shanghai(emulator.service.clock.now() + seconds)


def _params(emulator: Emulator, phone_a: str = "13900000001") -> dict[str, str]:
    return {
        "PoolKey": DEFAULT_POOL_KEY,
        "PhoneNoA": phone_a,
        "Expiration": expiration_in(emulator, 3600),
        "ExpectCity": "北京",
        "OutId": "order*1~a b",
    }


def _assert_bound(reply: Reply, emulator: Emulator) -> dict[str, object]:
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["Code"] == "OK"
    dto = body["SecretBindDTO"]
    assert isinstance(dto, dict)
    subs = {b["SubsId"]: b for b in emulator.bindings()}
    assert dto["SubsId"] in subs
    assert subs[dto["SubsId"]]["status"] == "active"
    return dto


def _assert_gateway_error(reply: Reply, status: int, code: str) -> dict[str, object]:
    assert reply.status == status, reply.body
    body = reply.json()
    assert body["Code"] == code
    assert body["HostId"] == "dyplsapi.aliyuncs.com"
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert reply.headers["x-acs-request-id"] == body["RequestId"]
    return body


# --- successful calls ------------------------------------------------------------------------


def test_v3_query_parameters_bind(emulator: Emulator, client: SignedClient) -> None:
    dto = _assert_bound(client.v3("BindAxnExtension", _params(emulator)), emulator)
    assert dto["SecretNo"] in {"17000000001", "17000000002", "17000000003"}
    assert str(dto["SubsId"]).isdigit()
    assert len(str(dto["SubsId"])) == 16


def test_v3_form_body_binds(emulator: Emulator, client: SignedClient) -> None:
    _assert_bound(client.v3("BindAxnExtension", _params(emulator), in_body=True), emulator)


def test_v3_sts_binds(emulator: Emulator, sts_client: SignedClient) -> None:
    _assert_bound(sts_client.v3("BindAxnExtension", _params(emulator)), emulator)
    assert emulator.requests()[-1]["access_key_id"] == DEFAULT_STS_ACCESS_KEY_ID


@pytest.mark.parametrize(("method", "in_body"), [("POST", False), ("GET", False), ("POST", True)])
def test_v1_binds(emulator: Emulator, client: SignedClient, method: str, in_body: bool) -> None:
    reply = client.v1("BindAxnExtension", _params(emulator), method=method, in_body=in_body)
    assert reply.headers["content-type"].startswith("application/json")
    _assert_bound(reply, emulator)
    assert emulator.requests()[-1]["signature_version"] == "V1"


def test_v1_sts_binds(emulator: Emulator, sts_client: SignedClient) -> None:
    _assert_bound(sts_client.v1("BindAxnExtension", _params(emulator)), emulator)


def test_v1_accepts_plus_for_space_on_the_wire(emulator: Emulator, client: SignedClient) -> None:
    call = client.prepare_v1("BindAxnExtension", _params(emulator))
    call.raw_query = urlencode(call.query)
    assert "+" in call.raw_query
    _assert_bound(client.send(call), emulator)


def test_v1_without_format_answers_xml(emulator: Emulator, client: SignedClient) -> None:
    reply = client.v1("BindAxnExtension", _params(emulator), fmt=None)
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/xml")
    root = reply.xml()
    assert root.tag == "BindAxnExtensionResponse"
    assert root.findtext("Code") == "OK"
    assert root.findtext("Message") == "OK"
    subs_id = root.findtext("SecretBindDTO/SubsId")
    assert subs_id in {b["SubsId"] for b in emulator.bindings()}
    assert root.findtext("SecretBindDTO/Extension")
    assert root.findtext("SecretBindDTO/SecretNo")


def test_v1_xml_error_body(emulator: Emulator) -> None:
    wrong = SignedClient(emulator.url, secret="not-the-secret")
    reply = wrong.v1("BindAxnExtension", _params(emulator), fmt="XML")
    assert reply.status == 400
    root = reply.xml()
    assert root.tag == "Error"
    assert root.findtext("Code") == "SignatureDoesNotMatch"
    assert root.findtext("HostId") == "dyplsapi.aliyuncs.com"
    assert root.findtext("RequestId")
    assert root.findtext("Recommend")


def test_business_error_in_xml_uses_action_root(emulator: Emulator, client: SignedClient) -> None:
    params = {**_params(emulator), "PoolKey": "FC999"}
    reply = client.v1("BindAxnExtension", params, fmt=None)
    assert reply.status == 200
    assert reply.xml().tag == "BindAxnExtensionResponse"
    assert reply.code == "isv.POOLKEY_NOT_EXISTS"


# --- rejections --------------------------------------------------------------------------------


def test_v3_bad_signature(emulator: Emulator) -> None:
    reply = SignedClient(emulator.url, secret="wrong").v3("BindAxnExtension", _params(emulator))
    body = _assert_gateway_error(reply, 400, "SignatureDoesNotMatch")
    assert "ACS3-HMAC-SHA256" in str(body["Message"])
    assert emulator.bindings() == []


def test_v3_tampered_parameter(emulator: Emulator, client: SignedClient) -> None:
    call = client.prepare_v3("BindAxnExtension", _params(emulator))
    call.query["PhoneNoA"] = "13900000009"
    _assert_gateway_error(client.send(call), 400, "SignatureDoesNotMatch")


def test_v1_bad_signature_shows_string_to_sign(emulator: Emulator) -> None:
    wrong = SignedClient(emulator.url, secret="wrong")
    body = _assert_gateway_error(
        wrong.v1("BindAxnExtension", _params(emulator), method="GET"), 400, "SignatureDoesNotMatch"
    )
    assert "server string to sign is:GET&%2F&AccessKeyId%3D" in str(body["Message"])


def test_v1_signed_for_get_sent_as_post(emulator: Emulator, client: SignedClient) -> None:
    call = client.prepare_v1("BindAxnExtension", _params(emulator), method="GET")
    call.method = "POST"
    body = _assert_gateway_error(client.send(call), 400, "SignatureDoesNotMatch")
    assert "server string to sign is:POST&" in str(body["Message"])


@pytest.mark.parametrize("version", ["V3", "V1"])
def test_unknown_access_key(emulator: Emulator, version: str) -> None:
    stranger = SignedClient(emulator.url, "LTAIunknown", "secret")
    reply = (stranger.v3 if version == "V3" else stranger.v1)("BindAxnExtension", _params(emulator))
    _assert_gateway_error(reply, 404, "InvalidAccessKeyId.NotFound")


@pytest.mark.parametrize("version", ["V3", "V1"])
def test_timestamp_older_than_15_minutes(
    emulator: Emulator, client: SignedClient, version: str
) -> None:
    old = format_utc_stamp(time.time() - 16 * 60)
    if version == "V3":
        reply = client.v3("BindAxnExtension", _params(emulator), date=old)
    else:
        reply = client.v1("BindAxnExtension", _params(emulator), timestamp=old)
    _assert_gateway_error(reply, 400, "InvalidTimeStamp.Expired")


def test_timestamp_within_window_is_accepted(emulator: Emulator, client: SignedClient) -> None:
    recent = format_utc_stamp(time.time() - 14 * 60)
    _assert_bound(client.v3("BindAxnExtension", _params(emulator), date=recent), emulator)


def test_clock_offset_expires_timestamps(emulator: Emulator, client: SignedClient) -> None:
    emulator.set_clock_offset(-20 * 60)
    reply = client.v3("BindAxnExtension", _params(emulator))
    _assert_gateway_error(reply, 400, "InvalidTimeStamp.Expired")


@pytest.mark.parametrize("stamp", ["2019-09-05 03:00:00", "2019-09-05T11:00:00+08:00", "yesterday"])
def test_malformed_timestamp(emulator: Emulator, client: SignedClient, stamp: str) -> None:
    reply = client.v1("BindAxnExtension", _params(emulator), timestamp=stamp)
    _assert_gateway_error(reply, 400, "InvalidTimeStamp.Format")


@pytest.mark.parametrize("version", ["V3", "V1"])
def test_reused_nonce(emulator: Emulator, client: SignedClient, version: str) -> None:
    send = client.v3 if version == "V3" else client.v1
    first = send("BindAxnExtension", _params(emulator, "13900000001"), nonce="nonce-1")
    _assert_bound(first, emulator)
    second = send("BindAxnExtension", _params(emulator, "13900000002"), nonce="nonce-1")
    _assert_gateway_error(second, 400, "SignatureNonceUsed")
    assert len(emulator.bindings()) == 1


def test_nonce_rejected_by_signature_can_be_used_again(
    emulator: Emulator, client: SignedClient
) -> None:
    wrong = SignedClient(emulator.url, secret="wrong")
    rejected = wrong.v3("BindAxnExtension", _params(emulator), nonce="nonce-2")
    _assert_gateway_error(rejected, 400, "SignatureDoesNotMatch")
    _assert_bound(client.v3("BindAxnExtension", _params(emulator), nonce="nonce-2"), emulator)


@pytest.mark.parametrize("version", ["V3", "V1"])
def test_sts_without_token(emulator: Emulator, version: str) -> None:
    no_token = SignedClient(
        emulator.url, DEFAULT_STS_ACCESS_KEY_ID, DEFAULT_STS_ACCESS_KEY_SECRET, None
    )
    reply = (no_token.v3 if version == "V3" else no_token.v1)("BindAxnExtension", _params(emulator))
    _assert_gateway_error(reply, 400, "InvalidSecurityToken.Malformed")


@pytest.mark.parametrize("version", ["V3", "V1"])
def test_sts_with_wrong_token(emulator: Emulator, version: str) -> None:
    wrong = SignedClient(
        emulator.url, DEFAULT_STS_ACCESS_KEY_ID, DEFAULT_STS_ACCESS_KEY_SECRET, "other-token"
    )
    reply = (wrong.v3 if version == "V3" else wrong.v1)("BindAxnExtension", _params(emulator))
    _assert_gateway_error(reply, 400, "InvalidSecurityToken.MismatchWithAccessKey")


def test_token_with_plain_key(emulator: Emulator) -> None:
    plain = SignedClient(emulator.url, security_token="some-token")
    reply = plain.v3("BindAxnExtension", _params(emulator))
    _assert_gateway_error(reply, 400, "InvalidSecurityToken.MismatchWithAccessKey")


def test_content_hash_mismatch(emulator: Emulator, client: SignedClient) -> None:
    call = client.prepare_v3("BindAxnExtension", _params(emulator), in_body=True)
    call.body = call.body.replace(b"13900000001", b"13900000009")
    body = _assert_gateway_error(client.send(call), 400, "SignatureDoesNotMatch")
    assert "x-acs-content-sha256" in str(body["Message"])
    assert emulator.bindings() == []


@pytest.mark.parametrize("version", ["V3", "V1"])
def test_unknown_action(emulator: Emulator, client: SignedClient, version: str) -> None:
    reply = (client.v3 if version == "V3" else client.v1)("BindAxnExtensionX", _params(emulator))
    _assert_gateway_error(reply, 404, "InvalidApi.NotFound")


@pytest.mark.parametrize("version", ["V3", "V1"])
def test_wrong_version(emulator: Emulator, client: SignedClient, version: str) -> None:
    send = client.v3 if version == "V3" else client.v1
    reply = send("BindAxnExtension", _params(emulator), version="2019-01-01")
    _assert_gateway_error(reply, 400, "InvalidVersion")


def test_unsigned_x_acs_header(emulator: Emulator, client: SignedClient) -> None:
    call = client.prepare_v3("BindAxnExtension", _params(emulator))
    call.headers["x-acs-extra"] = "1"
    _assert_gateway_error(client.send(call), 400, "IncompleteSignature")


def test_body_without_signed_content_type(emulator: Emulator, client: SignedClient) -> None:
    call = client.prepare_v3("BindAxnExtension", _params(emulator), in_body=True)
    auth = call.headers["Authorization"]
    call.headers["Authorization"] = auth.replace("content-type;", "")
    _assert_gateway_error(client.send(call), 400, "IncompleteSignature")


@pytest.mark.parametrize(
    "authorization",
    [
        "ACS3-HMAC-SHA256 Credential=LTAIemulatorAK0001",
        "ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=00",
        "garbage",
    ],
)
def test_garbled_authorization(
    emulator: Emulator, client: SignedClient, authorization: str
) -> None:
    call = client.prepare_v3("BindAxnExtension", _params(emulator))
    call.headers["Authorization"] = authorization
    _assert_gateway_error(client.send(call), 400, "IncompleteSignature")


def test_v3_missing_date_header(emulator: Emulator, client: SignedClient) -> None:
    call = client.prepare_v3("BindAxnExtension", _params(emulator))
    del call.headers["x-acs-date"]
    body = _assert_gateway_error(client.send(call), 400, "MissingParameter")
    assert "x-acs-date" in str(body["Message"])


@pytest.mark.parametrize("name", ["Signature", "SignatureNonce", "Timestamp", "AccessKeyId"])
def test_v1_missing_common_parameter(emulator: Emulator, client: SignedClient, name: str) -> None:
    call = client.prepare_v1("BindAxnExtension", _params(emulator))
    del call.query[name]
    body = _assert_gateway_error(client.send(call), 400, "MissingParameter")
    assert f'"{name}"' in str(body["Message"])


def test_v1_unsupported_signature_method(emulator: Emulator, client: SignedClient) -> None:
    call = client.prepare_v1("BindAxnExtension", _params(emulator))
    call.query["SignatureMethod"] = "HMAC-SHA256"
    _assert_gateway_error(client.send(call), 400, "IncompleteSignature")


@pytest.mark.parametrize("name", ["PoolKey", "PhoneNoA", "Expiration"])
def test_missing_required_business_parameter(
    emulator: Emulator, client: SignedClient, name: str
) -> None:
    params = _params(emulator)
    del params[name]
    body = _assert_gateway_error(client.v3("BindAxnExtension", params), 400, "MissingParameter")
    assert f'"{name}"' in str(body["Message"])


def test_unsigned_request_with_requests_library(emulator: Emulator) -> None:
    reply = requests.post(emulator.url + "/", params=_params(emulator), timeout=5)
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("text/xml")
    assert "<Code>MissingParameter</Code>" in reply.text


def test_other_path_is_not_found(emulator: Emulator) -> None:
    reply = requests.post(emulator.url + "/v1/bind", params={"Format": "JSON"}, timeout=5)
    assert reply.status_code == 404
    assert reply.json()["Code"] == "InvalidApi.NotFound"


def test_request_log_has_no_secrets_or_phone_numbers(
    emulator: Emulator, client: SignedClient, sts_client: SignedClient
) -> None:
    client.v3("BindAxnExtension", _params(emulator, "13912345678"))
    sts_client.v1("BindAxnExtension", _params(emulator, "13987654321"))
    SignedClient(emulator.url, secret="wrong").v3("BindAxnExtension", _params(emulator))
    log = emulator.requests()
    assert [(e["signature_version"], e["http_status"], e["code"]) for e in log] == [
        ("V3", 200, "OK"),
        ("V1", 200, "OK"),
        ("V3", 400, "SignatureDoesNotMatch"),
    ]
    assert [e["binding_created"] for e in log] == [True, True, False]
    text = json.dumps(log, ensure_ascii=False)
    for secret in ("emulator-secret-0001", "emulator-sts-secret-0001", "emulator-sts-token"):
        assert secret not in text
    assert "13912345678" not in text
    assert "13987654321" not in text
