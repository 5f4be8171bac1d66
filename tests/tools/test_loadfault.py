"""`make loadfault` in miniature: every phase for a moment, the report's invariants hold (and, in
a second run beside it, instances killed mid-call under ``AXN_UNKNOWN_OUTCOME=refuse``: every
binding nobody was told of is named as held by the sweep); and the parts that decide those
invariants (the client's retry rule, the accounting) on their own."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.redisproc import redis_server_binary
from tools import loadfault
from tools.loadfault import (
    MUST_BE_ZERO,
    PHASES,
    Answer,
    Logs,
    Order,
    Sweep,
    figures,
    retry_wait,
)

ROOT = Path(__file__).resolve().parents[2]
# A kill leaves its call's key IN_PROGRESS for the lease: the function's timeout (here 10 s, less
# AXN_DEADLINE_MARGIN_MS) plus 30 s. Both runs wait that out before their probe, side by side.
TINY = ["--phase-seconds", "1", "--concurrency", "4", "--servers", "2",
        "--instance-concurrency", "2", "--retry-cap", "0.3", "--read-timeout", "0.5",
        "--function-timeout", "10", "--seed", "7"]  # fmt: skip
RUNS = {
    "all_phases": ["--orders", "64"],
    "kills_refuse": ["--orders", "24", "--phases", "clean,instance_kill", "--phase-seconds", "2",
                     "--unknown-outcome", "refuse"],
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both tiny runs, started together; each test waits for its own."""
    redis_server_binary()  # skips (or fails under CI=true) without one
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYPLS_", "AXN_", "ALIBABA_"))}
    started = {}
    for name, extra in RUNS.items():
        where = tmp_path_factory.mktemp(name)
        argv = [sys.executable, "-m", "tools.loadfault", *TINY, *extra,
                "--workdir", str(where / "run"), "--json", str(where / "report.json")]  # fmt: skip
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        started[name] = (proc, where / "report.json")
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _finished(runs, name):
    proc, report = runs[name]
    try:
        out, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"the {name} run did not end within 150 s:\n{out}")
    assert proc.returncode == 0, out
    assert "| figure | value | must be |" in out
    return json.loads(report.read_text())


def test_a_tiny_run_keeps_every_invariant(runs):
    report = _finished(runs, "all_phases")
    for name in MUST_BE_ZERO:
        assert report[name] == 0, (name, report["details"])
    assert list(report["phases"]) == list(PHASES)
    assert report["requests"] >= report["orders"] > 0
    assert report["bindings_created"] >= report["orders_answered_200"] > 0
    # The faults reached the clients, and every key bound twice was named by the function.
    assert set(report["answers_by_class"]) - {"200 OK"}, report["answers_by_class"]
    assert report["possible_orphan_binding_lines"] >= report["keys_bound_twice"]
    assert report["max_binds_overlapping_in_one_instance"] >= 1
    assert any("redis_crashed_at_s" in phase for phase in report["timeline"])
    # Instances were killed and started again; after the probes, the sweep found every binding
    # announced, named as held, or named as a possible orphan: each counted once.
    assert report["instances_killed"] >= 1
    assert report["bindings_neither_announced_nor_named_as_held"] == 0
    assert report["bindings_announced"] >= report["orders_answered_200"]
    assert (
        report["bindings_announced"]
        + report["bindings_named_as_held"]
        + report["bindings_named_as_possible_orphans"]
    ) == report["bindings_created"]
    assert report["sweep"]["Remaining"] == 0


def test_instances_killed_mid_call_leave_bindings_the_sweep_names_as_held(runs):
    """Under refuse nothing re-executes a call cut by a kill: its binding stays one that nobody
    was told of, and the timer's sweep must count (and name) its record."""
    report = _finished(runs, "kills_refuse")
    for name in MUST_BE_ZERO:
        assert report[name] == 0, (name, report["details"])
    assert report["instances_killed"] >= 1
    assert report["records_cut_by_a_kill"] >= 1, report["timeline"]
    assert report["bindings_named_as_held"] >= 1
    assert report["held_records_counted_by_the_sweep"] >= report["bindings_named_as_held"]
    assert report["held_for_operator"] == report["bindings_named_as_held"]
    assert (
        report["bindings_announced"] + report["bindings_named_as_held"]
        == (report["bindings_created"])
    )


def test_the_client_retries_exactly_what_the_status_table_says():
    rng = random.Random(1)
    cap = 2.0

    def wait(status, code, retry_after=None, tries=1):
        return retry_wait(Answer(status, code, 0.0, retry_after), tries, cap, rng)

    assert wait(200, "OK") is None
    assert wait(429, "Throttling.User", retry_after=1) == 1
    assert wait(429, "isv.FLOW_LIMIT", retry_after=30) == cap  # the hint is capped
    assert wait(409, "IdempotencyInProgress", retry_after=2) == 2
    for status, code in (
        (502, "isp.SYSTEM_ERROR"),
        (502, "UpstreamConnectionLost"),
        (504, "UpstreamTimeout"),
        (503, "IdempotencyStoreUnavailable"),
        (503, "UpstreamUnavailable"),
        (None, "ConnectionRefusedError"),
    ):
        assert 0.05 <= wait(status, code) <= 0.1, (status, code)
        assert wait(status, code, tries=10) <= cap
    for status, code in (
        (400, "InvalidParameter"),
        (400, "isv.MOBILE_NUMBER_ILLEGAL"),
        (409, "IdempotencyKeyReused"),
        (409, "OutcomeUnknown"),
        (409, "isv.BIND_CONFLICT"),
        (413, "PayloadTooLarge"),
        (500, "InvalidConfiguration"),
        (503, "isv.NO_AVAILABLE_NUMBER"),
    ):
        assert wait(status, code) is None, (status, code)


def _order(i: int, *answers: Answer) -> Order:
    order = Order(i, f"LFtest-{i:05d}", None, {}, "clean", list(answers))
    order.ended = 0.1
    return order


def _args(mode: str = "reexecute") -> SimpleNamespace:
    return SimpleNamespace(
        servers=1, instance_concurrency=1, concurrency=1, orders=4, phases=list(PHASES),
        phase_seconds=1.0, max_tries=3, retry_cap=1.0, read_timeout=1.0, unknown_outcome=mode,
        seed=0, function_timeout=30, kills=3,
    )  # fmt: skip


def test_the_accounting_finds_an_unnamed_double_binding_a_lost_result_and_a_wrong_answer():
    ok = Answer(200, "OK", 0.01, subs_id="S1")
    orders = [
        _order(0, Answer(502, "UpstreamConnectionLost", 0.01), ok),  # bound twice, named once
        _order(1, Answer(502, "isp.SYSTEM_ERROR", 0.01), Answer(200, "OK", 0.01, subs_id="S3")),
        _order(2, Answer(504, "UpstreamTimeout", 0.01)),  # bound, never answered: lost
        _order(3, Answer(200, "OK", 0.01, subs_id="S9")),  # names a binding not its own
    ]
    bindings = [
        {"OutOrderId": "LFtest-00000", "SubsId": "S0"},
        {"OutOrderId": "LFtest-00000", "SubsId": "S1"},
        {"OutOrderId": "LFtest-00001", "SubsId": "S2"},  # orphan, not named
        {"OutOrderId": "LFtest-00001", "SubsId": "S3"},
        {"OutOrderId": "LFtest-00002", "SubsId": "S4"},
        {"OutOrderId": "elsewhere", "SubsId": "S9"},
    ]
    logs = Logs()
    logs.record_of = {"LFtest-00000": "axn:idem:a", "LFtest-00001": "axn:idem:b"}
    logs.orphans["axn:idem:a"] = 1
    clients = SimpleNamespace(requests=7, max_in_flight=1)
    report = figures(_args(), orders, bindings, logs, clients, [], [], 1.0)
    assert report["bindings_created"] == 5
    assert report["keys_bound_twice"] == 2
    assert report["double_bindings_not_named"] == 1
    assert report["details"]["double_bindings_not_named"][0]["order"] == "OutOrderId LFtest-00001"
    assert report["results_lost"] == 1
    assert report["answers_naming_no_binding_of_their_key"] == 1
    # Under refuse, an order left at 409 OutcomeUnknown is held for an operator, not lost.
    orders[2].answers.append(Answer(409, "OutcomeUnknown", 0.01))
    refused = figures(_args("refuse"), orders, bindings, logs, clients, [], [], 1.0)
    assert (refused["results_lost"], refused["held_for_operator"]) == (0, 1)
    assert "NOT 0: double_bindings_not_named" in loadfault.render(report)


def test_the_sweep_check_finds_a_binding_neither_announced_nor_named_as_held():
    orders = [_order(i) for i in range(6)]
    bindings = [{"OutOrderId": o.out_order_id, "SubsId": f"S{o.index}"} for o in orders]
    bindings.append({"OutOrderId": "LFtest-00005", "SubsId": "S5b"})  # re-executed after a kill
    record_of = {o.out_order_id: f"axn:idem:{o.index}" for o in orders}
    lapsed, running = 900.0, 2000.0  # leases; the sweep began at 1000
    records = {
        "axn:idem:0": ("COMPLETED", 0.0),  # S0 announced
        "axn:idem:1": ("UNKNOWN", 0.0),  # held, in the outbox: named
        "axn:idem:2": ("IN_PROGRESS", lapsed),  # killed mid-call, lease out, in the outbox: named
        "axn:idem:3": ("IN_PROGRESS", lapsed),  # killed, but not in the outbox: nobody hears
        "axn:idem:4": ("IN_PROGRESS", running),  # within its lease: in flight, not held
        "axn:idem:5": ("COMPLETED", 0.0),  # S5b announced, S5 named as a possible orphan
    }
    outbox = {"axn:idem:1", "axn:idem:2", "axn:idem:4"}
    answer = {"Code": "PartialFailure", "Checked": 3, "InFlight": 1, "Held": 2, "Remaining": 0}
    sweep = Sweep(answer, 1000.0, record_of, records, outbox, {"S0", "S5b"})
    logs = Logs()
    logs.orphans["axn:idem:5"] = 1
    clients = SimpleNamespace(requests=6, max_in_flight=1)

    def check(sweep: Sweep) -> dict:
        return figures(_args(), orders, bindings, logs, clients, [], [], 1.0, sweep)

    report = check(sweep)
    assert report["bindings_announced"] == 2
    assert report["bindings_named_as_held"] == 2
    assert report["bindings_named_as_possible_orphans"] == 1
    missed = report["details"]["bindings_neither_announced_nor_named_as_held"]
    assert report["bindings_neither_announced_nor_named_as_held"] == 2
    assert [(m["record"], m["in_outbox"]) for m in missed] == [
        ("axn:idem:3", False),
        ("axn:idem:4", True),
    ]
    # A sweep that counts fewer held records than there are: only those it names are taken.
    short = replace(sweep, answer={**answer, "Held": 1, "HeldRecords": [{"Record": "axn:idem:2"}]})
    assert check(short)["bindings_neither_announced_nor_named_as_held"] == 3
    # A sweep that asked for a retry (no counts at all) names nothing as held.
    failed = replace(sweep, answer={"raised": "TransientFailureError"})
    assert check(failed)["bindings_neither_announced_nor_named_as_held"] == 4
    failing = next(line for line in loadfault.render(report).splitlines() if line[:6] == "NOT 0:")
    assert "bindings_neither_announced_nor_named_as_held" in failing


def test_every_option_is_explained():
    out = subprocess.run(
        [sys.executable, "-m", "tools.loadfault", "--help"], cwd=ROOT, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"  -", line) and not line.strip().startswith("-h, --help"):
            described = re.match(r"  -\S.*?\s{2,}\S", line) or re.match(r"\s{8,}\S", lines[i + 1])
            assert described, line
