"""What a cold start imports: only what the triggered path needs.

A fresh interpreter imports ``index``, runs ``initialize`` and serves one direct invocation
against the emulator (memory store, nothing announced); the modules it then holds are checked.
Every optional dependency it does not need would be paid for on every cold start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.dypls_emulator import DEFAULT_POOL_KEY
from tools.fc_local import local_env

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, sys
    sys.path[:0] = [sys.argv[1]]
    import index
    from types import SimpleNamespace
    context = SimpleNamespace(request_id="cold-1", function=SimpleNamespace(name="axn-bind", timeout=30))
    index.initialize(context)
    answer = index.handler(sys.argv[2].encode(), context)
    print(json.dumps({"code": answer.get("Code"), "modules": sorted(sys.modules)}))
    """
)

# Imported only when configured: the Redis store, publish targets and their clients.
OPTIONAL = ("redis", "pika", "fc2", "axn_bind.publish", "axn_bind.idempotency.redis_store")
# The official SDK and its runtime: the function never needs them (bench/requirements.txt only).
OFFICIAL_SDK = ("alibabacloud", "Tea", "darabonba", "alibabacloud_tea_openapi")


@pytest.fixture
def cold_direct_bind(emulator) -> set[str]:
    emulator.reset()
    env = {**local_env(emulator.url), "AXN_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin"}
    request = json.dumps({"PhoneNoA": "13900000001", "TtlSeconds": 600, "OutOrderId": "cold-1"})
    proc = subprocess.run(
        [sys.executable, "-I", "-c", CHILD, str(ROOT / "src"), request],
        env={**env, "AXN_POOL_KEY": DEFAULT_POOL_KEY},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == "OK", report
    return set(report["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_the_direct_path_imports_no_optional_dependency(cold_direct_bind):
    assert not _loaded(cold_direct_bind, OPTIONAL)


def test_the_function_never_imports_the_official_sdk(cold_direct_bind):
    assert not _loaded(cold_direct_bind, OFFICIAL_SDK)
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src").rglob("*.py"))
    for name in OFFICIAL_SDK:
        assert f"import {name}" not in sources and f"from {name}" not in sources, name


def test_the_direct_path_defines_no_dataclass(cold_direct_bind):
    """``@dataclass`` compiles its generated methods with ``exec`` as the module loads: 1-2 ms a
    frozen class on python3.10, paid on every cold start. The records of the direct path are
    NamedTuples (about 0.25 ms a class); dataclasses stay in the optional publish targets."""
    import ast

    found = []
    for name in _loaded(cold_direct_bind, ("axn_bind",)):
        parts = name.split(".")
        path = ROOT / "src" / Path(*parts).with_suffix(".py")
        if not path.is_file():
            path = ROOT / "src" / Path(*parts) / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            marks = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
            if any(getattr(m, "id", None) == "dataclass" for m in marks):
                found.append(f"{name}.{node.name}")
    assert len(_loaded(cold_direct_bind, ("axn_bind",))) > 10  # the walk saw the package
    assert not found, "dataclasses imported on the direct path: " + ", ".join(found)
