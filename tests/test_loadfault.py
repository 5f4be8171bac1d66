"""`make loadfault` in miniature: every phase for a moment, the report's invariants hold; and the
parts that decide those invariants (the client's retry rule, the accounting) on their own."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from tests.redisproc import redis_server_binary
from tools import loadfault
from tools.loadfault import MUST_BE_ZERO, PHASES, Answer, Logs, Order, figures, retry_wait

ROOT = Path(__file__).resolve().parents[1]


def test_a_tiny_run_keeps_every_invariant(tmp_path):
    redis_server_binary()  # skips (or fails under CI=true) without one
    out_json = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYPLS_", "AXN_", "ALIBABA_"))}
    run = subprocess.run(
        [sys.executable, "-m", "tools.loadfault", "--phase-seconds", "1", "--orders", "56",
         "--concurrency", "4", "--servers", "2", "--instance-concurrency", "2",
         "--retry-cap", "0.3", "--read-timeout", "0.5", "--seed", "7",
         "--workdir", str(tmp_path / "run"), "--json", str(out_json)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| figure | value | must be |" in run.stdout
    report = json.loads(out_json.read_text())
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
        seed=0,
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
