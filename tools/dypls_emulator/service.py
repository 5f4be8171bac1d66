"""Emulator state and request processing, independent of the HTTP transport."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from .business import ACTIONS
from .clock import Clock, format_utc_stamp
from .config import API_VERSION, Credential, Pool
from .errors import BusinessError, GatewayError
from .faults import Fault, FaultQueue, make_fault
from .store import BindingStore
from .verify import (
    MAX_CLOCK_SKEW_SECONDS,
    VerifiedRequest,
    parse_authorization,
    signature_version,
    verify_request,
)
from .wire import business_payload, gateway_payload, new_request_id, render

NONCE_TTL_SECONDS = MAX_CLOCK_SKEW_SECONDS + 60
_DEFAULT_BUSINESS_MESSAGES = {
    "isv.FLOW_LIMIT": "business flow limit",
    "isp.SYSTEM_ERROR": "system error",
}
_DEFAULT_GATEWAY_MESSAGES = {
    "Throttling.User": "Request was denied due to user flow control.",
    "Throttling.Api": "Request was denied due to api flow control.",
    "Throttling": "Request was denied due to flow control.",
    "InternalError": (
        "The request processing has failed due to some unknown error, exception or failure."
    ),
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "Forbidden.RAM": "User not authorized to operate on the specified resource, or this API "
    "doesn't support RAM.",
}


@dataclass
class ApiRequest:
    """An API request as received; header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Outcome:
    """What to send back; `drop` closes the connection without an answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    drop: bool = False
    drip: float = 0.0  # seconds between the bytes of the answer (0: all at once)


def response_format(headers: dict[str, str], params: dict[str, str]) -> str:
    """JSON for V3; for V1 the Format parameter, XML when absent."""
    if signature_version(headers) == "V3":
        return "JSON"
    return "JSON" if params.get("Format", "XML").upper() == "JSON" else "XML"


def _claimed_access_key(headers: dict[str, str], params: dict[str, str]) -> str | None:
    if signature_version(headers) == "V1":
        return params.get("AccessKeyId")
    try:
        return parse_authorization(headers["authorization"]).access_key_id
    except GatewayError:
        return None


class EmulatorService:
    """Credentials, pools, bindings, faults, nonces and the request log behind one lock."""

    def __init__(
        self,
        credentials: Iterable[Credential],
        pools: Iterable[Pool],
        max_extensions_per_number: int | None = None,
        clock_offset_seconds: float = 0.0,
    ) -> None:
        self.lock = threading.RLock()
        self.in_flight = 0  # API requests being processed (a delay fault holds one for a while)
        self.credentials = {c.access_key_id: c for c in credentials}
        self._initial_pools = [copy.deepcopy(p) for p in pools]
        if max_extensions_per_number is not None:
            for pool in self._initial_pools:
                pool.max_extensions_per_number = max_extensions_per_number
        self._initial_offset = float(clock_offset_seconds)
        self.clock = Clock(self._initial_offset)
        self.store = BindingStore(copy.deepcopy(self._initial_pools))
        self.fault_queue = FaultQueue()
        self._nonces: dict[tuple[str, str], float] = {}
        self._log: list[dict[str, object]] = []

    # --- control -------------------------------------------------------------------------

    def add_fault(self, kind: str, count: int = 1, **options: object) -> dict[str, object]:
        """Queue a fault (see `faults`); raises ValueError when invalid."""
        fault = make_fault(kind, count, **options)  # type: ignore[arg-type]
        with self.lock:
            self.fault_queue.add(fault)
        return fault.to_dict()

    def clear_faults(self) -> None:
        """Drop all queued faults."""
        with self.lock:
            self.fault_queue.clear()

    def faults(self) -> list[dict[str, object]]:
        """Queued faults."""
        with self.lock:
            return self.fault_queue.pending()

    def bindings(self) -> list[dict[str, object]]:
        """Every binding ever made since the last reset, with its status."""
        with self.lock:
            now = self.clock.now()
            return [b.to_admin(now) for b in self.store.bindings.values()]

    def requests(self) -> list[dict[str, object]]:
        """The request log since the last reset."""
        with self.lock:
            return copy.deepcopy(self._log)

    def reset(self) -> None:
        """Back to the initial state: no bindings, requests, faults or nonces; initial clock."""
        with self.lock:
            self.store = BindingStore(copy.deepcopy(self._initial_pools))
            self.fault_queue.clear()
            self._nonces.clear()
            self._log.clear()
            self.clock.offset_seconds = self._initial_offset

    def set_clock_offset(self, seconds: float) -> float:
        """Shift the emulator clock from wall-clock time; returns the new emulator time."""
        with self.lock:
            self.clock.offset_seconds = float(seconds)
            return self.clock.now()

    def set_max_extensions(self, count: int) -> None:
        """Set every pool's per-number extension cap."""
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 900:
            raise ValueError("max_extensions_per_number must be an integer in 1..900")
        with self.lock:
            for pool in self.store.pools.values():
                pool.max_extensions_per_number = count

    def info(self) -> dict[str, object]:
        """Version, AccessKeyIds, pools and clock (no secrets)."""
        with self.lock:
            return {
                "api_version": API_VERSION,
                "access_key_ids": list(self.credentials),
                "pools": [
                    {
                        "key": p.key,
                        "strict": p.strict,
                        "max_extensions_per_number": p.max_extensions_per_number,
                        "numbers": [{"number": x.number, "city": x.city} for x in p.numbers],
                    }
                    for p in self.store.pools.values()
                ],
                "clock_offset_seconds": self.clock.offset_seconds,
                "now": format_utc_stamp(self.clock.now()),
                "in_flight": self.in_flight,
            }

    # --- API requests --------------------------------------------------------------------

    def handle(self, req: ApiRequest) -> Outcome:
        """Process one API request; may sleep when a delay fault applies."""
        with self.lock:
            self.in_flight += 1
        try:
            return self._handle(req)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _handle(self, req: ApiRequest) -> Outcome:
        rid = new_request_id()
        params = {**req.query, **req.form}
        fmt = response_format(req.headers, params)
        claimed_action = req.headers.get("x-acs-action") or params.get("Action", "")
        entry: dict[str, object] = {
            "method": req.method,
            "path": req.path,
            "action": claimed_action,
            "signature_version": signature_version(req.headers),
            "access_key_id": _claimed_access_key(req.headers, params),
            "format": fmt,
            "verified": False,
            "binding_created": False,
            "subs_id": None,
            "fault": None,
            "request_id": rid,
        }
        with self.lock:
            fault = self.fault_queue.take(claimed_action, "gateway")
        if fault is not None:
            entry["fault"] = fault.kind
            early = self._apply_gateway_fault(fault, rid, fmt)
            if early is not None:
                return self._finish(entry, early)
        try:
            with self.lock:
                verified = verify_request(
                    req.method,
                    req.path,
                    req.query,
                    req.form,
                    req.headers,
                    req.body,
                    self.credentials,
                    self.clock.now(),
                    ACTIONS,
                )
                self._remember_nonce(verified)
                fault = self.fault_queue.take(verified.action, "auth")
        except GatewayError as err:
            return self._finish(entry, _gateway_outcome(err, rid, fmt))
        entry["verified"] = True
        if fault is not None:
            entry["fault"] = fault.kind
            outcome = self._apply_fault(fault, verified.action, params, rid, fmt, entry)
        else:
            outcome = self._dispatch(verified.action, params, rid, fmt, entry)
        return self._finish(entry, outcome)

    def _remember_nonce(self, verified: VerifiedRequest) -> None:
        now = self.clock.now()
        while self._nonces:
            oldest = next(iter(self._nonces))
            if self._nonces[oldest] >= now - NONCE_TTL_SECONDS:
                break
            del self._nonces[oldest]
        key = (verified.access_key_id, verified.nonce)
        if key in self._nonces:
            raise GatewayError(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        self._nonces[key] = now

    def _dispatch(
        self, action: str, params: dict[str, str], rid: str, fmt: str, entry: dict[str, object]
    ) -> Outcome:
        with self.lock:
            try:
                extra = ACTIONS[action](params, self.store, self.clock.now())
            except GatewayError as err:
                return _gateway_outcome(err, rid, fmt)
            except BusinessError as err:
                payload = business_payload(rid, err.code, err.message)
            else:
                payload = business_payload(rid, "OK", "OK", extra)
                dto = extra.get("SecretBindDTO")
                if isinstance(dto, dict):
                    entry["binding_created"] = True
                    entry["subs_id"] = dto["SubsId"]
        return _business_outcome(payload, action, rid, fmt)

    def _apply_gateway_fault(self, fault: Fault, rid: str, fmt: str) -> Outcome | None:
        if fault.kind == "delay":
            time.sleep(float(fault.options["seconds"]))  # type: ignore[arg-type]
            return None
        if fault.kind == "drop_before":
            return Outcome(drop=True)
        return _error_fault_outcome(fault, rid, fmt)

    def _apply_fault(
        self,
        fault: Fault,
        action: str,
        params: dict[str, str],
        rid: str,
        fmt: str,
        entry: dict[str, object],
    ) -> Outcome:
        opts = fault.options
        if fault.kind == "delay":
            time.sleep(float(opts["seconds"]))  # type: ignore[arg-type]
            return self._dispatch(action, params, rid, fmt, entry)
        if fault.kind == "drop_before":
            return Outcome(drop=True)
        if fault.kind == "bind_then_drop" or opts.get("bind"):
            self._dispatch(action, params, rid, fmt, entry)
        if fault.kind == "bind_then_drop":
            return Outcome(drop=True)
        if fault.kind == "raw":
            body = str(opts.get("body", "")).encode()
            status = int(opts.get("status", 200))  # type: ignore[call-overload]
            return Outcome(status, body, {"Content-Type": "application/json;charset=utf-8"})
        if fault.kind == "drip":
            answer = self._dispatch(action, params, rid, fmt, entry)
            answer.drip = float(opts.get("interval", 0.2))  # type: ignore[arg-type]
            return answer
        if fault.kind in ("flow_limit", "business", "isp_error"):
            default_code = {"flow_limit": "isv.FLOW_LIMIT", "isp_error": "isp.SYSTEM_ERROR"}
            code = str(opts.get("code", default_code.get(fault.kind, "")))
            message = str(opts.get("message", _DEFAULT_BUSINESS_MESSAGES.get(code, code)))
            return _business_outcome(business_payload(rid, code, message), action, rid, fmt)
        return _error_fault_outcome(fault, rid, fmt)

    def _finish(self, entry: dict[str, object], outcome: Outcome) -> Outcome:
        entry["http_status"] = None if outcome.drop else outcome.status
        entry["code"] = outcome.code
        entry["dropped"] = outcome.drop
        with self.lock:
            entry["seq"] = len(self._log) + 1
            entry["time"] = format_utc_stamp(self.clock.now())
            self._log.append(entry)
        return outcome


def _error_fault_outcome(fault: Fault, rid: str, fmt: str) -> Outcome:
    opts = fault.options
    if fault.kind == "throttle":
        status = int(opts.get("status", 400))  # type: ignore[call-overload]
        code = str(opts.get("code", "Throttling.User"))
    else:
        status = int(opts.get("status", 500))  # type: ignore[call-overload]
        code = str(opts.get("code", "ServiceUnavailable" if status == 503 else "InternalError"))
    message = str(opts.get("message", _DEFAULT_GATEWAY_MESSAGES.get(code, code)))
    outcome = _gateway_outcome(GatewayError(status, code, message), rid, fmt)
    if "retry_after" in opts:
        retry_ms = round(float(opts["retry_after"]) * 1000)  # type: ignore[arg-type]
        outcome.headers["x-acs-retry-after"] = str(retry_ms)
    return outcome


def _gateway_outcome(err: GatewayError, rid: str, fmt: str) -> Outcome:
    body, content_type = render(gateway_payload(rid, err.code, err.message), "Error", fmt)
    headers = {"Content-Type": content_type, "x-acs-request-id": rid}
    return Outcome(err.status, body, headers, err.code)


def _business_outcome(payload: dict[str, object], action: str, rid: str, fmt: str) -> Outcome:
    body, content_type = render(payload, f"{action}Response", fmt)
    headers = {"Content-Type": content_type, "x-acs-request-id": rid}
    return Outcome(200, body, headers, str(payload["Code"]))
