"""Error codes the emulator answers with.

Gateway errors (HTTP 4xx/5xx; body RequestId, HostId, Code, Message, Recommend; `<Error>` XML for V1
requests whose Format is not JSON):

- 400 IncompleteSignature: Authorization not ACS3-HMAC-SHA256 or missing Credential/SignedHeaders/
  Signature; SignedHeaders lacks host, a present x-acs-* header, or content-type with a body;
  a signed header is absent; V1 SignatureMethod is not HMAC-SHA1 or SignatureVersion is not 1.0.
- 400 MissingParameter: a required V3 header, V1 common parameter or business parameter is absent
  or empty (required business parameters are checked here, as the POP gateway does).
- 400 InvalidVersion: Version / x-acs-version is not 2017-05-25.
- 404 InvalidApi.NotFound: unknown action, or a path other than "/".
- 400 InvalidTimeStamp.Format: Timestamp / x-acs-date is not yyyy-MM-ddTHH:mm:ssZ (UTC).
- 400 InvalidTimeStamp.Expired: more than 15 minutes away from the emulator clock.
- 404 InvalidAccessKeyId.NotFound: unknown AccessKeyId; 400 InvalidAccessKeyId.Inactive: disabled.
- 400 InvalidSecurityToken.Malformed: STS AccessKeyId without a security token.
- 400 InvalidSecurityToken.MismatchWithAccessKey: wrong token, or a token sent with a plain key.
- 400 SignatureDoesNotMatch: signature differs (message carries the server's string to sign), or
  x-acs-content-sha256 differs from the body's SHA-256.
- 400 SignatureNonceUsed: the AccessKeyId used this nonce within the last 15+ minutes.
- 400 UnsupportedHTTPMethod: a method other than GET or POST.
- Scripted faults: 400 Throttling.User (or any code), and any status/code given.

Business errors (HTTP 200, Code in the body): isv.POOLKEY_NOT_EXISTS, isv.MOBILE_NUMBER_ILLEGAL,
isv.EXPIRE_DATE_ILLEGAL, isv.INVALID_PARAMETERS, isv.ILLEGAL_ARGUMENT (also "subs not exist" and a
field missing for an UpdateSubscription OperateType), isv.FORBIDDEN_ACTION (also updateAxgGroup on
an AXN-extension pool), isv.NO_AVAILABLE_NUMBER, isv.BIND_CONFLICT, isv.NO_NOT_EXIST (QuerySubsId
for an X outside the pool); scripted: isv.FLOW_LIMIT, isp.SYSTEM_ERROR, any code.
"""

from __future__ import annotations


class GatewayError(Exception):
    """A request rejected by the API gateway layer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class BusinessError(Exception):
    """A request refused by the Dyplsapi service itself (HTTP 200)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def missing_parameter(name: str) -> GatewayError:
    """The gateway error for an absent required parameter or header."""
    return GatewayError(
        400,
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request '
        "is not supplied.",
    )


def incomplete_signature(detail: str) -> GatewayError:
    """The gateway error for a malformed signature."""
    return GatewayError(
        400,
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards. {detail}",
    )
