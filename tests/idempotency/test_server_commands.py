"""No test runs a server-wide Redis command on a server it did not start.

``SCRIPT FLUSH``, ``FLUSHALL``, ``CONFIG SET``/``CONFIG REWRITE`` and ``DEBUG`` act on the whole server:
on a developer's own Redis (``AXN_TEST_REDIS_URL``) they would reach far past the test database.
A test may send one only to a server of its own, started through the ``redis_processes``
fixture; this reads every test file and fails on a call anywhere else.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SERVER_WIDE = {
    "script_flush",
    "flushall",
    "config_set",
    "config_rewrite",
    "debug_object",
}


def _offences(path: Path, root: Path = TESTS.parent) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        own_server = any(a.arg == "redis_processes" for a in func.args.args)
        for node in ast.walk(func):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr.lower()
            if name not in SERVER_WIDE or own_server:
                continue
            found.append(f"{path.relative_to(root)}:{node.lineno} {func.name} calls {name}")
    return found


def test_server_wide_commands_go_only_to_servers_the_test_started():
    offences = [o for path in sorted(TESTS.rglob("*.py")) for o in _offences(path)]
    assert offences == []


def test_the_check_sees_a_server_wide_command_on_the_shared_server(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "def test_a(redis_url):\n    admin = make(redis_url)\n    admin.script_flush()\n"
        "def test_b(redis_processes):\n    admin = make(redis_processes)\n    admin.flushall()\n"
    )
    found = _offences(sample, tmp_path)
    assert [o.split(" ", 1)[1] for o in found] == ["test_a calls script_flush"]
