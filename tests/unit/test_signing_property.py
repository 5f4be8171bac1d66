"""The signer and the emulator's verifier (written separately from the published algorithm, it
imports nothing from src/) agree on arbitrary parameter sets, in V3 and V1, with and without STS.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from axn_bind.config import Credentials
from axn_bind.signing import sign_v1, sign_v3
from tools.dypls_emulator import verify

AWKWARD = " *~+&=/%#?:;,@!$'()[]{}\"\\\t北京上海订单é€😀-_."
names = st.one_of(
    st.sampled_from(
        ["PoolKey", "PhoneNoA", "Expiration", "ExpectCity", "OutId", "OutOrderId", "ASRStatus",
         "ASRModelId", "AccessKeyIdX", "aLower", "Zeta", "_under"]
    ),
    st.text(alphabet="ABCXYZabcxyz_0189", min_size=1, max_size=12),
)  # fmt: skip
values = st.text(
    alphabet=st.one_of(st.sampled_from(AWKWARD), st.characters(blacklist_categories=("Cs",))),
    max_size=40,
)
params_st = st.dictionaries(names, values, max_size=12)
creds_st = st.sampled_from(
    [
        Credentials("LTAIplain", "secret-one"),
        Credentials("STS.temp", "secret-two", "CAIS+token/with=chars and space"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(params=params_st, creds=creds_st)
def test_v3_signer_and_independent_verifier_agree(params, creds):
    req = sign_v3(
        method="POST",
        host="dyplsapi.aliyuncs.com",
        action="BindAxnExtension",
        params=params,
        credentials=creds,
        date="2026-11-30T03:00:00Z",
        nonce="n-1",
    )
    auth = verify.parse_authorization(req.headers["authorization"])
    signed_headers = {name: req.headers[name] for name in auth.signed_headers}
    expected = verify.v3_signature(
        "POST", "/", req.params, signed_headers, req.body, creds.access_key_secret
    )
    assert auth.signature == expected
    assert auth.access_key_id == creds.access_key_id
    assert ("x-acs-security-token" in auth.signed_headers) == bool(creds.security_token)


@settings(max_examples=300, deadline=None)
@given(params=params_st, creds=creds_st, method=st.sampled_from(["POST", "GET"]))
def test_v1_signer_and_independent_verifier_agree(params, creds, method):
    req = sign_v1(
        method=method,
        action="BindAxnExtension",
        params=params,
        credentials=creds,
        timestamp="2026-11-30T03:00:00Z",
        nonce="n-1",
    )
    assert req.params["Signature"] == verify.v1_signature(
        method, req.params, creds.access_key_secret
    )
    assert req.params.get("SecurityToken") == creds.security_token
    assert req.params["Format"] == "JSON"


@given(params=params_st)
def test_a_changed_value_breaks_the_signature(params):
    creds = Credentials("LTAIplain", "secret-one")
    req = sign_v1(
        method="POST", action="BindAxnExtension", params=params, credentials=creds,
        timestamp="2026-11-30T03:00:00Z", nonce="n-1",
    )  # fmt: skip
    tampered = {**req.params, "OutId": req.params.get("OutId", "") + "x"}
    assert req.params["Signature"] != verify.v1_signature("POST", tampered, creds.access_key_secret)
