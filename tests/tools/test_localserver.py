"""`make run` as a user runs it: the README's curl binds through the local trigger."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_serves_the_readme_curl():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.localserver", "--port", "0", "--emulator-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            k: v for k, v in os.environ.items() if not k.startswith(("DYPLS_", "AXN_", "ALIBABA_"))
        },
    )
    try:
        banner = ""  # the instance's log lines (instance_started), then the three banner lines
        for _ in range(10):
            banner += proc.stdout.readline()
            if "Try: curl" in banner:
                break
        url = re.search(r"function on (http://\S+)", banner).group(1)
        assert "curl -s -X POST" in banner
        events = Path(re.search(r"announced to: file://(\S+)", banner).group(1))
        assert events == ROOT / "build" / "events.jsonl"  # make run announces there by default
        before = events.read_text().count("\n") if events.exists() else 0
        answer = requests.post(
            url, json={"PhoneNoA": "13900000001", "TtlSeconds": 3600}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["Code"] == "OK"
        assert body["SecretBindDTO"]["SecretNo"].startswith("1")
        announced = json.loads(events.read_text().splitlines()[before])
        assert announced["data"]["SubsId"] == body["SecretBindDTO"]["SubsId"]
        wrong = requests.get(url, timeout=10)
        assert wrong.status_code == 405
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    logs = proc.stdout.read()
    assert "13900000001" not in logs  # the local function logs masked numbers only
    assert "139****0001" in logs


def test_make_invoke_runs_an_event_file_against_a_fresh_emulator():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYPLS_", "AXN_", "ALIBABA_"))}
    out = subprocess.run(
        [sys.executable, "-m", "tools.invoke", "events/mns_queue_batch.json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["Code"] == "OK"
    assert {r["Result"] for r in report["Records"]} == {"bound"}


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DYPLS_", "AXN_", "ALIBABA_"))}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env=env, check=False,
    )  # fmt: skip


def test_make_invoke_with_a_missing_file_says_which_and_lists_the_samples():
    out = _run("-m", "tools.invoke", "events/no-such-event.json")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "cannot read the event file events/no-such-event.json" in out.stderr
    assert "direct.json" in out.stderr  # the samples it could have used


def test_make_invoke_without_event_says_how_to_give_one():
    # STAMP= drops the target's virtualenv prerequisite: the check of EVENT comes first either
    # way, and the suite (run from another virtualenv, or on another Python) never rebuilds .venv.
    out = subprocess.run(
        ["make", "--no-print-directory", "invoke", "EVENT=", "STAMP="], cwd=ROOT,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "make invoke needs an event file: make invoke EVENT=events/<file>.json" in out.stderr


def test_make_run_on_a_busy_port_names_the_setting_to_change():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _run("-m", "tools.localserver", "--port", str(port), "--emulator-port", "0")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "make run PORT=" in out.stderr


HELPED = [
    ("-m", "tools.localserver"),
    ("-m", "tools.invoke"),
    ("-m", "tools.dypls_emulator"),
    ("-m", "tools.idem"),
    ("-m", "bench"),
    ("-m", "tools.mutate"),
    ("-m", "tools.openapi"),
    ("tools/package.py",),
    ("tools/predeploy.py",),
]


@pytest.mark.parametrize("tool", HELPED, ids=lambda t: t[-1])
def test_every_option_of_every_tool_is_explained(tool):
    out = _run(*tool, "--help")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    options = [i for i, line in enumerate(lines) if re.match(r"  -", line)]
    assert options, out.stdout
    for i in options:
        line = lines[i]
        if line.strip().startswith(("-h, --help", "-h")) and "help" in line:
            continue
        described = re.match(r"  -\S.*?\s{2,}\S", line) or (
            i + 1 < len(lines) and re.match(r"\s{8,}\S", lines[i + 1])
        )
        assert described, f"{' '.join(tool)} --help: no description for {line.strip()!r}"


def test_make_help_lists_every_target():
    out = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z]+):", makefile, flags=re.MULTILINE)
    for target in targets:
        assert re.search(rf"^make {target}\b", out.stdout, flags=re.MULTILINE), target
