"""The emulator as a separate process, started with `python -m tools.dypls_emulator`."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tools.dypls_emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_POOL_KEY,
    DEFAULT_STS_ACCESS_KEY_ID,
    EmulatorAdmin,
)
from tools.dypls_emulator.client import SignedClient
from tools.dypls_emulator.clock import format_shanghai, format_utc_stamp

ROOT = Path(__file__).resolve().parents[2]


def test_cli_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.dypls_emulator", "--port", "0", "--max-extensions", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        assert DEFAULT_ACCESS_KEY_ID in line
        assert DEFAULT_STS_ACCESS_KEY_ID in line
        assert DEFAULT_POOL_KEY in line
        assert DEFAULT_ACCESS_KEY_SECRET not in line
        url = match.group(1)
        admin = EmulatorAdmin(url)
        admin.wait_ready()
        info = admin.info()
        assert info["pools"][0]["max_extensions_per_number"] == 1  # type: ignore[index]

        admin.set_clock_offset(3600)
        client = SignedClient(url)
        now = time.time() + 3600
        params = {
            "PoolKey": DEFAULT_POOL_KEY,
            "PhoneNoA": "13900000001",
            "Expiration": format_shanghai(now + 90),
        }
        reply = client.v3("BindAxnExtension", params, date=format_utc_stamp(now))
        assert reply.json()["Code"] == "OK"
        assert reply.json()["SecretBindDTO"]["SubsId"] == admin.bindings()[0]["SubsId"]  # type: ignore[index]
        admin.add_fault("bind_then_drop")
        assert [f["kind"] for f in admin.faults()] == ["bind_then_drop"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "13900000001" not in err
