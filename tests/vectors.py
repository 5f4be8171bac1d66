"""The published signing test vectors, written out once (the figures of signing.md).

Where the figures come from:

* ``V3_DOC_*``: Alibaba Cloud's published V3 (ACS3-HMAC-SHA256) example, ECS RunInstances.
* ``V1_DOC_VECTORS``: Alibaba Cloud's published V1 (HMAC-SHA1 RPC) examples (ECS
  DescribeDedicatedHosts and DescribeRegions, the SMS SendSms example of the official SDKs).
* ``BIND_*`` and ``SORT_*``: the BindAxnExtension vectors in the project's reference
  (signing.md), V3 and V1, with and without an STS token.

Plain data only: the signer's tests (tests/unit/test_signing.py), the emulator's own verifier's tests
(tests/emulator/test_verify_vectors.py, which import nothing from src/) and the SDK-based
verifier's tests (tests/unit/test_signing_sdk.py) each assert these figures against their own code.
"""

from __future__ import annotations

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# RFC 3986 percent-encoding: raw value -> encoded.
PERCENT_ENCODED = {
    "a b": "a%20b",
    "*": "%2A",
    "~": "~",
    "/": "%2F",
    "北京": "%E5%8C%97%E4%BA%AC",
    "+&=": "%2B%26%3D",
    "-_.": "-_.",
    "~-_.": "~-_.",
    "2019-09-05 12:00:00": "2019-09-05%2012%3A00%3A00",
}

# --- Alibaba Cloud's V3 example (ECS RunInstances, POST, empty body) ----------------------------

V3_DOC_KEY_ID = "YourAccessKeyId"
V3_DOC_SECRET = "YourAccessKeySecret"
V3_DOC_HOST = "ecs.cn-shanghai.aliyuncs.com"
V3_DOC_ACTION = "RunInstances"
V3_DOC_VERSION = "2014-05-26"
V3_DOC_DATE = "2023-10-26T10:22:32Z"
V3_DOC_NONCE = "3156853299f313e23d1673dc12e1703d"
V3_DOC_PARAMS = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}
V3_DOC_HEADERS = {  # the signed headers, without authorization
    "host": V3_DOC_HOST,
    "x-acs-action": V3_DOC_ACTION,
    "x-acs-version": V3_DOC_VERSION,
    "x-acs-date": V3_DOC_DATE,
    "x-acs-signature-nonce": V3_DOC_NONCE,
    "x-acs-content-sha256": EMPTY_SHA256,
}
V3_DOC_CANONICAL_SHA256 = "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
V3_DOC_SIGNATURE = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
V3_DOC_AUTHORIZATION = (
    "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
    "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    f"Signature={V3_DOC_SIGNATURE}"
)

# --- Alibaba Cloud's V1 examples (GET): name -> (parameters, secret, signature) -----------------

V1_DOC_VECTORS = {
    "DescribeDedicatedHosts": (
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
    "DescribeRegions": (
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
    "SendSms": (
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
}

# --- BindAxnExtension vectors (signing.md) ------------------------------------------------------

BIND_KEY_ID = "testid"
BIND_SECRET = "testsecret"
BIND_STS_KEY_ID = "STS.testid"  # same secret, plus the token
BIND_STS_TOKEN = "CAIS+token/with=chars"
BIND_HOST = "dyplsapi.aliyuncs.com"
BIND_ACTION = "BindAxnExtension"
BIND_VERSION = "2017-05-25"
BIND_DATE = "2019-09-05T03:00:00Z"
BIND_NONCE = "c0ffee00-0000-4000-8000-000000000001"
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
BIND_CANONICAL_QUERY = (
    "ExpectCity=%E5%8C%97%E4%BA%AC&Expiration=2019-09-05%2012%3A00%3A00&Extension=130"
    "&IsRecordingEnabled=true&OutId=order%2A1~a%20b&PhoneNoA=13900000000"
    "&PhoneNoB=13800000000&PhoneNoX=17000000000&PoolKey=FC100000012345678"
)

# V3 (POST, parameters in the query, empty body)
BIND_V3_HEADERS = {  # the signed headers, without authorization (and, for STS, the token)
    "host": BIND_HOST,
    "x-acs-action": BIND_ACTION,
    "x-acs-version": BIND_VERSION,
    "x-acs-date": BIND_DATE,
    "x-acs-signature-nonce": BIND_NONCE,
    "x-acs-content-sha256": EMPTY_SHA256,
}
BIND_V3_CANONICAL_SHA256 = "5f67d1095bf6e49dad862c7e6b940d68356649e6f06a6bc58e91edae6c948c9f"
BIND_V3_SIGNATURE = "3718dc49fc3b7f21e4dddd8891d6b93d8bfc48364a862bf9f215c8c588fcab97"
BIND_V3_STS_SIGNATURE = "4f5fdadade92bf58209e31d0b0cfbf3dcafb624c3035dff202dae23bbdfc609a"

# V1: the system parameters added to BIND_PARAMS (STS: AccessKeyId and SecurityToken change)
BIND_V1_COMMON = {
    "AccessKeyId": BIND_KEY_ID,
    "Action": BIND_ACTION,
    "Version": BIND_VERSION,
    "Format": "JSON",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureVersion": "1.0",
    "SignatureNonce": BIND_NONCE,
    "Timestamp": BIND_DATE,
}
BIND_V1_POST_SIGNATURE = "b+5C9ibx46EgSnyYjaelVVL1HvI="
BIND_V1_GET_SIGNATURE = "hl24ocsY5iCUkfuzrPlHGn47FSk="
BIND_V1_STS_POST_SIGNATURE = "Scm7R4yszi9URdFZO8gZx/kQ4Ls="
BIND_V1_POST_STRING_TO_SIGN_START = (
    "POST&%2F&AccessKeyId%3Dtestid%26Action%3DBindAxnExtension%26ExpectCity%3D"
    "%25E5%258C%2597%25E4%25BA%25AC%26Expiration%3D2019-09-05%252012%253A00%253A00%26"
)

# V1 POST, case-sensitive sort and special characters: SORT_PARAMS plus BIND_V1_COMMON with
# SignatureNonce SORT_NONCE (byte order: ASRModelId, ASRStatus, AccessKeyId, Action, …).
SORT_PARAMS = {
    "PoolKey": "FC100000012345678",
    "PhoneNoA": "13900000000",
    "Expiration": "2019-09-05 12:00:00",
    "ASRStatus": "true",
    "ASRModelId": "m-1",
    "CallDisplayType": "1",
    "RingConfig": "AXNRing_A:100001",
    "OutOrderId": "订单#1/2+3=4&5",
}
SORT_NONCE = "11111111-2222-3333-4444-555555555555"
SORT_SIGNATURE = "PDhNIc08KU4M1K6jm9JmMnyvM0s="
