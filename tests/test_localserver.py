"""`make run` as a user runs it: the README's curl binds through the local trigger."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


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
        banner = proc.stdout.readline() + proc.stdout.readline()
        url = re.search(r"function on (http://\S+)", banner).group(1)
        assert "curl -s -X POST" in banner
        answer = requests.post(
            url, json={"PhoneNoA": "13900000001", "TtlSeconds": 3600}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["Code"] == "OK"
        assert body["SecretBindDTO"]["SecretNo"].startswith("1")
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
