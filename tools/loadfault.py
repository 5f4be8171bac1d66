"""``make loadfault``: concurrent load on the local function while faults are injected in turn,
then a count of what must never happen: a key bound twice without a word, a binding whose client
never got it, an answer naming a binding that is not the key's, a binding the order flow is
neither told of nor warned about.

What runs, all on 127.0.0.1, each in its own process:

- the Dyplsapi emulator (``python -m tools.dypls_emulator``, 900 extensions per X number);
- a private redis-server in the run's directory (AOF, ``appendfsync always``, ``noeviction``), on
  a free port, crashed and started again on the same port and directory mid-load;
- ``--servers`` local instances (``python -m tools.localserver --emulator-url …
  --instance-concurrency N --function-timeout T``) sharing that Redis as ``AXN_IDEMPOTENCY_URL``,
  like several FC instances, some killed and started again mid-load; their stdout and stderr (the
  function's JSON log lines) go to files in the run's directory (``instance-N.log``, and
  ``instance-N.K.log`` for the instance started after the K-th kill) and are parsed afterwards;
- after the load, the sweep: ``python -m tools.invoke events/timer_sweep.json`` (the timer
  trigger's event through ``index.handler``), its log lines in ``sweep.log``;
- this process: ``--concurrency`` client threads and the fault schedule.

The instances run with ``AXN_UNKNOWN_OUTCOME=--unknown-outcome``, ``DYPLS_READ_TIMEOUT=
--read-timeout``, ``DYPLS_CONNECT_TIMEOUT=1``, ``DYPLS_MAX_ATTEMPTS=2``, backoff 50…500 ms,
``AXN_STORE_DURABILITY=enforce`` (the default) and ``AXN_PUBLISH_TO`` a file in the run's
directory; the local FC context gives each invocation ``--function-timeout`` seconds (30). A key
taken for a call is leased for that time (less ``AXN_DEADLINE_MARGIN_MS``) plus 30 s.

**Load.** Each logical order has one key, kept across all its tries: its ``OutOrderId``, which
every order sends (so that every binding in the emulator names its order); odd orders also send
an ``Idempotency-Key`` header, which the function does not key them by (an ``OutOrderId`` wins:
an order is bound once whatever key a retry carries). Each phase gets ``--orders`` / phases orders,
released in waves every 0.5 s across the phase; a client thread carries one order at a time, so
a phase whose retries keep the clients waiting starts fewer. An order counts in the phase it
started in. Each try goes to one of the instances at random, as a retry may reach another FC
instance.

**Phases** (``--phases``), ``--phase-seconds`` each, faults queued on the emulator in bursts every
0.5 s and cleared at the end of the phase: ``clean``; ``instance_kill`` (every call answered
after 0.8 ``DYPLS_READ_TIMEOUT``, the binding made at the end of the wait; ``--kills`` times,
evenly spread, once Dyplsapi calls are in flight, one instance after the other is killed with
SIGKILL and a new one started on its port with the same environment, as FC starts a new instance:
its calls in flight go on to make their bindings, and nobody records them; its clients see a
failed connection and retry, and a retry of a cut call is told 409 ``IdempotencyInProgress``
until the call's lease runs out); ``throttle`` (``Throttling.User`` with a
retry hint, and ``isv.FLOW_LIMIT``); ``isp`` (``isp.SYSTEM_ERROR``, half of them after binding);
``http_5xx`` (500 and 503, half after binding); ``delay`` (answers 0.5 s later than
``DYPLS_READ_TIMEOUT``; the binding is made after the wait); ``bind_then_drop``;
``redis_restart`` (SIGKILL a third of the way in, down for up to 1 s, started again on the same
port and directory; no emulator faults).

**How a client retries** (the README's status table; every retry carries the same key and body):
200 is done. 429 and 409 ``IdempotencyInProgress`` are retried after ``Retry-After`` (capped by
``--retry-cap``). 502 and 504 (an unknown outcome, or nothing sent for lack of time), 503 other
than ``isv.NO_AVAILABLE_NUMBER`` (Dyplsapi or the idempotency store unreachable) and a failed
connection to the instance are retried after a jittered exponential backoff from 0.1 s, capped by
``--retry-cap`` (``Retry-After`` when given). Anything else is final: 400, 404, 405, 413, 409
``IdempotencyKeyReused`` or ``OutcomeUnknown`` (under ``AXN_UNKNOWN_OUTCOME=refuse`` an unknown
outcome waits for an operator), 500 (configuration or a defect: an operator's job). A client
gives up after ``--max-tries`` tries.

**Figures** (``--json PATH`` writes them all):

- *requests*: HTTP requests the clients sent, every try counted, probes included;
- *bindings created*: the emulator's bindings (``GET /_emulator/bindings``) whose ``OutOrderId``
  is one of this run's orders, expired or not;
- *keys bound twice*: orders with more than one binding. Under ``AXN_UNKNOWN_OUTCOME=reexecute``
  (the default here) that is the documented re-execution after an unknown outcome, and each extra
  binding must be named: *double bindings not named* counts, per order, the bindings beyond the
  first that outnumber the function's ``possible_orphan_binding`` log lines for that order's
  idempotency record (matched to the order through the ``record`` and ``out_order_id`` of its
  ``bind`` log lines). **Must be 0.**
- *results lost*: orders that have at least one binding in the emulator, yet whose client never
  received a 200 whose ``SecretBindDTO.SubsId`` is one of that order's bindings: not during the
  load (every try, retried as above), and not from a *probe*, the same retry loop run once more
  with the same key and body after the load has stopped, the emulator is idle, its fault queue
  is empty, Redis is up and the lease of every call cut by a kill has run out (what "it can still
  get it by retrying" means; *records a kill left in progress* and *seconds waited for their
  leases* say how many and how long). Under
  ``AXN_UNKNOWN_OUTCOME=refuse`` an order whose last answer is 409 ``OutcomeUnknown`` is counted
  apart, as *held for an operator* (the README's refuse policy: its answer names the record and
  the earlier upstream RequestId), not as lost. **Must be 0.**
- *answers naming no binding of their key*: 200 answers whose SubsId is not a binding made for
  that order. **Must be 0.**
- *bindings neither announced nor named as held*: after the load and the probes the sweep runs
  as its timer would (the instances' environment, ``AXN_SWEEP_GRACE_SECONDS=0``); then each
  binding made for an order must be *announced* (an ``axn.binding.created`` event with its SubsId
  in the publish file), or *named as held* (its order's idempotency record, ``record_key`` of the
  ``OutOrderId``, is UNKNOWN, or IN_PROGRESS past its lease when the sweep began, is still in the
  outbox, and the sweep's ``Held`` counts at least every such record, or ``HeldRecords`` names
  it), or one of the extra bindings the order's ``possible_orphan_binding`` lines name. Per order,
  the bindings not announced may not outnumber those lines plus one for a held record. **Must be
  0.** Beside it: *instances killed*, the bindings announced, named as held and named as possible
  orphans (which add up to *bindings created* when the figure is 0), the held records the sweep
  counted (``Held``) and named (``HeldRecords``, at most 20), and the sweep's whole answer. Under
  ``reexecute`` the probe takes over a record a kill left, so its first binding is named as a
  possible orphan; under ``refuse`` it stays held, and the sweep must name it.
- *defects logged*: the function's ``unexpected_failure`` log lines (the sweep's included);
  *instances that died*: server processes that exited during the run, apart from those it
  killed. **Both must be 0.**
- answers by class (HTTP status and ``Code``; ``-`` and the exception for a failed connection),
  request latency (each try) and order latency (first try to last answer) as p50/p99, per phase
  and overall; the most requests the clients had in flight, and the most ``bind`` calls that
  overlapped inside one instance (from the log lines' times and ``elapsed_ms``).

The exit status is 1 when a must-be-0 figure is not 0, 2 when the run could not be set up.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tools.dypls_emulator import DEFAULT_POOL_KEY, EmulatorAdmin
from tools.fc_local import local_env  # also puts src/ on sys.path: axn_bind, imported where used
from tools.redis_server import RedisServer, RedisServerError

ROOT = Path(__file__).resolve().parents[1]
PHASES = (
    "clean",
    "instance_kill",
    "throttle",
    "isp",
    "http_5xx",
    "delay",
    "bind_then_drop",
    "redis_restart",
)
WAVE_SECONDS = 0.5  # orders are released in waves this far apart
TICK_SECONDS = 0.5  # faults are queued in bursts this far apart
CLIENT_TIMEOUT = 40.0  # longer than the local FC context's 30 s function timeout
BACKOFF_BASE = 0.1
OVERLAP_SLACK = 0.002  # seconds; see parse_logs
FUNCTION_NAME = "axn-bind"  # the name the local FC context gives the function
SWEEP_EVENT = ROOT / "events" / "timer_sweep.json"  # what the sweep's timer trigger delivers
MUST_BE_ZERO = (
    "double_bindings_not_named",
    "bindings_neither_announced_nor_named_as_held",
    "results_lost",
    "answers_naming_no_binding_of_their_key",
    "defects_logged",
    "tracebacks_in_instance_output",
    "instances_died",
)


class SetupError(RuntimeError):
    """A process of the run did not start."""


# -- one try, one order -----------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: the connection to the instance failed
    code: str
    latency: float  # seconds
    retry_after: float | None = None
    subs_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.status if self.status is not None else '-'} {self.code}"


@dataclass
class Order:
    index: int
    out_order_id: str
    header_key: str | None  # the Idempotency-Key header, for odd orders
    body: dict[str, Any]
    phase: str
    answers: list[Answer] = field(default_factory=list)
    probe: list[Answer] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    @property
    def key(self) -> str:
        """The order's key as the function takes it: its OutOrderId (the header is not)."""
        header = f" (Idempotency-Key {self.header_key} sent too)" if self.header_key else ""
        return f"OutOrderId {self.out_order_id}{header}"

    def all_answers(self) -> list[Answer]:
        return self.answers + self.probe

    def last(self) -> Answer | None:
        everything = self.all_answers()
        return everything[-1] if everything else None

    def got(self) -> set[str]:
        """SubsIds the client received in a 200."""
        return {a.subs_id for a in self.all_answers() if a.status == 200 and a.subs_id}


def retry_wait(answer: Answer, tries: int, cap: float, rng: random.Random) -> float | None:
    """Seconds to wait before the next try of the same request, or None: the answer is final.
    The README's status table, read as a client must (see the module docstring)."""
    status, code = answer.status, answer.code
    if status == 200:
        return None
    hinted = status == 429 or (status == 409 and code == "IdempotencyInProgress")
    backoff = (
        status is None
        or status in (502, 504)
        or (status == 503 and code != "isv.NO_AVAILABLE_NUMBER")
    )
    if not (hinted or backoff):
        return None
    if answer.retry_after is not None:
        return min(answer.retry_after, cap)
    ceiling = min(cap, BACKOFF_BASE * 2 ** (tries - 1))
    return rng.uniform(ceiling / 2, ceiling)


class Clients:
    """The client side: sends tries, keeps every answer, counts requests in flight."""

    def __init__(self, servers: list[str], max_tries: int, cap: float) -> None:
        self.servers = [urlsplit(url) for url in servers]
        self.max_tries = max_tries
        self.cap = cap
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0

    def send(self, order: Order, rng: random.Random) -> Answer:
        target = rng.choice(self.servers)
        payload = json.dumps(order.body).encode()
        headers = {"Content-Type": "application/json"}
        if order.header_key:
            headers["Idempotency-Key"] = order.header_key
        with self._lock:
            self.in_flight += 1
            self.requests += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started = time.monotonic()
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=CLIENT_TIMEOUT)
        try:
            conn.request("POST", "/", body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            status, hint = response.status, response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as exc:
            return Answer(None, type(exc).__name__, time.monotonic() - started)
        finally:
            conn.close()
            with self._lock:
                self.in_flight -= 1
        latency = time.monotonic() - started
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        code = str(body.get("Code") or "(no Code)") if isinstance(body, dict) else "(not JSON)"
        dto = body.get("SecretBindDTO") if isinstance(body, dict) else None
        subs_id = str(dto.get("SubsId")) if isinstance(dto, dict) and dto.get("SubsId") else None
        retry_after = None
        if hint is not None:
            with contextlib.suppress(ValueError):
                retry_after = max(0.0, float(hint))
        return Answer(status, code, latency, retry_after, subs_id)

    def run(self, order: Order, into: list[Answer], rng: random.Random) -> None:
        """Try until a final answer or ``max_tries``, waiting as :func:`retry_wait` says."""
        for tries in range(1, self.max_tries + 1):
            answer = self.send(order, rng)
            into.append(answer)
            wait = retry_wait(answer, tries, self.cap, rng)
            if wait is None or tries == self.max_tries:
                return
            time.sleep(wait)


# -- the processes ----------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DYPLS_", "AXN_", "ALIBABA_"))}


def _wait_for_line(proc: subprocess.Popen[bytes], log: Path, pattern: str, what: str) -> str:
    deadline = time.monotonic() + 60
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        found = regex.search(text)
        if found:
            return found.group(1)
        if proc.poll() is not None:
            raise SetupError(f"{what} exited with status {proc.returncode}:\n{text[-2000:]}")
        time.sleep(0.05)
    raise SetupError(f"{what} did not start within 60 s; see {log}")


class Processes:
    """Every process of the run, stopped (by its own handle) in ``close``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen[bytes], Any]] = []
        self.redis: RedisServer | None = None
        self.server_env: dict[str, str] = {}
        self.server_options: list[str] = []
        self.killed = 0

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str], log_name: str | None = None
    ) -> tuple[Any, Path]:
        log = self.workdir / f"{log_name or name}.log"
        out = log.open("wb")
        proc = subprocess.Popen(  # noqa: S603 - this interpreter running the project's tools
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        self.children.append((name, proc, out))
        return proc, log

    def start_emulator(self) -> str:
        proc, log = self.spawn(
            "emulator",
            [sys.executable, "-m", "tools.dypls_emulator", "--port", "0",
             "--max-extensions", "900"],
            {**_clean_env(), "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        return _wait_for_line(proc, log, r"dypls-emulator (http://\S+)", "the emulator")

    def start_redis(self) -> RedisServer:
        self.redis = RedisServer(self.workdir / "redis")
        self.redis.start()
        return self.redis

    def _server_argv(self, port: int) -> list[str]:
        return [sys.executable, "-m", "tools.localserver", "--port", str(port),
                *self.server_options]  # fmt: skip

    def start_servers(
        self, count: int, env: dict[str, str], concurrency: int, function_timeout: int
    ) -> list[str]:
        self.server_env = env
        self.server_options = [
            "--emulator-url", env["DYPLS_ENDPOINT"], "--instance-concurrency", str(concurrency),
            "--function-timeout", str(function_timeout),
        ]  # fmt: skip
        started = [self.spawn(f"instance-{n}", self._server_argv(0), env) for n in range(count)]
        return [
            _wait_for_line(proc, log, r"function on (http://\S+)", f"instance {n}")
            for n, (proc, log) in enumerate(started)
        ]

    def kill_and_restart(self, n: int, url: str) -> float:
        """SIGKILL instance ``n`` (no shutdown: its calls in flight are cut where they are), then
        start a new one on the same port with the same environment, as FC starts a new instance.
        Returns the seconds the port was not served."""
        index = next(i for i, (name, *_) in enumerate(self.children) if name == f"instance-{n}")
        name, proc, out = self.children[index]
        proc.kill()
        proc.wait(timeout=10)
        down = time.monotonic()
        self.children[index] = (f"killed-{name}", proc, out)  # not one that died by itself
        self.killed += 1
        port = int(urlsplit(url).port or 0)
        proc, log = self.spawn(
            name, self._server_argv(port), self.server_env, log_name=f"{name}.{self.killed}"
        )
        _wait_for_line(proc, log, r"function on (http://\S+)", f"instance {n} (restarted)")
        return time.monotonic() - down

    def instances_died(self) -> list[str]:
        """Instances that exited during the run, apart from those this run killed."""
        return [
            f"{name} (exit status {proc.returncode})"
            for name, proc, _ in self.children
            if name.startswith("instance-") and proc.poll() is not None
        ]

    def stop_servers(self) -> None:
        for name, proc, _ in self.children:
            if name.startswith("instance-") and proc.poll() is None:
                proc.terminate()
        for name, proc, _ in self.children:
            if name.startswith("instance-"):
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)

    def close(self) -> None:
        for _, proc, _ in self.children:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, out in self.children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            out.close()
        if self.redis is not None:
            self.redis.kill()


# -- the run ----------------------------------------------------------------------------------


class Schedule:
    """Hands orders to the client threads: in waves, at most ``per_phase`` per phase, none after
    the last phase."""

    def __init__(self, run_id: str, per_phase: int, phase_seconds: float) -> None:
        self.run_id = run_id
        self.per_phase = per_phase
        self.wave = max(1, math.ceil(per_phase * WAVE_SECONDS / phase_seconds))
        self.phase: str | None = None  # no order before the first phase begins
        self.phase_started = time.monotonic()
        self.issued_in_phase = 0
        self.orders: list[Order] = []
        self.over = False
        self._lock = threading.Lock()

    def enter(self, phase: str) -> None:
        with self._lock:
            self.phase, self.phase_started, self.issued_in_phase = phase, time.monotonic(), 0

    def next(self) -> Order | None:
        while True:
            with self._lock:
                if self.over:
                    return None
                if self.phase is not None and self.issued_in_phase < self.per_phase:
                    # the n-th order of a phase is released with wave n // wave
                    due = self.phase_started + (self.issued_in_phase // self.wave) * WAVE_SECONDS
                    if time.monotonic() >= due:
                        return self._issue()
                    wait = due - time.monotonic()
                else:
                    wait = 0.05
            time.sleep(min(max(wait, 0.001), 0.05))

    def _issue(self) -> Order:
        i = len(self.orders)
        out_order_id = f"LF{self.run_id}-{i:05d}"
        order = Order(
            index=i,
            out_order_id=out_order_id,
            header_key=f"idem-{out_order_id}" if i % 2 else None,
            # a number of its own per order (no isv.BIND_CONFLICT between orders)
            body={
                "PhoneNoA": f"139{i % 10**8:08d}",
                "TtlSeconds": 3600,
                "OutOrderId": out_order_id,
            },
            phase=str(self.phase),
        )
        self.orders.append(order)
        self.issued_in_phase += 1
        return order

    def stop(self) -> None:
        with self._lock:
            self.over = True


def _bursts(
    phase: str, tick: int, wave: int, read_timeout: float, slots: int = 1
) -> list[dict[str, Any]]:
    """The faults queued at the ``tick``-th TICK_SECONDS of ``phase``. Every 2 s a throttling
    burst covers one and a half waves of tries, so that some orders are still throttled after the
    function's own retry (DYPLS_MAX_ATTEMPTS=2) and their clients get the 429; a second later, a
    few ``isv.FLOW_LIMIT``. While instances are killed, every call (``slots``: as many as all the
    instances serve at once) is slowed to 0.8 of the read timeout: an answer the instance would
    have had in time, and a binding made while it may already be dead."""
    throttle = {
        0: [{"kind": "throttle", "count": max(2, wave * 3 // 2), "retry_after": 0.2}],
        2: [{"kind": "flow_limit", "count": 2}],
    }
    return {
        "clean": [],
        "instance_kill": [
            {"kind": "delay", "count": max(2, slots), "seconds": round(read_timeout * 0.8, 3)}
        ],
        "throttle": throttle.get(tick % 4, []),
        "isp": [
            {"kind": "isp_error", "count": 1, "bind": True},
            {"kind": "isp_error", "count": 1},
        ],
        "http_5xx": [
            {"kind": "http_5xx", "count": 1, "bind": True},
            {"kind": "http_5xx", "count": 1, "status": 503},
        ],
        "delay": [{"kind": "delay", "count": 2, "seconds": round(read_timeout + 0.5, 3)}],
        "bind_then_drop": [{"kind": "bind_then_drop", "count": 2}],
        "redis_restart": [],
    }[phase]


def _post_faults(emulator_url: str, faults: list[dict[str, Any]]) -> None:
    if not faults:
        return
    parts = urlsplit(emulator_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request(
            "POST", "/_emulator/faults", json.dumps(faults), {"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        text = response.read().decode()
    finally:
        conn.close()
    if response.status != 200:
        raise SetupError(f"the emulator refused faults {faults}: {response.status} {text}")


def _kill_instances(
    args: argparse.Namespace,
    procs: Processes,
    servers: list[str],
    admin: EmulatorAdmin,
    began: float,
    start: float,
    kills: list[dict[str, Any]],
    failures: list[BaseException],
) -> None:
    """``--kills`` times in the phase, evenly spread: SIGKILL the next instance in turn while
    Dyplsapi calls are in flight, and start it again on its port. Runs in a thread of its own;
    what it raises goes to ``failures``."""
    try:
        _kill_in_turn(args, procs, servers, admin, began, start, kills)
    except BaseException as exc:  # raised again by _run_phases
        failures.append(exc)


def _kill_in_turn(
    args: argparse.Namespace,
    procs: Processes,
    servers: list[str],
    admin: EmulatorAdmin,
    began: float,
    start: float,
    kills: list[dict[str, Any]],
) -> None:
    for k in range(args.kills):
        due = began + args.phase_seconds * (k + 1) / (args.kills + 1)
        time.sleep(max(0.0, due - time.monotonic()))
        deadline = time.monotonic() + 1.0  # a kill is meant to cut calls: wait for some
        while not admin.info().get("in_flight") and time.monotonic() < deadline:
            time.sleep(0.01)
        n = k % len(servers)
        in_flight = admin.info().get("in_flight")
        at = time.monotonic()
        down = procs.kill_and_restart(n, servers[n])
        kills.append(
            {
                "instance": n,
                "at_s": round(at - start, 2),
                "emulator_calls_in_flight": in_flight,
                "down_s": round(down, 2),
            }
        )


def _run_phases(
    args: argparse.Namespace,
    schedule: Schedule,
    admin: EmulatorAdmin,
    procs: Processes,
    servers: list[str],
    timeline: list[dict[str, Any]],
) -> None:
    redis = procs.redis
    assert redis is not None
    start = time.monotonic()
    slots = args.servers * args.instance_concurrency
    for phase in args.phases:
        schedule.enter(phase)
        began = time.monotonic()
        end = began + args.phase_seconds
        entry: dict[str, Any] = {"phase": phase, "at_s": round(began - start, 2)}
        killer = None
        failures: list[BaseException] = []
        if phase == "instance_kill":
            entry["kills"] = []
            killer = threading.Thread(
                target=_kill_instances,
                args=(args, procs, servers, admin, began, start, entry["kills"], failures),
                name="killer",
                daemon=True,
            )
            killer.start()
        if phase == "redis_restart":
            down = min(1.0, args.phase_seconds / 3)
            time.sleep(args.phase_seconds / 3)
            redis.crash()
            entry["redis_crashed_at_s"] = round(time.monotonic() - start, 2)
            time.sleep(down)
            redis.start()
            entry["redis_back_at_s"] = round(time.monotonic() - start, 2)
        bursts = 0
        tick = 0
        while time.monotonic() < end:
            faults = _bursts(phase, tick, schedule.wave, args.read_timeout, slots)
            tick += 1
            if faults:
                _post_faults(admin.url, faults)
                bursts += 1
            time.sleep(max(0.0, min(TICK_SECONDS, end - time.monotonic())))
        if killer is not None:
            killer.join()  # the last instance killed is serving again
            if failures:
                raise failures[0]
        admin.clear_faults()
        entry["fault_bursts"] = bursts
        timeline.append(entry)
    schedule.stop()


def _wait_idle(admin: EmulatorAdmin, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not admin.info().get("in_flight"):
            return True
        time.sleep(0.05)
    return False


# -- after the load: the leases, the sweep ----------------------------------------------------


def record_keys(orders: list[Order]) -> dict[str, str]:
    """Each order's idempotency record, as the function names it: every order of the run carries
    an ``OutOrderId``, which wins over an ``Idempotency-Key`` header."""
    from axn_bind.idempotency import IdempotencyKey, record_key

    return {
        o.out_order_id: record_key(
            FUNCTION_NAME, DEFAULT_POOL_KEY, IdempotencyKey("order", o.out_order_id)
        )
        for o in orders
    }


def _wait_for_leases(
    redis_url: str, orders: list[Order], function_timeout: int
) -> tuple[int, float]:
    """Wait until no record of ``orders`` is IN_PROGRESS within its lease (an instance was
    killed mid-call: until the lease runs out, a retry is told 409 IdempotencyInProgress).
    Returns how many such records there were and the seconds waited."""
    from axn_bind.idempotency import State, open_store

    keys = record_keys(orders)
    store = open_store(redis_url)
    try:
        now = time.time()
        leases = [
            r.lease_until
            for r in (store.get(k) for k in keys.values())
            if r is not None and r.state is State.IN_PROGRESS and r.lease_until > now
        ]
    finally:
        store.close()
    if not leases:
        return 0, 0.0
    wait = min(max(leases) - now + 0.2, function_timeout + 60.0)  # the longest a lease can be
    time.sleep(wait)
    return len(leases), round(wait, 1)


@dataclass
class Sweep:
    """What the timer's sweep, run after the load and the probes, answered and left."""

    answer: dict[str, Any]  # the handler's answer, or {"raised": …} when it asked for a retry
    began: float  # wall-clock time the sweep was started
    record_of: dict[str, str]  # OutOrderId → its idempotency record
    records: dict[str, tuple[str, float] | None]  # record → (state, lease_until) after the sweep
    outbox: set[str]  # records still in the outbox after the sweep
    announced: set[str]  # SubsIds of the axn.binding.created events the targets received
    cut: int = 0  # records a killed instance left IN_PROGRESS (orders without an answer)
    lease_wait: float = 0.0  # seconds waited for their leases before the probe
    killed: int = 0  # instances killed


def run_sweep(workdir: Path, env: dict[str, str], redis_url: str, orders: list[Order]) -> Sweep:
    """Run the sweep as its timer trigger does (``events/timer_sweep.json`` through
    ``index.handler``, ``python -m tools.invoke``) with the instances' environment and no grace
    period; then read what it left: the records, the outbox and the announced events."""
    from axn_bind.idempotency import open_store

    sweep_env = {
        **env,
        **local_env(env["DYPLS_ENDPOINT"]),  # what tools.localserver gives its instances
        "AXN_SWEEP_GRACE_SECONDS": "0",
    }
    began = time.time()
    with (workdir / "sweep.log").open("wb") as err:
        done = subprocess.run(  # noqa: S603 - this interpreter running the project's tools
            [sys.executable, "-m", "tools.invoke", str(SWEEP_EVENT)],
            cwd=ROOT, env=sweep_env, stdout=subprocess.PIPE, stderr=err, timeout=120, check=False,
        )  # fmt: skip
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = {"raised": f"exit status {done.returncode}", "output": done.stdout[-500:].decode()}
    keys = record_keys(orders)
    store = open_store(redis_url)
    try:
        records: dict[str, tuple[str, float] | None] = {}
        for key in keys.values():
            r = store.get(key)
            records[key] = None if r is None else (r.state.value, r.lease_until)
        outbox = set(store.outbox_due(0.0, max(1, len(keys) * 2)))
    finally:
        store.close()
    announced = set()
    events = workdir / "events.jsonl"
    for raw in events.read_text().splitlines() if events.exists() else []:
        with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
            event = json.loads(raw)
            if event.get("type") == "axn.binding.created" and event["data"].get("SubsId"):
                announced.add(str(event["data"]["SubsId"]))
    return Sweep(answer, began, keys, records, outbox, announced)


# -- the function's log lines -----------------------------------------------------------------

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \[(\w+)\] (\{.*\})\s*$")


@dataclass
class Logs:
    events: Counter[str] = field(
        default_factory=Counter
    )  # (event, level) → count, as "event level"
    record_of: dict[str, str] = field(default_factory=dict)  # out_order_id → record
    orphans: Counter[str] = field(default_factory=Counter)  # record → possible_orphan_binding lines
    defects: list[dict[str, Any]] = field(default_factory=list)
    max_overlap: int = 0  # most bind calls overlapping in one instance
    lines: int = 0
    tracebacks: list[str] = field(default_factory=list)  # outside the log lines: a thread died


def parse_logs(paths: list[Path]) -> Logs:
    logs = Logs()
    for path in paths:
        intervals: list[tuple[float, float]] = []
        text = path.read_text(errors="replace").splitlines()
        for n, raw in enumerate(text):
            found = _LINE.match(raw)
            if not found:
                if raw.startswith("Traceback") or "Exception occurred during processing" in raw:
                    logs.tracebacks.append(f"{path.name}: " + " | ".join(text[n : n + 12]))
                continue
            try:
                line = json.loads(found.group(3))
            except ValueError:
                continue
            logs.lines += 1
            event = str(line.get("event"))
            logs.events[f"{event} {found.group(2)}"] += 1
            if event == "bind":
                if line.get("record") and line.get("out_order_id"):
                    logs.record_of[str(line["out_order_id"])] = str(line["record"])
                when = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                elapsed = float(line.get("elapsed_ms") or 0) / 1000
                # the line's time is cut to the millisecond and elapsed_ms rounded: a call that
                # began within 2 ms of another's end is not counted as overlapping it
                if elapsed > OVERLAP_SLACK:
                    intervals.append((when - elapsed + OVERLAP_SLACK, when))
            elif event == "possible_orphan_binding" and line.get("record"):
                logs.orphans[str(line["record"])] += 1
            elif event == "unexpected_failure":
                logs.defects.append(line)
        logs.max_overlap = max(logs.max_overlap, _max_overlap(intervals))
    return logs


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


# -- the report -------------------------------------------------------------------------------


def _pct(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[max(0, math.ceil(len(ordered) * q) - 1)] * 1000, 1)  # nearest rank


def figures(
    args: argparse.Namespace,
    orders: list[Order],
    bindings: list[dict[str, Any]],
    logs: Logs,
    clients: Clients,
    died: list[str],
    timeline: list[dict[str, Any]],
    load_seconds: float,
    sweep: Sweep | None = None,
) -> dict[str, Any]:
    by_order: dict[str, list[str]] = defaultdict(list)
    mine = {o.out_order_id for o in orders}
    for b in bindings:
        if b.get("OutOrderId") in mine:
            by_order[str(b["OutOrderId"])].append(str(b["SubsId"]))

    twice, unnamed, lost, held, wrong = [], [], [], [], []
    for order in orders:
        subs = set(by_order.get(order.out_order_id, []))
        extra = len(subs) - 1
        record = logs.record_of.get(order.out_order_id)
        named = logs.orphans.get(record, 0) if record else 0
        if extra > 0:
            twice.append(order.out_order_id)
            if extra > named:
                unnamed.append({"order": order.key, "bindings": sorted(subs), "named": named})
        got = order.got()
        for subs_id in sorted(got - subs):
            wrong.append({"order": order.key, "subs_id": subs_id})
        if subs and not (got & subs):
            last = order.last()
            entry = {"order": order.key, "bindings": sorted(subs), "last": last and last.label}
            if args.unknown_outcome == "refuse" and last and last.code == "OutcomeUnknown":
                held.append(entry)
            else:
                lost.append(entry)

    check = held_check(orders, by_order, logs, sweep) if sweep is not None else None

    def phase_figures(selected: list[Order]) -> dict[str, Any]:
        tries = [a for o in selected for a in o.answers]
        done = [o for o in selected if any(a.status == 200 for a in o.answers)]
        return {
            "orders": len(selected),
            "requests": len(tries),
            "orders_answered_200": len(done),
            "orders_without_200": len(selected) - len(done),
            "retries": len(tries) - len(selected),
            "request_p50_ms": _pct([a.latency for a in tries], 0.50),
            "request_p99_ms": _pct([a.latency for a in tries], 0.99),
            "order_p50_ms": _pct([o.ended - o.started for o in selected], 0.50),
            "order_p99_ms": _pct([o.ended - o.started for o in selected], 0.99),
            "answers": dict(Counter(a.label for a in tries if a.status != 200).most_common()),
        }

    every = [a for o in orders for a in o.all_answers()]
    final = Counter(o.answers[-1].label for o in orders if o.answers)
    return {
        "settings": {
            "servers": args.servers,
            "instance_concurrency": args.instance_concurrency,
            "concurrency": args.concurrency,
            "orders_planned": args.orders,
            "phases": args.phases,
            "phase_seconds": args.phase_seconds,
            "max_tries": args.max_tries,
            "retry_cap_seconds": args.retry_cap,
            "read_timeout_seconds": args.read_timeout,
            "function_timeout_seconds": args.function_timeout,
            "kills": args.kills,
            "unknown_outcome": args.unknown_outcome,
            "seed": args.seed,
        },
        "load_seconds": round(load_seconds, 1),
        "requests": clients.requests,
        "orders": len(orders),
        "orders_answered_200": sum(1 for o in orders if o.got()),
        "probed_orders": sum(1 for o in orders if o.probe),
        "bindings_created": sum(len(v) for v in by_order.values()),
        "keys_bound_twice": len(twice),
        "possible_orphan_binding_lines": sum(logs.orphans.values()),
        "double_bindings_not_named": len(unnamed),
        "results_lost": len(lost),
        "held_for_operator": len(held),
        "answers_naming_no_binding_of_their_key": len(wrong),
        "instances_killed": sweep.killed if sweep else 0,
        "records_cut_by_a_kill": sweep.cut if sweep else 0,
        "lease_wait_seconds": sweep.lease_wait if sweep else 0.0,
        "bindings_announced": check["announced"] if check else None,
        "bindings_named_as_held": check["held"] if check else None,
        "bindings_named_as_possible_orphans": check["orphans"] if check else None,
        "bindings_neither_announced_nor_named_as_held": len(check["missed"]) if check else None,
        "held_records_counted_by_the_sweep": check["held_counted"] if check else None,
        "held_records_named_by_the_sweep": check["held_named"] if check else None,
        "sweep": check["answer"] if check else None,
        "defects_logged": len(logs.defects),
        "tracebacks_in_instance_output": len(logs.tracebacks),
        "instances_died": len(died),
        "records_not_saved": logs.events.get("idempotency_record_not_saved ERROR", 0),
        "request_p50_ms": _pct([a.latency for a in every], 0.50),
        "request_p99_ms": _pct([a.latency for a in every], 0.99),
        "order_p50_ms": _pct([o.ended - o.started for o in orders if o.answers], 0.50),
        "order_p99_ms": _pct([o.ended - o.started for o in orders if o.answers], 0.99),
        "max_requests_in_flight": clients.max_in_flight,
        "max_binds_overlapping_in_one_instance": logs.max_overlap,
        "answers_by_class": dict(Counter(a.label for a in every).most_common()),
        "final_answers_without_200": {
            k: v for k, v in final.most_common() if not k.startswith("200 ")
        },
        "log_events": dict(sorted(logs.events.items())),
        "phases": {p: phase_figures([o for o in orders if o.phase == p]) for p in args.phases},
        "timeline": timeline,
        "details": {
            "double_bindings_not_named": unnamed[:50],
            "results_lost": lost[:50],
            "held_for_operator": held[:50],
            "orders_without_200": [
                {"order": o.key, "phase": o.phase, "answers": [a.label for a in o.all_answers()]}
                for o in orders
                if not o.got()
            ][:50],
            "answers_naming_no_binding_of_their_key": wrong[:50],
            "bindings_neither_announced_nor_named_as_held": check["missed"][:50] if check else [],
            "defects_logged": logs.defects[:10],
            "tracebacks_in_instance_output": logs.tracebacks[:10],
            "instances_died": died,
        },
    }


def held_check(
    orders: list[Order], by_order: dict[str, list[str]], logs: Logs, sweep: Sweep
) -> dict[str, Any]:
    """Is every binding made for an order either announced (an ``axn.binding.created`` event
    with its SubsId reached the targets), or named as held by the sweep (its order's record is
    UNKNOWN, or IN_PROGRESS past its lease, still in the outbox, and counted in the sweep's
    ``Held``), or one of the extra bindings the function named in ``possible_orphan_binding``?

    Per order, the bindings not announced must not outnumber the order's possible-orphan lines
    plus one when its record is held: a held record names one attempt, whose binding nobody was
    told of. The sweep's ``Held`` must count every such record; when it counts fewer, only those
    it named in ``HeldRecords`` are taken as named."""
    answer = sweep.answer
    pending = []
    announced = 0
    for order in orders:
        subs = sorted(set(by_order.get(order.out_order_id, [])))
        announced += sum(1 for s in subs if s in sweep.announced)
        unannounced = [s for s in subs if s not in sweep.announced]
        if not unannounced:
            continue
        record = sweep.record_of[order.out_order_id]
        found = sweep.records.get(record)
        state = found[0] if found else None
        lapsed = found is not None and found[0] == "IN_PROGRESS" and found[1] <= sweep.began
        held = (state == "UNKNOWN" or lapsed) and record in sweep.outbox
        pending.append((order, record, unannounced, state, held))
    counted = int(answer.get("Held") or 0)
    named = {str(r.get("Record")) for r in answer.get("HeldRecords") or [] if isinstance(r, dict)}
    enough = counted >= sum(1 for *_, held in pending if held)
    missed: list[dict[str, Any]] = []
    held_bindings = orphan_bindings = 0
    for order, record, unannounced, state, held in pending:
        credit_held = 1 if held and (enough or record in named) else 0
        orphans = logs.orphans.get(record, 0)
        left = len(unannounced)
        orphan_bindings += min(left, orphans)
        held_bindings += min(max(0, left - orphans), credit_held)
        if left > orphans + credit_held:
            missed.append(
                {
                    "order": order.key,
                    "record": record,
                    "state": state,
                    "in_outbox": record in sweep.outbox,
                    "not_announced": unannounced,
                    "possible_orphan_lines": orphans,
                    "counted_by_the_sweep": bool(credit_held),
                }
            )
    return {
        "announced": announced,
        "held": held_bindings,
        "orphans": orphan_bindings,
        "missed": missed,
        "held_counted": counted,
        "held_named": len(named),
        "answer": {k: v for k, v in answer.items() if k not in ("HeldRecords", "RequestId")},
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render(report: dict[str, Any]) -> str:
    s = report["settings"]
    out = [
        f"loadfault: {s['servers']} instance(s) x instance concurrency "
        f"{s['instance_concurrency']}, {s['concurrency']} clients, "
        f"AXN_UNKNOWN_OUTCOME={s['unknown_outcome']}, DYPLS_READ_TIMEOUT={s['read_timeout_seconds']:g} s, "
        f"{report['load_seconds']:g} s of load",
        "",
        "| phase | orders | requests | orders without 200 | request p50 / p99 ms | order p50 / p99 ms | other answers |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase, f in report["phases"].items():
        others = ", ".join(f"{k} x{v}" for k, v in f["answers"].items()) or "-"
        out.append(
            f"| {phase} | {f['orders']} | {f['requests']} | {f['orders_without_200']} | "
            f"{_ms(f['request_p50_ms'])} / {_ms(f['request_p99_ms'])} | "
            f"{_ms(f['order_p50_ms'])} / {_ms(f['order_p99_ms'])} | {others} |"
        )
    out += ["", "| answer (HTTP status, Code) | count |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in report["answers_by_class"].items()]
    rows = [
        ("requests", report["requests"], ""),
        ("orders (one key each)", report["orders"], ""),
        ("orders answered 200", report["orders_answered_200"], ""),
        ("orders probed after the load", report["probed_orders"], ""),
        ("bindings created", report["bindings_created"], ""),
        ("keys bound twice", report["keys_bound_twice"], "each named"),
        ("possible_orphan_binding log lines", report["possible_orphan_binding_lines"], ""),
        ("double bindings not named", report["double_bindings_not_named"], "0"),
        ("results lost", report["results_lost"], "0"),
        ("held for an operator (refuse: 409 OutcomeUnknown)", report["held_for_operator"], ""),
        (
            "answers naming no binding of their key",
            report["answers_naming_no_binding_of_their_key"],
            "0",
        ),
        ("instances killed mid-call (SIGKILL, started again)", report["instances_killed"], ""),
        ("records a kill left in progress (no answer yet)", report["records_cut_by_a_kill"], ""),
        ("seconds waited for their leases before the probe", report["lease_wait_seconds"], ""),
        ("bindings announced (axn.binding.created)", report["bindings_announced"], ""),
        ("bindings named as held by the sweep", report["bindings_named_as_held"], ""),
        (
            "bindings named as possible orphans (possible_orphan_binding)",
            report["bindings_named_as_possible_orphans"],
            "",
        ),
        (
            "bindings neither announced nor named as held",
            report["bindings_neither_announced_nor_named_as_held"],
            "0",
        ),
        (
            "held records the sweep counted / named",
            f"{report['held_records_counted_by_the_sweep']} / "
            f"{report['held_records_named_by_the_sweep']}",
            "",
        ),
        ("defects logged (unexpected_failure)", report["defects_logged"], "0"),
        ("tracebacks in the instances' output", report["tracebacks_in_instance_output"], "0"),
        ("instances that died", report["instances_died"], "0"),
        ("records not saved (idempotency_record_not_saved)", report["records_not_saved"], ""),
        (
            "request latency p50 / p99 ms",
            f"{_ms(report['request_p50_ms'])} / {_ms(report['request_p99_ms'])}",
            "",
        ),
        (
            "order latency p50 / p99 ms (retries included)",
            f"{_ms(report['order_p50_ms'])} / {_ms(report['order_p99_ms'])}",
            "",
        ),
        ("most requests in flight (clients)", report["max_requests_in_flight"], ""),
        (
            "most bind calls overlapping in one instance",
            report["max_binds_overlapping_in_one_instance"],
            "",
        ),
    ]
    out += ["", "| figure | value | must be |", "|---|---|---|"]
    out += [f"| {name} | {value} | {must} |" for name, value, must in rows]
    if report["sweep"] is not None:
        swept = ", ".join(f"{k} {v}" for k, v in report["sweep"].items() if k != "Message")
        out += ["", f"the sweep after the load (timer event, grace 0): {swept}"]
    if report["final_answers_without_200"]:
        finals = ", ".join(f"{k} x{v}" for k, v in report["final_answers_without_200"].items())
        out += ["", f"last answer of the orders that never got a 200: {finals}"]
    failed = [name for name in MUST_BE_ZERO if report[name]]
    if failed:
        out += ["", "NOT 0: " + ", ".join(failed)]
        for name in failed:
            for item in report["details"][name][:10]:
                out.append(f"  {name}: {json.dumps(item, ensure_ascii=False)[:400]}")
    return "\n".join(out)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make loadfault",
        description="Concurrent load on local function instances sharing a Redis store, with "
        "faults injected in turn; reports double bindings, lost results, errors and latency.",
    )
    parser.add_argument(
        "--orders", type=int, default=2100,
        help="logical orders (keys) over the whole run, the same number per phase (default "
        "2100); the emulator's pool holds 5400 bindings, orphans included",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, default=16,
        help="client threads, each carrying one order at a time (default 16)",
    )  # fmt: skip
    parser.add_argument(
        "--phase-seconds", type=float, default=8.0,
        help="length of each phase (default 8)",
    )  # fmt: skip
    parser.add_argument(
        "--servers", type=int, default=2,
        help="local function instances (server processes) sharing the Redis store (default 2)",
    )  # fmt: skip
    parser.add_argument(
        "--instance-concurrency", type=int, default=4,
        help="requests each instance serves at once, in threads (default 4)",
    )  # fmt: skip
    parser.add_argument(
        "--max-tries", type=int, default=6,
        help="tries per order before its client gives up (default 6)",
    )  # fmt: skip
    parser.add_argument(
        "--retry-cap", type=float, default=2.0,
        help="longest wait between two tries, Retry-After included (default 2 s)",
    )  # fmt: skip
    parser.add_argument(
        "--read-timeout", type=float, default=1.0,
        help="DYPLS_READ_TIMEOUT of the instances; the delay phase answers 0.5 s later than "
        "this (default 1 s)",
    )  # fmt: skip
    parser.add_argument(
        "--function-timeout", type=int, default=30,
        help="the function's timeout the instances' FC context gives each invocation (default "
        "30 s); a call cut by a kill holds its key for about this long plus the lease's 30 s "
        "of slack",
    )  # fmt: skip
    parser.add_argument(
        "--kills", type=int, default=3,
        help="instances killed (SIGKILL, then started again) in the instance_kill phase, one "
        "after the other, evenly spread (default 3)",
    )  # fmt: skip
    parser.add_argument(
        "--unknown-outcome", choices=("reexecute", "refuse"), default="reexecute",
        help="AXN_UNKNOWN_OUTCOME of the instances (default reexecute)",
    )  # fmt: skip
    parser.add_argument(
        "--phases", default=",".join(PHASES),
        help=f"the phases to run, in order, comma-separated (default: all, {','.join(PHASES)})",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=None, help="seed for the clients' choices")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument(
        "--workdir", metavar="DIR",
        help="where the logs, the Redis files and the events go (default: a new temporary "
        "directory, removed after a run whose must-be-0 figures are all 0)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for name in ("orders", "concurrency", "servers", "instance_concurrency", "max_tries", "kills"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("phase_seconds", "retry_cap", "read_timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be more than 0")
    if args.function_timeout < 3:
        parser.error("--function-timeout must be at least 3 s")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in args.phases if p not in PHASES]
    if unknown or not args.phases:
        parser.error(f"--phases takes some of {', '.join(PHASES)}; got {', '.join(unknown)}")
    if args.seed is None:
        args.seed = random.randrange(10**6)
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    procs = Processes(workdir)
    try:
        emulator_url = procs.start_emulator()
        admin = EmulatorAdmin(emulator_url)
        admin.wait_ready()
        redis = procs.start_redis()
        env = {
            **_clean_env(),
            "PYTHONUNBUFFERED": "1",
            "DYPLS_ENDPOINT": emulator_url,
            "AXN_IDEMPOTENCY_URL": redis.url(),
            "AXN_UNKNOWN_OUTCOME": args.unknown_outcome,
            "AXN_LOG_LEVEL": "INFO",
            "AXN_PUBLISH_TO": f"file://{workdir / 'events.jsonl'}",
            "DYPLS_CONNECT_TIMEOUT": "1",
            "DYPLS_READ_TIMEOUT": f"{args.read_timeout:g}",
            "DYPLS_MAX_ATTEMPTS": "2",
            "DYPLS_BACKOFF_BASE_MS": "50",
            "DYPLS_BACKOFF_MAX_MS": "500",
        }
        servers = procs.start_servers(
            args.servers, env, args.instance_concurrency, args.function_timeout
        )

        rng = random.Random(args.seed)
        run_id = "".join(rng.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(4))
        per_phase = max(1, math.ceil(args.orders / len(args.phases)))
        schedule = Schedule(run_id, per_phase, args.phase_seconds)
        clients = Clients(servers, args.max_tries, args.retry_cap)

        def worker(n: int) -> None:
            local = random.Random(args.seed * 1000 + n)
            while (order := schedule.next()) is not None:
                order.started = time.monotonic()
                clients.run(order, order.answers, local)
                order.ended = time.monotonic()

        threads = [
            threading.Thread(target=worker, args=(n,), name=f"client-{n}", daemon=True)
            for n in range(args.concurrency)
        ]
        timeline: list[dict[str, Any]] = []
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            _run_phases(args, schedule, admin, procs, servers, timeline)
        finally:
            schedule.stop()
        for thread in threads:  # each order ends within max_tries tries
            thread.join()
        load_seconds = time.monotonic() - started
        _wait_idle(admin, args.read_timeout + 10)
        admin.clear_faults()

        # The probe: what retrying once more gets an order that has a binding but no 200 (once
        # a retry can be answered: the lease of a call cut by a kill has run out).
        made = {str(b.get("OutOrderId")) for b in admin.bindings()}
        unanswered = [o for o in schedule.orders if o.out_order_id in made and not o.got()]
        cut, lease_wait = _wait_for_leases(redis.url(), unanswered, args.function_timeout)
        probe_rng = random.Random(args.seed + 1)
        for order in unanswered:
            clients.run(order, order.probe, probe_rng)
        _wait_idle(admin, args.read_timeout + 10)
        bindings = admin.bindings()
        died = procs.instances_died()
        procs.stop_servers()
        sweep = run_sweep(workdir, env, redis.url(), schedule.orders)
        sweep.cut, sweep.lease_wait, sweep.killed = cut, lease_wait, procs.killed
        logs = parse_logs([*sorted(workdir.glob("instance-*.log")), workdir / "sweep.log"])
        return figures(
            args, schedule.orders, bindings, logs, clients, died, timeline, load_seconds, sweep
        )
    finally:
        procs.close()


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C does: every process of the run is stopped on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="axn-loadfault-"))
    )
    workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run(args, workdir)
    except (SetupError, RedisServerError) as exc:
        print(f"make loadfault: {exc}\n(logs in {workdir})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"make loadfault: interrupted (logs in {workdir})", file=sys.stderr)
        return 130
    print(render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    failed = [name for name in MUST_BE_ZERO if report[name]]
    if failed:
        print(f"\nlogs, Redis files and events kept in {workdir}")
        return 1
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
