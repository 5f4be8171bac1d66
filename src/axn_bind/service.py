"""The core: validate a bind payload, apply idempotency, call Dyplsapi, produce an :class:`Outcome`.

Every trigger ends here and every delivery (HTTP response, direct answer, batch report) starts
from the Outcome, so all paths answer a given failure the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from . import idempotency as idem
from .config import Settings, credentials_from
from .dypls import Deadline, DyplsClient
from .errors import (
    AxnError,
    Kind,
    RequestValidationError,
    UpstreamError,
)
from .log import log, mask_phone
from .mapping import FieldMap
from .models import BindRequest, build_request

BOUND, REJECTED, FAILED = "bound", "rejected", "failed"
MAX_KEY_LENGTH = 255
MAX_LEASE_SECONDS = 900  # a lease never needs to outlive the longest FC timeout we plan for
LEASE_SLACK_SECONDS = 30  # the lease outlives the invocation's deadline by this much


def dump_body(body: dict[str, Any]) -> str:
    """The one JSON text form of a body: what is answered, stored and replayed byte for byte."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Outcome:
    """What happened to one bind request, in the Dyplsapi response shape."""

    status: int
    body: dict[str, Any]
    result: str = BOUND  # bound | rejected (permanent: do not redeliver) | failed (transient)
    error: AxnError | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # exact body text of a replay
    replayed: bool = False

    @property
    def transient(self) -> bool:
        return self.result == FAILED

    def body_text(self) -> str:
        return self.text if self.text is not None else dump_body(self.body)

    @classmethod
    def from_error(cls, error: AxnError, request_id: str) -> Outcome:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        result = FAILED if error.kind.transient else REJECTED
        return cls(error.status, error.body(request_id), result, error, headers)

    @classmethod
    def replay(cls, record: idem.Record) -> Outcome:
        text = record.response or "{}"
        status = record.status or 200
        return cls(
            status,
            json.loads(text),
            BOUND if status == 200 else REJECTED,
            text=text,
            replayed=True,
        )


def fingerprint(request: BindRequest) -> str:
    """SHA-256 of the request's meaningful fields in canonical form.

    A relative ``TtlSeconds`` is fingerprinted as given, not as the absolute time it produced,
    so a retry of the same request a minute later matches.
    """
    params = request.to_params()
    if request.TtlSeconds is not None:
        params.pop("Expiration")
        params["TtlSeconds"] = str(request.TtlSeconds)
    canonical = json.dumps(params, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_key(function_name: str, pool_key: str, key: str) -> str:
    """The store key of an idempotency ``key`` ("header:…", "order:…" or "message:…"),
    namespaced per function and pool and hashed."""
    return idem.store_key(f"{function_name}/{pool_key}", key)


def _check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise RequestValidationError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            errors=[
                {
                    "Field": "Idempotency-Key",
                    "Message": f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                }
            ],
        )
    return key


class BindService:
    def __init__(
        self,
        settings: Settings,
        client: DyplsClient | None = None,
        store: idem.IdempotencyStore | None = None,
    ) -> None:
        self.settings = settings
        self.client = client or DyplsClient(settings)
        self.store = store or idem.open_store(settings.idempotency_url)

    def bind(
        self,
        payload: Any,
        *,
        context: Any,
        deadline: Deadline,
        request_id: str,
        field_map: FieldMap | None = None,
        message_id: str | None = None,
        idempotency_key: str | None = None,
        content_key: bool = False,
    ) -> Outcome:
        """Bind one payload; never raises for anything the payload, Dyplsapi or the store cause.

        The idempotency key is ``idempotency_key`` (the HTTP header) when given, else
        PoolKey + OutOrderId, else the event's ``message_id``, else — with ``content_key``, for
        records of a batch that may be redelivered — the request's own fingerprint; without any,
        no idempotency.
        """
        started = time.monotonic()
        request = None
        key = None
        try:
            try:
                request = build_request(
                    field_map.apply(payload) if field_map else payload,
                    default_pool=self.settings.pool_key,
                )
            except RequestValidationError as error:
                raise (field_map.explain(error) if field_map else error) from None
            fp = fingerprint(request)
            if idempotency_key is not None:
                key = "header:" + _check_key(idempotency_key)
            elif request.OutOrderId:
                key = "order:" + request.OutOrderId
            elif message_id:
                key = "message:" + message_id
            elif content_key:
                key = "content:" + fp
            creds = credentials_from(context=context)
            deadline.require_call_time()  # before the store is touched: nothing to undo
            if key is None:
                outcome = self._call(request, creds, deadline, request_id)
            else:
                store_key = record_key(_function_name(context), request.PoolKey, key)
                outcome = self._once(store_key, fp, request, creds, deadline, request_id)
        except AxnError as error:
            outcome = Outcome.from_error(error, request_id)
        log(
            "bind",
            logging.WARNING if outcome.transient else logging.INFO,
            result=outcome.result,
            message_id=message_id,
            idempotency=key.split(":", 1)[0] if key else "none",
            replayed=outcome.replayed or None,
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

    # -- exactly once per key ----------------------------------------------------------------

    def _once(
        self,
        key: str,
        fp: str,
        request: BindRequest,
        creds: Any,
        deadline: Deadline,
        request_id: str,
    ) -> Outcome:
        s = self.settings
        lease = min(deadline.remaining(), MAX_LEASE_SECONDS) + LEASE_SLACK_SECONDS
        begin = self.store.begin(
            key,
            fp,
            lease_seconds=lease,
            ttl_seconds=s.idempotency_ttl,
            take_over_unknown=s.unknown_outcome == "reexecute",
        )
        found = begin.outcome
        if not begin.started:
            record = begin.record
            assert record is not None
            if found is idem.Outcome.KEY_REUSED:
                raise AxnError(
                    "This idempotency key was already used for a different request. Use a new "
                    "key (or OutOrderId) for a different binding, or resend the original request.",
                    code="IdempotencyKeyReused",
                    status=409,
                    kind=Kind.REJECTED,
                )
            if found is idem.Outcome.COMPLETED:
                return Outcome.replay(record)
            if found is idem.Outcome.IN_PROGRESS:
                wait = max(1, min(60, math.ceil(record.lease_until - time.time())))
                raise AxnError(
                    "A request with this idempotency key is being processed; retry after it "
                    "finishes to get its answer.",
                    code="IdempotencyInProgress",
                    status=409,
                    kind=Kind.UNAVAILABLE,
                    retry_after=wait,
                )
            # UNKNOWN, or a lease whose owner died mid-call, and re-execution is not allowed.
            raise AxnError(
                "An earlier attempt with this idempotency key may have created a binding "
                f"(upstream RequestId {record.upstream_request_id or 'unknown'}); check it with "
                "QuerySubscriptionDetail, then clear the key (tools/idem.py) to bind again.",
                code="OutcomeUnknown",
                status=409,
                kind=Kind.UNKNOWN,
                request_id=record.upstream_request_id,
            )
        token = begin.token
        assert token is not None
        previous = begin.record
        if previous is not None:  # taken over: the earlier attempt may have left a binding
            log(
                "possible_orphan_binding",
                logging.WARNING,
                previous_state=previous.state.value,
                previous_upstream_request_id=previous.upstream_request_id,
                pool=request.PoolKey,
                out_order_id=request.OutOrderId,
            )
        outcome = self._call(request, creds, deadline, request_id)
        if previous is not None:
            outcome.body["PossibleOrphanRequestId"] = previous.upstream_request_id
        self._finish(key, token, outcome)
        return outcome

    def _finish(self, key: str, token: str, outcome: Outcome) -> None:
        """Record the outcome: kept and replayed, kept as UNKNOWN, or released."""
        ttl = self.settings.idempotency_ttl
        kind = outcome.error.kind if outcome.error else None
        try:
            if kind is None or kind is Kind.REJECTED:
                self.store.complete(
                    key,
                    token,
                    response=outcome.body_text(),
                    status=outcome.status,
                    ttl_seconds=ttl,
                    upstream_request_id=outcome.body.get("RequestId"),
                )
            elif kind is Kind.UNKNOWN:
                self.store.mark_unknown(
                    key,
                    token,
                    response=outcome.body_text(),
                    status=outcome.status,
                    ttl_seconds=ttl,
                    upstream_request_id=outcome.error.request_id if outcome.error else None,
                )
            else:  # throttled, unreachable, misconfigured: provably nothing was bound
                self.store.release(key, token)
        except AxnError as error:
            # The call's answer stands; the record expires with its lease and a retry then
            # meets it as an unknown outcome (see AXN_UNKNOWN_OUTCOME).
            log(
                "idempotency_record_not_saved",
                logging.ERROR,
                code=error.code,
                reason=error.message,
                result=outcome.result,
            )

    # -- the call ------------------------------------------------------------------------------

    def _call(
        self, request: BindRequest, creds: Any, deadline: Deadline, request_id: str
    ) -> Outcome:
        try:
            body = self.client.call("BindAxnExtension", request.to_params(), creds, deadline)
        except AxnError as error:
            return Outcome.from_error(error, request_id)
        return self._bound(body, request_id)

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


def _function_name(context: Any) -> str:
    name = getattr(getattr(context, "function", None), "name", None)
    return str(name) if name else "axn-bind"
