"""An FC 2.0 function (``fc2://<service>/<function>``), invoked asynchronously through the
``aliyun-fc2`` SDK with a de-duplication id.

The SDK (``fc2.Client(...).invoke_function(service, function, payload=…, headers=…)``) builds
and signs ``POST /2016-08-15/services/{service}[.{qualifier}]/functions/{function}/invocations``
with ``authorization: FC <AccessKeyId>:<Base64(HMAC-SHA256(secret, StringToSign))>``, where::

    StringToSign = METHOD "\\n" Content-MD5 "\\n" Content-Type "\\n" Date "\\n"
                   + each x-fc-* header, lower-cased and sorted, as "name:value\\n"
                   + the path

so ``x-fc-invocation-type: Async``, ``x-fc-stateful-async-invocation-id: axn-<event id>`` and,
with STS credentials, ``x-fc-security-token`` are all signed. The body is the event's JSON text.
Options, the task id, the answers and the retries are those of :mod:`.fc` (409, a task id FC
already has, is delivered).

The SDK is imported only when an ``fc2://`` target is opened (the python3.10 runtime ships it;
on python3.12 it must be added to the package, see the README; ``requirements-dev.txt`` pins it
for the tests). Two of its habits do not suit a publish target, so
its one transport method is replaced: the SDK's own sending retries up to five times with
backoffs of seconds and a 60 s timeout per try (far past the publish budget), and on any error
answer logs the request headers, its signature and security token among them. Here each attempt
is sent once, through this target's transport (:meth:`.http.HttpTarget.post`: the time this
target gives it covers the whole answer, which is read up to 64 KiB), and nothing is logged;
the records the SDK itself writes to the root logger (its string to sign holds the security
token) are dropped by a filter.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import cache
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from ..config import Credentials
from ..dypls.transport import Answered
from ..errors import ConfigurationError
from .fc import Answer, AsyncInvokeTarget, answer_of

INVOCATION_TYPE = "x-fc-invocation-type"
ASYNC_ID = "x-fc-stateful-async-invocation-id"


class _Answered(Exception):
    """An answer other than 2xx, carried out of the SDK's call."""

    def __init__(self, response: Answered) -> None:
        super().__init__(response.status)
        self.response = response


class _QuietSdk(logging.Filter):
    """Drops the records the SDK's modules log through the root logger."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self.folder)


@cache
def _sdk() -> tuple[Callable[..., Any], type[Exception]]:
    """The SDK's client, its transport replaced (see the module's docstring), and its error."""
    try:
        import fc2  # aliyun-fc2: imported only when an fc2:// target is opened
    except ImportError:
        raise ConfigurationError(
            "AXN_PUBLISH_TO: fc2:// targets need the aliyun-fc2 package, which the python3.10 "
            "runtime ships and which could not be imported here; on python3.12, add it to the "
            "code package (README, Publishing)."
        ) from None
    root = logging.getLogger()
    if not any(isinstance(f, _QuietSdk) for f in root.filters):
        root.addFilter(_QuietSdk(os.path.dirname(fc2.__file__) + os.sep))

    class Client(fc2.Client):
        def __init__(self, *, target: Fc2Target, limit: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._target = target
            self._limit = limit

        def _do_request(
            self,
            method: str,
            path: str,
            headers: dict[str, str],
            params: dict[str, str] | None = None,
            body: bytes | None = None,
        ) -> Any:
            # Only invoke_function is called, and it POSTs; Retry leaves through the SDK.
            url = f"{self.endpoint}{path}" + (f"?{urlencode(params)}" if params else "")
            limit = self._limit
            response = self._target.post(body or b"", headers, limit, connect=limit, url=url)
            if not 200 <= response.status < 300:
                raise _Answered(response)
            return SimpleNamespace(headers=response.headers, content=response.body)

    return Client, fc2.FcError


class Fc2Target(AsyncInvokeTarget):
    """``fc2://<service>/<function>[?qualifier=…][&endpoint=…]``: an FC 2.0 function."""

    scheme = "fc2"
    count = 2
    usage = (
        "AXN_PUBLISH_TO: an FC 2.0 function target is fc2://<service>/<function> (options: "
        "?qualifier=<version or alias>, ?endpoint=)"
    )

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.service, self.function = self.names
        self.client_class, self.sdk_error = _sdk()

    def _invoke(self, body: bytes, task: str, creds: Credentials, limit: float) -> Answer:
        client = self.client_class(
            endpoint=self.endpoint,
            accessKeyID=creds.access_key_id,
            accessKeySecret=creds.access_key_secret,
            securityToken=creds.security_token or "",
            target=self,
            limit=limit,
        )
        try:
            client.invoke_function(
                self.service,
                self.function,
                payload=body,
                headers={INVOCATION_TYPE: "Async", ASYNC_ID: task},
                qualifier=self.qualifier,
            )
        except _Answered as answered:
            response = answered.response
            return answer_of(
                response.status,
                response.headers,
                response.body[:8192],
                code_keys=("ErrorCode", "Code"),
            )
        except self.sdk_error as error:  # an error the invoked function reported (sync only)
            return answer_of(int(error.status_code), {}, b"", code_keys=())
        return Answer(202)
