"""Nothing personal or secret in what the function says or writes, with every logger at DEBUG.

Every test of the suite runs under the privacy scan of ``tests/privacy.py`` (HTTP, events,
idempotency, faults, publishing); the tests here check the scan itself and the cases where a
leak is most likely: a rejected signature under V1 with STS, and the DEBUG line it writes.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import post
from tests.privacy import PrivacyScan
from tools.dypls_emulator import (
    DEFAULT_STS_ACCESS_KEY_ID,
    DEFAULT_STS_ACCESS_KEY_SECRET,
    DEFAULT_STS_SECURITY_TOKEN,
)


def _line(scan: PrivacyScan, text: str, name: str = "urllib3.connectionpool") -> None:
    scan.emit(logging.LogRecord(name, logging.DEBUG, __file__, 1, text, None, None))


def test_the_scan_finds_a_number_or_a_secret_and_spares_hashes_and_the_privacy_number():
    scan = PrivacyScan()
    scan.secrets.add("sts-token-value")
    _line(scan, '"POST /?PhoneNoA=13912345678 HTTP/1.1" 200')
    _line(scan, "token sts-token-value", name="axn_bind")
    _line(scan, '{"record":"axn:idem:13912345678aaaa' + "0" * 48 + '"}', name="axn_bind")
    scan.note_answer({"body": '{"SecretBindDTO":{"SecretNo":"17000000001"}}', "headers": {}})
    scan.note_answer({"Code": "X", "Message": "A is 13800000000"})
    problems = scan.problems()
    assert len(problems) == 3, problems
    assert "13912345678" in problems[0] and "secret" in problems[1] and "13800000000" in problems[2]


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_a_rejected_signature_under_sts_says_what_to_fix_and_logs_only_a_masked_signed_text(
    env, version, caplog
):
    env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=DEFAULT_STS_ACCESS_KEY_ID,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=DEFAULT_STS_ACCESS_KEY_SECRET + "-wrong",
        ALIBABA_CLOUD_SECURITY_TOKEN=DEFAULT_STS_SECURITY_TOKEN,
        DYPLS_SIGNATURE_VERSION=version,
    )
    with caplog.at_level(logging.DEBUG):
        status, _, body = post(
            {"PhoneNoA": "13912345678", "PhoneNoB": "13812345678", "TtlSeconds": 600}
        )
    assert (status, body["Code"]) == (500, "SignatureDoesNotMatch")
    for setting in ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "DYPLS_SIGNATURE_VERSION"):
        assert setting in body["Message"]
    [debug] = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.levelno == logging.DEBUG and "signature_rejected" in r.getMessage()
    ]
    assert debug["signature_version"] == version
    text = debug["signed_text"]
    assert "139****5678" in text if version == "v1" else "x-acs-date" in text
    assert "<security token>" in text
    everything = "\n".join(r.getMessage() for r in caplog.records) + json.dumps(body)
    for leaked in ("13912345678", "13812345678", DEFAULT_STS_SECURITY_TOKEN, "emulator-sts-token"):
        assert leaked not in everything


def test_the_redelivery_message_fc_logs_is_scrubbed_capped_and_encodable():
    from axn_bind.errors import TransientFailureError

    message = str(TransientFailureError("order 13912345678\ud800 failed " + "x" * 5000))
    assert "13912345678" not in message and "139****5678" in message
    assert len(message) == TransientFailureError.MAX_MESSAGE
    message.encode("utf-8")  # a lone surrogate would make this raise


@pytest.mark.parametrize(
    "payload",
    [
        '{"PhoneNoA": "13900000001", "TtlSeconds": 600, "Phone\\ud800NoB": "1"}',
        '{"PhoneNoA": "\\udfff13900000001", "TtlSeconds": 600}',
        '{"PhoneNoA": "13900000001", "TtlSeconds": 600, "OutOrderId": "\\ud800"}',
    ],
)
def test_lone_surrogates_never_reach_an_answer(env, payload):
    from tests.conftest import call
    from tools.fc_local import FcContext, http_event

    answer = call(http_event("POST", payload, headers={"Content-Type": "application/json"}))
    answer["body"].encode("utf-8")  # raised UnicodeEncodeError before
    body = json.loads(answer["body"])
    assert body["Code"] in ("OK", "InvalidParameter")
    if body["Code"] != "OK":  # the problem is named, not lost
        assert any(w in body["Message"] for w in ("not valid Unicode", "OutOrderId", "PhoneNoA"))
    direct = call(payload.encode(), FcContext())
    json.dumps(direct, ensure_ascii=False).encode("utf-8")


def test_the_reprs_of_settings_credentials_and_signed_requests_hold_no_secret():
    """A repr can end up in a traceback or a debugger session: none shows a secret, a token,
    the webhook secret or the signed text (which holds the parameters)."""
    from axn_bind.config import Settings, credentials_from
    from axn_bind.signing import sign_v1, sign_v3

    env = {
        "DYPLS_ENDPOINT": "https://dyplsapi.aliyuncs.com",
        "AXN_WEBHOOK_SECRET": "whsec_c2VjcmV0LXZhbHVlLWZvci1yZXByLXRlc3Q=",
        "AXN_IDEMPOTENCY_URL": "rediss://default:redis-pass-123@r-x.redis.rds.aliyuncs.com:6380/0",
        "AXN_PUBLISH_TO": "https://hooks.example.com/orders?token=hook-token-456",
    }
    settings = Settings.from_env(env)
    creds = credentials_from(
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_STS_ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_STS_ACCESS_KEY_SECRET,
            "ALIBABA_CLOUD_SECURITY_TOKEN": DEFAULT_STS_SECURITY_TOKEN,
        }
    )
    params = {"PhoneNoA": "13912345678", "PoolKey": "FC100000000000001"}
    common = {
        "method": "POST",
        "action": "BindAxnExtension",
        "params": params,
        "credentials": creds,
    }
    v3 = sign_v3(host="h", date="2030-01-01T00:00:00Z", nonce="n1", form=True, **common)
    v1 = sign_v1(timestamp="2030-01-01T00:00:00Z", nonce="n2", **common)
    shown = " ".join(map(repr, (settings, creds, v3, v1)))
    assert "webhook_secret" not in shown and "c2VjcmV0" not in shown
    for secret in (DEFAULT_STS_ACCESS_KEY_SECRET, DEFAULT_STS_SECURITY_TOKEN, "13912345678"):
        assert secret not in shown
    assert "redis-pass-123" not in shown and "hook-token-456" not in shown
    assert "rediss://r-x.redis.rds.aliyuncs.com" in shown  # still says where
    # Held, only never shown: V3's canonical request has the token, V1's string to sign the number.
    assert DEFAULT_STS_SECURITY_TOKEN in v3.signed_text and "13912345678" in v1.signed_text
