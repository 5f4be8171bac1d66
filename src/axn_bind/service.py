"""The core: validate a bind payload, apply idempotency, call Dyplsapi, produce an Outcome.

Every trigger ends here and every answer shape (HTTP response, direct answer, batch report,
:mod:`axn_bind.outcome`) starts from the Outcome, so all paths answer a failure the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import traceback
from collections.abc import Callable
from typing import Any

from . import idempotency as idem
from .budget import Budget
from .config import Credentials, Settings, credentials_from, fc_location
from .dypls import DyplsClient
from .errors import AxnError, ConfigurationError, RequestValidationError, UnexpectedError
from .idempotency import keys
from .log import log, mask_phone
from .mapping import FieldMap
from .models import BindRequest, build_request
from .outcome import Outcome


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


_QUERY = re.compile(r"(\w+://[^\s?#]*)[?#][^\s'\"]*")


def log_defect(exc: BaseException, where: str) -> None:
    """Log a defect with its type, a capped (scrubbed) message and the traceback. A URL's query
    is cut from the message: a signed request's query holds the parameters, the signature and,
    with V1 and STS, the security token."""
    log(
        "unexpected_failure",
        logging.ERROR,
        where=where,
        error_type=type(exc).__name__,
        error=_QUERY.sub(r"\1?…", str(exc))[:500],
        traceback="".join(traceback.format_tb(exc.__traceback__))[-4000:],
    )


class BindService:
    """validate → idempotency → call → Outcome, for one bind request at a time."""

    def __init__(
        self,
        settings: Settings,
        client: DyplsClient | None = None,
        store: idem.IdempotencyStore | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # `is None`, not `or`: an empty MemoryStore has len() 0 and is falsy.
        self.client = client if client is not None else DyplsClient(settings)
        self.store = store if store is not None else idem.open_store(settings.idempotency_url)
        self.clock = clock
        self.wall_clock = wall_clock
        self._store_checked = False
        self.announcer = None
        if settings.publish_to:  # imported only when outcomes are announced somewhere
            from .publish.outbox import Announcer

            self.announcer = Announcer(settings, self.store)

    def check_store(self) -> None:
        """Once per instance, before the first key is taken: a store that may evict or forget
        records is refused (AXN_STORE_DURABILITY=enforce) or logged (warn). An unreachable store
        raises StoreUnavailableError and is checked again next time."""
        if self._store_checked:
            return
        problems = self.store.durability_problems()
        self._store_checked = True
        if not problems:
            return
        if self.settings.enforce_durability:
            self._store_checked = False  # fixed on the server without a restart: seen next time
            raise ConfigurationError(
                "The idempotency store (AXN_IDEMPOTENCY_URL) may lose records, and a lost "
                "record lets its order be bound again: "
                + " ".join(problems)
                + " Or set AXN_STORE_DURABILITY=warn to accept the risk.",
                code="StoreNotDurable",
            )
        log("idempotency_store_not_durable", logging.WARNING, problems=problems)

    def budget(self, context: Any) -> Budget:
        """The invocation's time budget (see :mod:`axn_bind.budget`)."""
        s = self.settings
        return Budget.for_invocation(
            context,
            margin=s.deadline_margin,
            call_seconds=s.connect_timeout + s.read_timeout,
            record_seconds=self.store.write_seconds,
            clock=self.clock,
        )

    def bind(
        self,
        payload: Any,
        *,
        context: Any,
        budget: Budget,
        request_id: str,
        field_map: FieldMap | None = None,
        message_id: str | None = None,
        idempotency_key: str | None = None,
        content_key: bool = False,
        announce_failures: bool = True,
        trigger: str = "direct",
    ) -> Outcome:
        """Bind one payload. Never raises an Exception: every failure, defects included, is an
        Outcome (a defect's record is kept as unknown by the idempotency guard).

        The idempotency key is chosen by :func:`axn_bind.idempotency.keys.derive`.
        """
        started = self.clock()
        request = None
        key = None
        record = None  # where the key's record lives (axn:idem:…), as tools.idem --record takes it
        try:
            request = self._request(payload, field_map)
            fp = fingerprint(request)
            if idempotency_key is not None:
                problem = keys.header_key_problem(idempotency_key)
                if problem:
                    raise RequestValidationError.from_fields(
                        [{"Field": "Idempotency-Key", "Message": problem}]
                    )
            key = keys.derive(
                header=idempotency_key,
                order_id=request.OutOrderId,
                message_id=message_id,
                fingerprint=fp,
                content_key=content_key,
            )
            if key is not None:
                record = keys.record_key(function_name(context), request.PoolKey, key)
            creds = credentials_from(context=context)
            budget.require_call()  # before the store is touched: nothing to undo
            event_of = None
            if self.announcer is not None and record is not None:
                event_of = self._events(request, context, record, announce_failures)
            outcome = self._once(request, fp, key, record, creds, budget, request_id, event_of)
        except AxnError as error:
            outcome = Outcome.from_error(error, request_id)
        except Exception as exc:  # a defect: answered, logged, never raised to the platform
            log_defect(exc, "bind")
            error = UnexpectedError(
                f"Unexpected internal error ({type(exc).__name__}); quote RequestId when "
                "reporting it."
            )
            outcome = Outcome.from_error(error, request_id)
        if self.announcer is not None and outcome.event is None and outcome.record is None:
            outcome = self._announce_unrecorded(
                outcome, payload, request, context, message_id, announce_failures
            )
        dto = outcome.body.get("SecretBindDTO") or {}
        log(
            "bind",
            logging.WARNING if outcome.transient else logging.INFO,
            result=outcome.result,
            trigger=trigger,
            message_id=message_id,
            idempotency=key.kind if key else "none",
            record=record,
            replayed=outcome.replayed or None,
            code=outcome.code,
            status=outcome.status,
            pool=request.PoolKey if request else None,
            phone_a=mask_phone(request.PhoneNoA) if request else None,
            out_order_id=request.OutOrderId if request else None,
            secret_no=mask_phone(dto.get("SecretNo")),
            subs_id=dto.get("SubsId"),
            upstream_request_id=outcome.upstream_request_id,
            attempts=outcome.attempts,
            upstream_ms=outcome.upstream_ms,
            elapsed_ms=round((self.clock() - started) * 1000),
        )
        return outcome

    def _request(self, payload: Any, field_map: FieldMap | None) -> BindRequest:
        try:
            return build_request(
                field_map.apply(payload) if field_map else payload,
                default_pool=self.settings.pool_key,
            )
        except RequestValidationError as error:
            raise (field_map.explain(error) if field_map else error) from None

    def _once(
        self,
        request: BindRequest,
        fp: str,
        key: keys.IdempotencyKey | None,
        record: str | None,
        creds: Credentials,
        budget: Budget,
        request_id: str,
        event_of: Callable[[Outcome], str | None] | None = None,
    ) -> Outcome:
        def call() -> Outcome:
            return self._call(request, creds, budget, request_id)

        if key is None or record is None:
            return call()  # no record: bind() announces it like any other unrecorded outcome
        self.check_store()
        return idem.run_once(
            self.store,
            record,
            fp,
            call,
            cause=key.cause,
            reused=key.reused,
            lease_seconds=budget.lease_seconds(),
            ttl_seconds=self.settings.idempotency_ttl,
            take_over_unknown=self.settings.unknown_outcome == "reexecute",
            call_seconds=budget.call_seconds,
            wall_clock=self.wall_clock,
            event_of=event_of,
            # owed from the call on, until every target has it (only with an announcer)
            owe=(lambda: self.store.outbox_add(record)) if event_of is not None else None,
        )

    # -- announcements (only when AXN_PUBLISH_TO is set) ----------------------------------------

    def _source(self, context: Any) -> str:
        from .publish.event import source_of

        region, account = fc_location()
        region = getattr(context, "region", None) or region
        account = getattr(context, "account_id", None) or account
        return source_of(function_name(context), str(region), account)

    def _events(
        self, request: BindRequest, context: Any, identity: str, failures: bool
    ) -> Callable[[Outcome], str | None]:
        """What announces an outcome of ``request``: created for a binding, failed for a
        permanent failure (when ``failures``), nothing otherwise."""
        from .publish import event as ev

        def event_of(outcome: Outcome) -> str | None:
            params = request.to_params()
            if outcome.result == "bound":
                return ev.created(
                    source=self._source(context),
                    when=self.wall_clock(),
                    pool_key=request.PoolKey,
                    binding=outcome.body.get("SecretBindDTO") or {},
                    request=params,
                    upstream_request_id=outcome.upstream_request_id,
                ).text
            if outcome.result == "rejected" and failures:
                return ev.failed(
                    source=self._source(context),
                    when=self.wall_clock(),
                    identity=identity,
                    code=str(outcome.code),
                    message=str(outcome.body.get("Message") or ""),
                    request=params,
                    upstream_request_id=outcome.upstream_request_id,
                ).text
            return None

        return event_of

    def _announce_unrecorded(
        self,
        outcome: Outcome,
        payload: Any,
        request: BindRequest | None,
        context: Any,
        message_id: str | None,
        failures: bool,
    ) -> Outcome:
        """The event of an outcome that has no record: a key-less call, or a request refused
        before its key was known (its identity is then the message, or the payload itself)."""
        if request is not None:
            identity = fingerprint(request)
            return outcome._replace(
                event=self._events(request, context, identity, failures)(outcome)
            )
        if outcome.result != "rejected" or not failures:
            return outcome
        from .publish import event as ev

        raw = payload if isinstance(payload, dict) else {}
        known = {
            k: str(raw[k])
            for k in ("OutOrderId", "OutId", "PoolKey", "PhoneNoA")
            if isinstance(raw.get(k), (str, int)) and not isinstance(raw.get(k), bool)
        }
        text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
        identity = (
            message_id
            or "content:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        )
        event = ev.failed(
            source=self._source(context),
            when=self.wall_clock(),
            identity=identity,
            code=str(outcome.code),
            message=str(outcome.body.get("Message") or ""),
            request=known,
            upstream_request_id=outcome.upstream_request_id,
        )
        return outcome._replace(event=event.text)

    def _call(
        self, request: BindRequest, creds: Credentials, budget: Budget, request_id: str
    ) -> Outcome:
        try:
            verdict = self.client.call("BindAxnExtension", request.to_params(), creds, budget)
        except AxnError as error:  # too little time: nothing was sent
            return Outcome.from_error(error, request_id)
        outcome = Outcome.from_verdict(verdict, request_id)
        if outcome.kind is None:  # kept with the answer: a replay after it says it has expired
            return outcome.with_fields(Expiration=request.expiration_text())
        return outcome


def function_name(context: Any) -> str:
    name = getattr(getattr(context, "function", None), "name", None)
    return str(name) if name else "axn-bind"
