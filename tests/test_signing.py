"""The signer against every published vector (signing.md, Alibaba Cloud docs and official SDKs)."""

from __future__ import annotations

import hashlib

import pytest

from axn_bind.config import Credentials
from axn_bind.signing import (
    canonical_query,
    percent_encode,
    sign_v1,
    sign_v3,
    v1_signature,
    v1_string_to_sign,
)

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
DATE = "2019-09-05T03:00:00Z"
NONCE = "c0ffee00-0000-4000-8000-000000000001"
PLAIN = Credentials("testid", "testsecret")
STS = Credentials("STS.testid", "testsecret", "CAIS+token/with=chars")


def _v3_signature(req) -> str:
    return req.headers["authorization"].rsplit("Signature=", 1)[1]


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~", "~"),
        ("/", "%2F"),
        ("北京", "%E5%8C%97%E4%BA%AC"),
        ("+&=", "%2B%26%3D"),
        ("-_.", "-_."),
    ],
)
def test_percent_encoding_follows_rfc3986(raw, encoded):
    assert percent_encode(raw) == encoded


def test_v3_official_vector():
    req = sign_v3(
        method="POST",
        host="ecs.cn-shanghai.aliyuncs.com",
        action="RunInstances",
        version="2014-05-26",
        params={
            "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            "RegionId": "cn-shanghai",
        },
        credentials=Credentials("YourAccessKeyId", "YourAccessKeySecret"),
        date="2023-10-26T10:22:32Z",
        nonce="3156853299f313e23d1673dc12e1703d",
    )
    assert _v3_signature(req) == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    assert (
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;"
        in (req.headers["authorization"])
    )
    assert req.headers["x-acs-content-sha256"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_v3_bind_vector_and_canonical_query():
    assert canonical_query(BIND_PARAMS) == (
        "ExpectCity=%E5%8C%97%E4%BA%AC&Expiration=2019-09-05%2012%3A00%3A00&Extension=130"
        "&IsRecordingEnabled=true&OutId=order%2A1~a%20b&PhoneNoA=13900000000"
        "&PhoneNoB=13800000000&PhoneNoX=17000000000&PoolKey=FC100000012345678"
    )
    req = sign_v3(
        method="POST",
        host="dyplsapi.aliyuncs.com",
        action="BindAxnExtension",
        params=BIND_PARAMS,
        credentials=PLAIN,
        date=DATE,
        nonce=NONCE,
    )
    assert _v3_signature(req) == "3718dc49fc3b7f21e4dddd8891d6b93d8bfc48364a862bf9f215c8c588fcab97"
    assert req.params == BIND_PARAMS  # V3 adds nothing to the query
    assert "x-acs-security-token" not in req.headers


def test_v3_bind_vector_hashed_canonical_request():
    # Rebuild the canonical request from the signed headers and compare its hash with the vector.
    req = sign_v3(
        method="POST",
        host="dyplsapi.aliyuncs.com",
        action="BindAxnExtension",
        params=BIND_PARAMS,
        credentials=PLAIN,
        date=DATE,
        nonce=NONCE,
    )
    names = sorted(k for k in req.headers if k != "authorization")
    canonical = "\n".join(
        [
            "POST",
            "/",
            canonical_query(BIND_PARAMS),
            "".join(f"{n}:{req.headers[n]}\n" for n in names),
            ";".join(names),
            req.headers["x-acs-content-sha256"],
        ]
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "5f67d1095bf6e49dad862c7e6b940d68356649e6f06a6bc58e91edae6c948c9f"
    )


def test_v3_bind_vector_with_sts_token():
    req = sign_v3(
        method="POST",
        host="dyplsapi.aliyuncs.com",
        action="BindAxnExtension",
        params=BIND_PARAMS,
        credentials=STS,
        date=DATE,
        nonce=NONCE,
    )
    assert req.headers["x-acs-security-token"] == "CAIS+token/with=chars"
    assert "x-acs-security-token" in req.headers["authorization"]
    assert _v3_signature(req) == "4f5fdadade92bf58209e31d0b0cfbf3dcafb624c3035dff202dae23bbdfc609a"


@pytest.mark.parametrize(
    ("params", "key_id", "secret", "expected"),
    [
        (
            {
                "Action": "DescribeDedicatedHosts",
                "Version": "2014-05-26",
                "Format": "JSON",
                "RegionId": "cn-beijing",
                "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": "edb2b34af0af9a6d14deaf7c1a5315eb",
                "SignatureVersion": "1.0",
                "Timestamp": "2023-03-13T08:34:30Z",
            },
            "testid",
            "testsecret",
            "9NaGiOspFP5UPcwX8Iwt2YJXXuk=",
        ),
        (
            {
                "Action": "DescribeRegions",
                "Version": "2014-05-26",
                "Format": "XML",
                "SignatureMethod": "HMAC-SHA1",
                "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
                "SignatureVersion": "1.0",
                "Timestamp": "2016-02-23T12:46:24Z",
            },
            "testid",
            "testsecret",
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY=",
        ),
        (
            {
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
            "testId",
            "testSecret",
            "zJDF+Lrzhj/ThnlvIToysFRq6t4=",
        ),
    ],
)
def test_v1_official_vectors(params, key_id, secret, expected):
    assert v1_signature("GET", {**params, "AccessKeyId": key_id}, secret) == expected


def _bind_v1(method: str, creds: Credentials, params=BIND_PARAMS, nonce=NONCE):
    return sign_v1(
        method=method,
        action="BindAxnExtension",
        params=params,
        credentials=creds,
        timestamp=DATE,
        nonce=nonce,
    )


def test_v1_bind_post_vector():
    req = _bind_v1("POST", PLAIN)
    assert req.params["Signature"] == "b+5C9ibx46EgSnyYjaelVVL1HvI="
    assert req.params["Format"] == "JSON"
    unsigned = {k: v for k, v in req.params.items() if k != "Signature"}
    assert v1_string_to_sign("POST", unsigned).startswith(
        "POST&%2F&AccessKeyId%3Dtestid%26Action%3DBindAxnExtension%26ExpectCity%3D"
        "%25E5%258C%2597%25E4%25BA%25AC%26Expiration%3D2019-09-05%252012%253A00%253A00%26"
    )


def test_v1_bind_get_vector():
    assert _bind_v1("GET", PLAIN).params["Signature"] == "hl24ocsY5iCUkfuzrPlHGn47FSk="


def test_v1_bind_post_with_sts_vector():
    req = _bind_v1("POST", STS)
    assert req.params["SecurityToken"] == "CAIS+token/with=chars"
    assert req.params["Signature"] == "Scm7R4yszi9URdFZO8gZx/kQ4Ls="


def test_v1_case_sensitive_sort_and_special_characters_vector():
    params = {
        "PoolKey": "FC100000012345678",
        "PhoneNoA": "13900000000",
        "Expiration": "2019-09-05 12:00:00",
        "ASRStatus": "true",
        "ASRModelId": "m-1",
        "CallDisplayType": "1",
        "RingConfig": "AXNRing_A:100001",
        "OutOrderId": "订单#1/2+3=4&5",
    }
    req = _bind_v1("POST", PLAIN, params, nonce="11111111-2222-3333-4444-555555555555")
    assert req.params["Signature"] == "PDhNIc08KU4M1K6jm9JmMnyvM0s="
    assert canonical_query(req.params).startswith("ASRModelId=m-1&ASRStatus=true&AccessKeyId=")
