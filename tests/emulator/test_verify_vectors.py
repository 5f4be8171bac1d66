"""The emulator's verifier (tools/dypls_emulator/verify.py) against every vector in signing.md."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.dypls_emulator.clock import parse_utc_stamp
from tools.dypls_emulator.config import Credential
from tools.dypls_emulator.errors import GatewayError
from tools.dypls_emulator.verify import (
    canonical_query,
    percent_encode,
    v1_signature,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    verify_request,
)

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
BIND_PARAMS = {
    "PoolKey": "FC100000012345678",
    "PhoneNoA": "13900000000",
    "Extension": "130",
    "PhoneNoX": "17000000000",
    "PhoneNoB": "13800000000",
    "Expiration": "2019-09-05 12:00:00",
    "ExpectCity": "北京",
    "IsRecordingEnabled": "true",
    "OutId": "order*1~a b",
}
BIND_DATE = "2019-09-05T03:00:00Z"
BIND_NONCE = "c0ffee00-0000-4000-8000-000000000001"
STS_TOKEN = "CAIS+token/with=chars"
BIND_HEADERS = {
    "host": "dyplsapi.aliyuncs.com",
    "x-acs-action": "BindAxnExtension",
    "x-acs-version": "2017-05-25",
    "x-acs-date": BIND_DATE,
    "x-acs-signature-nonce": BIND_NONCE,
    "x-acs-content-sha256": EMPTY_SHA256,
}
V1_COMMON = {
    "AccessKeyId": "testid",
    "Action": "BindAxnExtension",
    "Version": "2017-05-25",
    "Format": "JSON",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureVersion": "1.0",
    "SignatureNonce": BIND_NONCE,
    "Timestamp": BIND_DATE,
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_percent_encoding_rules() -> None:
    assert percent_encode("a b") == "a%20b"
    assert percent_encode("*") == "%2A"
    assert percent_encode("~-_.") == "~-_."
    assert percent_encode("/") == "%2F"
    assert percent_encode("北京") == "%E5%8C%97%E4%BA%AC"
    assert percent_encode("2019-09-05 12:00:00") == "2019-09-05%2012%3A00%3A00"


@given(st.text())
def test_percent_encoding_is_reversible_and_unreserved_only(value: str) -> None:
    encoded = percent_encode(value)
    assert unquote(encoded) == value
    stripped = encoded.replace("%", "")
    assert all(c.isascii() and (c.isalnum() or c in "-_.~") for c in stripped)


def test_v3_official_vector() -> None:
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": EMPTY_SHA256,
    }
    query = {
        "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
        "RegionId": "cn-shanghai",
    }
    canonical = v3_canonical_request("POST", "/", query, headers, b"")
    assert _sha(canonical) == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    assert (
        v3_signature("POST", "/", query, headers, b"", "YourAccessKeySecret")
        == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_v3_bind_vector() -> None:
    assert canonical_query(BIND_PARAMS) == (
        "ExpectCity=%E5%8C%97%E4%BA%AC&Expiration=2019-09-05%2012%3A00%3A00&Extension=130"
        "&IsRecordingEnabled=true&OutId=order%2A1~a%20b&PhoneNoA=13900000000"
        "&PhoneNoB=13800000000&PhoneNoX=17000000000&PoolKey=FC100000012345678"
    )
    canonical = v3_canonical_request("POST", "/", BIND_PARAMS, BIND_HEADERS, b"")
    assert _sha(canonical) == "5f67d1095bf6e49dad862c7e6b940d68356649e6f06a6bc58e91edae6c948c9f"
    assert (
        v3_signature("POST", "/", BIND_PARAMS, BIND_HEADERS, b"", "testsecret")
        == "3718dc49fc3b7f21e4dddd8891d6b93d8bfc48364a862bf9f215c8c588fcab97"
    )


def test_v3_bind_vector_with_sts_token() -> None:
    headers = {**BIND_HEADERS, "x-acs-security-token": STS_TOKEN}
    assert (
        v3_signature("POST", "/", BIND_PARAMS, headers, b"", "testsecret")
        == "4f5fdadade92bf58209e31d0b0cfbf3dcafb624c3035dff202dae23bbdfc609a"
    )


@pytest.mark.parametrize(
    ("params", "secret", "expected"),
    [
        (
            {
                "AccessKeyId": "testid",
                "Action": "DescribeDedicatedHosts",
                "Version": "2014-05-26",
                "Format": "JSON",
                "RegionId": "cn-beijing",
                "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": "edb2b34af0af9a6d14deaf7c1a5315eb",
                "SignatureVersion": "1.0",
                "Timestamp": "2023-03-13T08:34:30Z",
            },
            "testsecret",
            "9NaGiOspFP5UPcwX8Iwt2YJXXuk=",
        ),
        (
            {
                "AccessKeyId": "testid",
                "Action": "DescribeRegions",
                "Version": "2014-05-26",
                "Format": "XML",
                "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
                "SignatureVersion": "1.0",
                "Timestamp": "2016-02-23T12:46:24Z",
            },
            "testsecret",
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY=",
        ),
        (
            {
                "AccessKeyId": "testId",
                "Action": "SendSms",
                "Format": "XML",
                "OutId": "123",
                "PhoneNumbers": "15300000001",
                "RegionId": "cn-hangzhou",
                "SignName": "阿里云短信测试专用",
                "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
                "SignatureVersion": "1.0",
                "TemplateCode": "SMS_71390007",
                "TemplateParam": '{"customer":"test"}',
                "Timestamp": "2017-07-12T02:42:19Z",
                "Version": "2017-05-25",
            },
            "testSecret",
            "zJDF+Lrzhj/ThnlvIToysFRq6t4=",
        ),
    ],
    ids=["DescribeDedicatedHosts", "DescribeRegions", "SendSms"],
)
def test_v1_official_vectors(params: dict[str, str], secret: str, expected: str) -> None:
    assert v1_signature("GET", params, secret) == expected


def test_v1_bind_post_vector() -> None:
    params = {**BIND_PARAMS, **V1_COMMON}
    assert v1_string_to_sign("POST", params).startswith(
        "POST&%2F&AccessKeyId%3Dtestid%26Action%3DBindAxnExtension%26ExpectCity%3D"
        "%25E5%258C%2597%25E4%25BA%25AC%26Expiration%3D2019-09-05%252012%253A00%253A00%26"
    )
    assert v1_signature("POST", params, "testsecret") == "b+5C9ibx46EgSnyYjaelVVL1HvI="


def test_v1_bind_get_vector() -> None:
    params = {**BIND_PARAMS, **V1_COMMON}
    assert v1_signature("GET", params, "testsecret") == "hl24ocsY5iCUkfuzrPlHGn47FSk="


def test_v1_bind_sts_vector() -> None:
    params = {
        **BIND_PARAMS,
        **V1_COMMON,
        "AccessKeyId": "STS.testid",
        "SecurityToken": STS_TOKEN,
    }
    assert v1_signature("POST", params, "testsecret") == "Scm7R4yszi9URdFZO8gZx/kQ4Ls="


def test_v1_case_sensitive_sort_vector() -> None:
    params = {
        **V1_COMMON,
        "SignatureNonce": "11111111-2222-3333-4444-555555555555",
        "PoolKey": "FC100000012345678",
        "PhoneNoA": "13900000000",
        "Expiration": "2019-09-05 12:00:00",
        "ASRStatus": "true",
        "ASRModelId": "m-1",
        "CallDisplayType": "1",
        "RingConfig": "AXNRing_A:100001",
        "OutOrderId": "订单#1/2+3=4&5",
    }
    names = [pair.split("=")[0] for pair in canonical_query(params).split("&")[:4]]
    assert names == ["ASRModelId", "ASRStatus", "AccessKeyId", "Action"]
    assert v1_signature("POST", params, "testsecret") == "PDhNIc08KU4M1K6jm9JmMnyvM0s="


def test_v1_signature_ignores_signature_parameter() -> None:
    params = {**BIND_PARAMS, **V1_COMMON}
    signed = {**params, "Signature": "anything"}
    assert v1_signature("POST", signed, "testsecret") == v1_signature("POST", params, "testsecret")


# --- verify_request on the same vectors, without a server -------------------------------------

CREDENTIALS = {
    "testid": Credential("testid", "testsecret"),
    "STS.testid": Credential("STS.testid", "testsecret", STS_TOKEN),
}
NOW = parse_utc_stamp(BIND_DATE) or 0.0
ACTIONS = ("BindAxnExtension",)


def _v3_headers(signature: str, access_key_id: str = "testid", **extra: str) -> dict[str, str]:
    headers = {**BIND_HEADERS, **extra}
    names = ";".join(sorted(headers))
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={names},Signature={signature}"
    )
    return headers


def test_verify_request_accepts_v3_vector() -> None:
    headers = _v3_headers("3718dc49fc3b7f21e4dddd8891d6b93d8bfc48364a862bf9f215c8c588fcab97")
    verified = verify_request("POST", "/", BIND_PARAMS, {}, headers, b"", CREDENTIALS, NOW, ACTIONS)
    assert (verified.signature_version, verified.action, verified.nonce) == (
        "V3",
        "BindAxnExtension",
        BIND_NONCE,
    )


def test_verify_request_accepts_v3_sts_vector() -> None:
    headers = _v3_headers(
        "4f5fdadade92bf58209e31d0b0cfbf3dcafb624c3035dff202dae23bbdfc609a",
        "STS.testid",
        **{"x-acs-security-token": STS_TOKEN},
    )
    verified = verify_request("POST", "/", BIND_PARAMS, {}, headers, b"", CREDENTIALS, NOW, ACTIONS)
    assert verified.access_key_id == "STS.testid"


def test_verify_request_rejects_changed_parameter_in_v3_vector() -> None:
    headers = _v3_headers("3718dc49fc3b7f21e4dddd8891d6b93d8bfc48364a862bf9f215c8c588fcab97")
    changed = {**BIND_PARAMS, "PhoneNoA": "13900000009"}
    with pytest.raises(GatewayError) as info:
        verify_request("POST", "/", changed, {}, headers, b"", CREDENTIALS, NOW, ACTIONS)
    assert (info.value.status, info.value.code) == (400, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("method", "signature"),
    [("POST", "b+5C9ibx46EgSnyYjaelVVL1HvI="), ("GET", "hl24ocsY5iCUkfuzrPlHGn47FSk=")],
)
def test_verify_request_accepts_v1_vectors(method: str, signature: str) -> None:
    params = {**BIND_PARAMS, **V1_COMMON, "Signature": signature}
    verified = verify_request(method, "/", params, {}, {}, b"", CREDENTIALS, NOW, ACTIONS)
    assert verified.signature_version == "V1"


def test_verify_request_v1_mismatch_reports_string_to_sign() -> None:
    params = {**BIND_PARAMS, **V1_COMMON, "Signature": "hl24ocsY5iCUkfuzrPlHGn47FSk="}
    with pytest.raises(GatewayError) as info:
        verify_request("POST", "/", params, {}, {}, b"", CREDENTIALS, NOW, ACTIONS)
    assert info.value.code == "SignatureDoesNotMatch"
    assert info.value.message.endswith(
        "server string to sign is:" + v1_string_to_sign("POST", params)
    )
