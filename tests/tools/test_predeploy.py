"""tools/predeploy.py, run as s.yaml's pre-deploy action runs it: a subprocess from the repository
root, with an environment holding no AXN_* variable but the ones a test sets, against
redis-server processes started here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from axn_bind.config import SETTINGS
from tests.redisproc import DURABLE, MEMORY_ONLY, RedisProcesses

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "predeploy.py"
PASSWORD = "s3cr3t-pw"
POOL = "FC100000012345678"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def lines(self, kind: str) -> list[str]:
        prefix = f"predeploy: {kind}: "
        return [line.removeprefix(prefix) for line in self.err_lines if line.startswith(prefix)]


def predeploy(*args: str, python: tuple[str, ...] = (sys.executable,), **env: str) -> Result:
    """Run the script with only the given AXN_* variables (and no PYTHONPATH: it finds src/)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AXN_", "DYPLS_")) and k != "PYTHONPATH"
    }
    proc = subprocess.run(
        [*python, str(SCRIPT), *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert PASSWORD not in result.out + result.err, "the password was printed"
    assert "Traceback" not in result.err, result.err
    return result


def assert_ok(result: Result) -> str:
    """Exit 0 and exactly one stdout line, ``predeploy: ok (…)``; returns what is in brackets."""
    assert result.code == 0, result.err
    assert result.out.count("\n") == 1 and result.out.startswith("predeploy: ok ("), result.out
    assert result.out.rstrip().endswith(")")
    assert not result.lines("refused")
    return result.out.strip()[len("predeploy: ok (") : -1]


def assert_refused(result: Result) -> list[str]:
    assert result.code == 2, (result.out, result.err)
    assert result.out == ""
    refused = result.lines("refused")
    assert refused, result.err
    return refused


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fine(**overrides: str) -> dict[str, str]:
    """Settings that pass, apart from the store URL, which each test sets."""
    return {"AXN_POOL_KEY": POOL, "AXN_UNKNOWN_OUTCOME": "refuse", **overrides}


def unreachable_url() -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{closed_port()}/0"


# -- the one-instance store --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (None, "AXN_IDEMPOTENCY_URL is not set, so the function uses memory://"),
        ("", "AXN_IDEMPOTENCY_URL is empty, so the function uses memory://"),
        ("  ", "AXN_IDEMPOTENCY_URL is empty, so the function uses memory://"),
        ("memory://", "AXN_IDEMPOTENCY_URL is memory://"),
        ("MEMORY://", "AXN_IDEMPOTENCY_URL is memory://"),
    ],
)
def test_the_memory_store_is_refused(value: str | None, said: str) -> None:
    env = fine() if value is None else fine(AXN_IDEMPOTENCY_URL=value)
    (line,) = assert_refused(predeploy(**env))
    assert line.startswith(said + ", which protects one instance only; ")
    assert "a redelivery on another instance binds again" in line
    assert "export AXN_IDEMPOTENCY_URL=" in line
    assert line.endswith("To deploy anyway: AXN_PREDEPLOY_ALLOW=memory.")


@pytest.mark.parametrize("allow", ["memory", "durability,memory", " Memory , "])
def test_allowing_memory_turns_the_refusal_into_a_warning(allow: str) -> None:
    result = predeploy(**fine(AXN_IDEMPOTENCY_URL="memory://", AXN_PREDEPLOY_ALLOW=allow))
    assert assert_ok(result) == "AXN_IDEMPOTENCY_URL: memory://; 1 warning"
    (warning,) = result.lines("warning")
    assert warning.startswith("(allowed by AXN_PREDEPLOY_ALLOW=memory) AXN_IDEMPOTENCY_URL is ")
    assert "protects one instance only" in warning


def test_allowing_durability_does_not_allow_memory() -> None:
    result = predeploy(**fine(AXN_IDEMPOTENCY_URL="memory://", AXN_PREDEPLOY_ALLOW="durability"))
    (line,) = assert_refused(result)
    assert "AXN_IDEMPOTENCY_URL is memory://" in line


def test_an_unknown_allowance_is_refused() -> None:
    result = predeploy(**fine(AXN_IDEMPOTENCY_URL="memory://", AXN_PREDEPLOY_ALLOW="memroy"))
    refused = assert_refused(result)
    assert any(line.startswith("AXN_PREDEPLOY_ALLOW: 'memroy' is not a check") for line in refused)


def test_an_invalid_url_is_refused_without_repeating_it() -> None:
    (line,) = assert_refused(predeploy(**fine(AXN_IDEMPOTENCY_URL=f"postgres://:{PASSWORD}@db/0")))
    assert line.startswith("AXN_IDEMPOTENCY_URL must be memory://")
    assert "postgres" not in line and "db/0" not in line


# -- the other settings ------------------------------------------------------------------------


@pytest.mark.parametrize("pool", [None, "", "   "])
def test_an_empty_pool_key_is_refused(pool: str | None) -> None:
    env = fine(AXN_IDEMPOTENCY_URL=unreachable_url())
    env.pop("AXN_POOL_KEY")
    if pool is not None:
        env["AXN_POOL_KEY"] = pool
    (line,) = assert_refused(predeploy(**env))
    assert line.startswith("AXN_POOL_KEY is empty: ")
    assert "export AXN_POOL_KEY=" in line


@pytest.mark.parametrize("value", ["reexecute", " ReExecute "])
def test_reexecute_is_a_warning_not_a_refusal(value: str) -> None:
    result = predeploy(**fine(AXN_IDEMPOTENCY_URL=unreachable_url(), AXN_UNKNOWN_OUTCOME=value))
    assert assert_ok(result).endswith("; 1 warning")
    (warning,) = result.lines("warning")
    assert warning.startswith("AXN_UNKNOWN_OUTCOME is reexecute: ")
    assert "export AXN_UNKNOWN_OUTCOME=refuse" in warning


def test_an_unset_unknown_outcome_is_judged_by_its_default() -> None:
    """Unset, the function gets SETTINGS' default (s.yaml's too): a warning only for reexecute."""
    env = fine(AXN_IDEMPOTENCY_URL=unreachable_url())
    env.pop("AXN_UNKNOWN_OUTCOME")
    result = predeploy(**env)
    assert_ok(result)
    warnings = result.lines("warning")
    if SETTINGS["AXN_UNKNOWN_OUTCOME"][0] == "reexecute":
        (warning,) = warnings
        assert warning.startswith(
            "AXN_UNKNOWN_OUTCOME is not set, so it is reexecute (the default)"
        )
    else:
        assert warnings == []


def test_an_invalid_unknown_outcome_is_refused() -> None:
    env = fine(AXN_IDEMPOTENCY_URL=unreachable_url(), AXN_UNKNOWN_OUTCOME="retry")
    (line,) = assert_refused(predeploy(**env))
    assert line == "AXN_UNKNOWN_OUTCOME must be reexecute or refuse, got 'retry'."


def test_every_problem_is_its_own_line() -> None:
    result = predeploy(AXN_IDEMPOTENCY_URL="memory://", AXN_UNKNOWN_OUTCOME="x")
    refused = assert_refused(result)
    assert [line.split(" ", 1)[0] for line in refused] == [
        "AXN_IDEMPOTENCY_URL",
        "AXN_POOL_KEY",
        "AXN_UNKNOWN_OUTCOME",
    ]


# -- the Redis -------------------------------------------------------------------------------


def test_an_unreachable_redis_passes_with_a_note() -> None:
    port = closed_port()
    result = predeploy(**fine(AXN_IDEMPOTENCY_URL=f"redis://:{PASSWORD}@127.0.0.1:{port}/0"))
    summary = assert_ok(result)
    assert summary == (
        f"AXN_IDEMPOTENCY_URL: Redis at 127.0.0.1:{port}, not reachable from here, "
        "durability not checked"
    )
    (note,) = result.lines("note")
    assert note.startswith(f"the Redis at 127.0.0.1:{port} (AXN_IDEMPOTENCY_URL) does not accept")
    assert "checked here but by the function when an instance starts" in note
    assert result.err_lines == [f"predeploy: note: {note}"]


def test_a_durable_redis_passes(redis_processes: RedisProcesses) -> None:
    server = redis_processes.start(*DURABLE, "--requirepass", PASSWORD)
    result = predeploy(**fine(AXN_IDEMPOTENCY_URL=server.url(PASSWORD)))
    assert assert_ok(result) == (
        f"AXN_IDEMPOTENCY_URL: Redis at 127.0.0.1:{server.port}, noeviction and persistent"
    )
    assert result.err == ""


def test_a_non_durable_redis_is_refused(redis_processes: RedisProcesses) -> None:
    server = redis_processes.start(
        "--maxmemory-policy", "volatile-lru", "--save", "", "--appendonly", "no",
        "--requirepass", PASSWORD,
    )  # fmt: skip
    result = predeploy(**fine(AXN_IDEMPOTENCY_URL=server.url(PASSWORD)))
    eviction, persistence = assert_refused(result)
    prefix = f"AXN_IDEMPOTENCY_URL: the Redis at 127.0.0.1:{server.port}: "
    assert eviction.startswith(prefix + "maxmemory-policy is volatile-lru: ")
    assert persistence.startswith(prefix + "Redis keeps idempotency records in memory only")
    for line in (eviction, persistence):
        assert line.endswith("To deploy anyway: AXN_PREDEPLOY_ALLOW=durability.")


def test_allowing_durability_deploys_a_non_durable_redis_with_warnings(
    redis_processes: RedisProcesses,
) -> None:
    server = redis_processes.start(*MEMORY_ONLY)
    result = predeploy(**fine(AXN_IDEMPOTENCY_URL=server.url(), AXN_PREDEPLOY_ALLOW="durability"))
    assert assert_ok(result) == f"AXN_IDEMPOTENCY_URL: Redis at 127.0.0.1:{server.port}; 1 warning"
    (warning,) = result.lines("warning")
    assert warning.startswith("(allowed by AXN_PREDEPLOY_ALLOW=durability) AXN_IDEMPOTENCY_URL: ")
    assert "in memory only" in warning


def test_a_redis_refusing_config_without_aof_is_refused(redis_processes: RedisProcesses) -> None:
    server = redis_processes.start(*MEMORY_ONLY, "--rename-command", "CONFIG", "")
    (line,) = assert_refused(predeploy(**fine(AXN_IDEMPOTENCY_URL=server.url())))
    assert "Persistence could not be confirmed" in line


def test_a_wrong_password_is_refused_without_printing_it(redis_processes: RedisProcesses) -> None:
    server = redis_processes.start(*DURABLE, "--requirepass", "right-one")
    (line,) = assert_refused(predeploy(**fine(AXN_IDEMPOTENCY_URL=server.url(PASSWORD))))
    assert line.startswith(
        f"The idempotency store at 127.0.0.1:{server.port} (AXN_IDEMPOTENCY_URL)"
    )
    assert "its durability could not be checked" in line
    assert "right-one" not in line


def test_without_redis_py_the_check_runs_in_the_project_virtualenv(
    redis_processes: RedisProcesses,
) -> None:
    """``python3 -S`` has no site-packages, so no redis-py: as a deployer's system python3."""
    server = redis_processes.start(*DURABLE)
    result = predeploy(python=(sys.executable, "-S"), **fine(AXN_IDEMPOTENCY_URL=server.url()))
    if (ROOT / ".venv" / "bin" / "python").is_file():
        assert assert_ok(result).endswith(", noeviction and persistent")
    else:
        (line,) = assert_refused(result)
        assert "redis-py is not installed" in line


def test_help_documents_the_override() -> None:
    result = predeploy("--help")
    assert result.code == 0
    assert "AXN_PREDEPLOY_ALLOW" in result.out and "memory" in result.out
    assert "durability" in result.out
