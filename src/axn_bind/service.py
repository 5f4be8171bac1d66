"""The core: validate a bind payload, call Dyplsapi and produce an :class:`Outcome`.

Every trigger ends here and every delivery (HTTP response, direct answer, batch report) starts
from the Outcome, so all paths answer a given failure the same way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .config import Settings, credentials_from
from .dypls import Deadline, DyplsClient
from .errors import AxnError, Kind, RequestValidationError, UpstreamError
from .log import log, mask_phone
from .mapping import FieldMap
from .models import build_request

BOUND, REJECTED, FAILED = "bound", "rejected", "failed"


@dataclass
class Outcome:
    """What happened to one bind request, in the Dyplsapi response shape."""

    status: int
    body: dict[str, Any]
    error: AxnError | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def result(self) -> str:
        """``bound``, ``rejected`` (permanent: do not redeliver) or ``failed`` (transient)."""
        if self.error is None:
            return BOUND
        return FAILED if self.error.kind.transient else REJECTED

    @property
    def transient(self) -> bool:
        return self.result == FAILED

    @classmethod
    def from_error(cls, error: AxnError, request_id: str) -> Outcome:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        return cls(error.status, error.body(request_id), error, headers)


class BindService:
    def __init__(self, settings: Settings, client: DyplsClient | None = None) -> None:
        self.settings = settings
        self.client = client or DyplsClient(settings)

    def bind(
        self,
        payload: Any,
        *,
        context: Any,
        deadline: Deadline,
        request_id: str,
        field_map: FieldMap | None = None,
        message_id: str | None = None,
    ) -> Outcome:
        """Bind one payload; never raises for anything the payload or Dyplsapi can cause."""
        started = time.monotonic()
        request = None
        try:
            try:
                request = build_request(
                    field_map.apply(payload) if field_map else payload,
                    default_pool=self.settings.pool_key,
                )
            except RequestValidationError as error:
                raise (field_map.explain(error) if field_map else error) from None
            creds = credentials_from(context=context)
            result = self.client.call("BindAxnExtension", request.to_params(), creds, deadline)
            outcome = self._bound(result.body, request_id)
        except AxnError as error:
            outcome = Outcome.from_error(error, request_id)
        log(
            "bind",
            logging.INFO if outcome.result != FAILED else logging.WARNING,
            result=outcome.result,
            message_id=message_id,
            code=outcome.body.get("Code"),
            status=outcome.status,
            pool=request.PoolKey if request else None,
            phone_a=mask_phone(request.PhoneNoA) if request else None,
            out_order_id=request.OutOrderId if request else None,
            secret_no=mask_phone(outcome.body.get("SecretBindDTO", {}).get("SecretNo")),
            subs_id=outcome.body.get("SecretBindDTO", {}).get("SubsId"),
            upstream_request_id=outcome.body.get("RequestId"),
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )
        return outcome

    @staticmethod
    def _bound(body: dict[str, Any], request_id: str) -> Outcome:
        dto = body.get("SecretBindDTO")
        if not isinstance(dto, dict) or not dto.get("SecretNo") or not dto.get("SubsId"):
            error = UpstreamError(
                "Dyplsapi answered OK without a SecretBindDTO; the binding may exist. "
                "Check before binding again.",
                code="UnreadableResponse",
                status=502,
                kind=Kind.UNKNOWN,
                request_id=body.get("RequestId"),
            )
            return Outcome.from_error(error, request_id)
        return Outcome(
            200,
            {
                "Code": "OK",
                "Message": str(body.get("Message") or "OK"),
                "RequestId": body.get("RequestId") or request_id,
                "SecretBindDTO": {
                    "Extension": str(dto.get("Extension") or ""),
                    "SecretNo": str(dto["SecretNo"]),
                    "SubsId": str(dto["SubsId"]),
                },
            },
        )
