"""Mutation check of the bind path: break one rule at a time and see whether a test notices.

    python -m tools.mutate                 # named mutants, then automatic ones (make mutate)
    python -m tools.mutate --named         # only the named mutants (about a minute)
    python -m tools.mutate --list          # list the mutants, run nothing
    python -m tools.mutate --json out.json # also write every result

Two kinds of mutant:

* **Named** (``NAMED`` below): one rule of the bind path each, written as an exact replacement in
  one file, with the tests expected to kill it. Every named mutant must be killed: the command
  exits 1 if one survives, or if its text no longer matches the code (update the mutant with
  the code).
* **Automatic**: every comparison, boolean operator, ``not``, number, ``min``/``max``, arithmetic
  operator, ``if`` condition, ``return`` value, bare call statement and ``raise`` in the bind
  path's modules (``FILES``), changed one at a time. Log calls, f-strings, docstrings,
  annotations and string constants are left alone: they change words, not behaviour. The score
  is killed / total; survivors are listed with file, line and change. Some survivors are
  equivalent mutants (``x <= 0`` → ``x < 0`` where x is never 0); read them before acting.

Each mutant runs in a private copy of the repository (the working tree is never touched), with
``pytest -x`` on the tests named (``FILES`` maps each module to its tests), without the tests that need the
shared Redis (``-m "not redis and not slow"``), two at a time. A test run that times out
counts as killed; one where pytest itself fails (exit status other than 0 or 1) is reported as
an error and left out of the score. ``--root``, ``--files`` and ``--tests`` point the automatic mutants at
another checkout, e.g. an older commit, to compare scores.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

ROOT = Path(__file__).resolve().parent.parent

# The bind path's modules, each with the tests that exercise it (fastest first: with -x, a mutant
# is usually killed in seconds, and a survivor costs one run of them all).
_CORE = ("tests/unit/test_bind_path.py", "tests/e2e/test_http.py", "tests/e2e/test_batch.py")
_STORE = ("tests/idempotency/test_store_contract.py", "tests/e2e/test_idempotency.py")
_PUBLISH = "tests/publish/test_announce.py"  # the announcement paths of the service and the app
FILES: dict[str, tuple[str, ...]] = {
    "src/axn_bind/budget.py": _CORE,
    "src/axn_bind/backoff.py": ("tests/unit/test_backoff.py", *_CORE),
    "src/axn_bind/dypls/__init__.py": _CORE,
    "src/axn_bind/dypls/retry.py": _CORE,
    "src/axn_bind/dypls/classify.py": ("tests/unit/test_classify.py", *_CORE),
    "src/axn_bind/dypls/codes.py": ("tests/unit/test_classify.py", *_CORE),
    "src/axn_bind/dypls/transport.py": ("tests/unit/test_transport.py", "tests/e2e/test_http.py"),
    "src/axn_bind/idempotency/guard.py": (*_CORE, *_STORE, "tests/e2e/test_exactly_once.py"),
    "src/axn_bind/idempotency/keys.py": (*_CORE, *_STORE),
    "src/axn_bind/service.py": (*_CORE, *_STORE, "tests/e2e/test_exactly_once.py", _PUBLISH),
    "src/axn_bind/outcome.py": (
        *_CORE,
        "tests/e2e/test_triggers.py",
        "tests/e2e/test_exactly_once.py",
        _PUBLISH,
    ),
    "src/axn_bind/app.py": (
        *_CORE,
        "tests/e2e/test_triggers.py",
        "tests/e2e/test_exactly_once.py",
        _PUBLISH,
    ),
}
TIMEOUT = 300.0
PYTEST = (sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider")
PYTEST += ("-m", "not redis and not slow", "--hypothesis-seed=0")


@dataclass(frozen=True)
class Named:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


CLASSIFY, BUDGET, RETRY = (
    "src/axn_bind/dypls/classify.py",
    "src/axn_bind/budget.py",
    "src/axn_bind/dypls/retry.py",
)
TRANSPORT, GUARD = "src/axn_bind/dypls/transport.py", "src/axn_bind/idempotency/guard.py"
BIND_PATH, TRANSPORT_TESTS = ("tests/unit/test_bind_path.py",), ("tests/unit/test_transport.py",)
CLASSIFY_TESTS = ("tests/unit/test_classify.py",)

NAMED: tuple[Named, ...] = (
    # -- the six that survived the suite before the bind path was reshaped --------------------
    Named(
        "an upstream message echoing the string to sign is passed on",
        CLASSIFY,
        'cleaned = scrub(_ECHO.sub("", str(text or "")).strip())',
        'cleaned = scrub(str(text or "").strip())',
        CLASSIFY_TESTS,
    ),
    Named(
        "the V3 parameters travel in the URL, where urllib3 logs them at DEBUG",
        "src/axn_bind/dypls/__init__.py",
        "date=when,\n            nonce=nonce,\n            form=True,",
        "date=when,\n            nonce=nonce,\n            form=False,",
        ("tests/unit/test_signing_sdk.py", "tests/e2e/test_http.py"),
    ),
    Named(
        "a signing failure passes the gateway's message on",
        "src/axn_bind/dypls/codes.py",
        "    pass_message=False,\n)\nCLOCK",
        "    pass_message=True,\n)\nCLOCK",
        CLASSIFY_TESTS,
    ),
    Named(
        "scrub() masks nothing",
        "src/axn_bind/log.py",
        "return _CANDIDATE.sub(lambda run: _mask_run(run, budget), text)",
        "return text",
        CLASSIFY_TESTS,
    ),
    Named(
        "a retry is started without checking the time left",
        RETRY,
        "if not budget.can_start_call(after=wait):",
        "if False:",
        BIND_PATH,
    ),
    Named(
        "the gateway's x-acs-retry-after hint is ignored",
        CLASSIFY,
        'hint = hint_seconds(headers.get("x-acs-retry-after"), per_second=1000)',
        "hint = None",
        BIND_PATH + CLASSIFY_TESTS,
    ),
    Named(
        "the lease lasts 1 s",
        BUDGET,
        "return min(self.remaining(), MAX_LEASE_SECONDS) + LEASE_SLACK_SECONDS",
        "return 1.0",
        BIND_PATH,
    ),
    Named(
        "TtlSeconds is fingerprinted as the Expiration it produced",
        "src/axn_bind/service.py",
        "    if request.TtlSeconds is not None:\n",
        "    if False:\n",
        BIND_PATH,
    ),
    # -- the rules of the exactly-once issue ----------------------------------------------------
    Named(
        "a 2xx that may have bound releases the key",
        CLASSIFY,
        "if success and known is None:",
        "if False:",
        CLASSIFY_TESTS + BIND_PATH,
    ),
    Named(
        "SignatureNonceUsed is retried",
        "src/axn_bind/dypls/codes.py",
        '"SignatureNonceUsed": NONCE_REUSED,',
        '"SignatureNonceUsed": THROTTLED,',
        CLASSIFY_TESTS + BIND_PATH,
    ),
    Named(
        "a call starts whatever time is left",
        BUDGET,
        "        if self.can_start_call():\n            return\n",
        "        return\n",
        BIND_PATH,
    ),
    Named(
        "no time is kept back to record the outcome",
        BUDGET,
        "end = min(end, self._end - self.record_seconds)",
        "end = min(end, self._end)",
        BIND_PATH,
    ),
    Named(
        "each socket read gets a fresh timeout",
        TRANSPORT,
        "self._sock.settimeout(min(left, 3600.0))",
        "self._sock.settimeout(_progress.read_timeout)",
        TRANSPORT_TESTS,
    ),
    Named(
        "a failed TLS handshake counts as sent",
        TRANSPORT,
        "        _progress.stage = CONNECTING\n",
        "        _progress.stage = SENT\n",
        TRANSPORT_TESTS,
    ),
    Named(
        "a pooled connection idle for long is reused",
        TRANSPORT,
        "            conn.close()\n",
        "            pass\n",
        TRANSPORT_TESTS,
    ),
    Named(
        "a defect between begin and finish leaks the lease",
        GUARD,
        '        _finish(store, key, token, Outcome.from_error(error, ""), ttl_seconds)\n',
        "",
        BIND_PATH,
    ),
    Named(
        "a finish the store did not confirm goes unreported",
        GUARD,
        "    if not done:\n",
        "    if False:\n",
        BIND_PATH,
    ),
    Named(
        "a retry hint is not capped by DYPLS_BACKOFF_MAX_MS",
        RETRY,
        "return max(0.0, min(hint, self.backoff_max))",
        "return max(0.0, hint)",
        BIND_PATH,
    ),
    Named(
        "a batch defect is answered as delivered",
        "src/axn_bind/app.py",
        "        if isinstance(invocation, Batch):  # never answer a batch that was not fully reported\n",
        "        if False:\n",
        ("tests/e2e/test_batch.py",),
    ),
    Named(
        "an asynchronous direct invocation never raises",
        "src/axn_bind/app.py",
        'if asynchronous and (outcome.transient or outcome.body.get("Announced") is False):',
        "if False:",
        ("tests/e2e/test_batch.py",),
    ),
)


# -- automatic mutants ------------------------------------------------------------------------

_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.And: ast.Or,
    ast.Or: ast.And,
}
_SKIP_FIELDS = {"annotation", "returns", "type_comment", "decorator_list"}

Setter = Callable[[ast.AST], None]


@dataclass
class Site:
    line: int
    change: str
    apply: Callable[[], None]


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_log_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("log", "log_defect")
    )


def _statement_sites(body: list[ast.stmt], index: int) -> Iterator[Site]:
    node = body[index]
    line = node.lineno

    def replace(new: ast.stmt) -> Callable[[], None]:
        return lambda: body.__setitem__(index, ast.copy_location(new, node))

    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield Site(line, "call statement removed", replace(ast.Pass()))
    elif isinstance(node, ast.Raise):
        yield Site(line, "raise removed", replace(ast.Pass()))
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield Site(line, "returns None", replace(ast.Return(value=ast.Constant(None))))
    elif isinstance(node, (ast.If, ast.While)):
        test = node.test
        yield Site(
            line,
            "condition negated",
            lambda: setattr(node, "test", ast.UnaryOp(op=ast.Not(), operand=test)),
        )


def _expression_sites(node: ast.AST, setter: Setter) -> Iterator[Site]:
    line = getattr(node, "lineno", 0)
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _SWAP:
                new = _SWAP[type(op)]
                yield Site(
                    line,
                    f"{type(op).__name__} → {new.__name__}",
                    lambda i=i, new=new: node.ops.__setitem__(i, new()),
                )
    elif isinstance(node, (ast.BoolOp, ast.BinOp)) and type(node.op) in _SWAP:
        new = _SWAP[type(node.op)]
        yield Site(
            line, f"{type(node.op).__name__} → {new.__name__}", lambda: setattr(node, "op", new())
        )
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield Site(line, "not removed", lambda: setter(node.operand))
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield Site(line, f"{value} → {not value}", lambda: setter(ast.Constant(not value)))
        elif isinstance(value, int):
            yield Site(line, f"{value} → {value + 1}", lambda: setter(ast.Constant(value + 1)))
        elif isinstance(value, float):
            new = value * 2 if value else 1.0
            yield Site(line, f"{value:g} → {new:g}", lambda: setter(ast.Constant(new)))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        swap = {"min": "max", "max": "min"}.get(node.func.id)
        if swap:
            func = node.func
            yield Site(line, f"{func.id} → {swap}", lambda: setattr(func, "id", swap))


def _sites(node: ast.AST) -> Iterator[Site]:
    for field, value in ast.iter_fields(node):
        if field in _SKIP_FIELDS:
            continue
        if isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, ast.AST):
                    continue
                if isinstance(item, ast.stmt):
                    if _is_docstring(item) or isinstance(item, ast.Assert):
                        continue
                    if isinstance(item, ast.Expr) and _is_log_call(item.value):
                        yield from _statement_sites(value, index)
                        continue
                    yield from _statement_sites(value, index)
                else:

                    def setter(new: ast.AST, items: list = value, i: int = index) -> None:
                        items[i] = new

                    yield from _child(item, setter)
                    continue
                yield from _sites(item)
        elif isinstance(value, ast.AST):

            def setter(new: ast.AST, parent: ast.AST = node, name: str = field) -> None:
                setattr(parent, name, new)

            yield from _child(value, setter)


def _child(node: ast.AST, setter: Setter) -> Iterator[Site]:
    if _is_log_call(node) or isinstance(node, ast.JoinedStr):
        return
    yield from _expression_sites(node, setter)
    yield from _sites(node)


@dataclass(frozen=True)
class Mutant:
    label: str
    path: str
    source: str  # the whole mutated file
    tests: tuple[str, ...]
    named: bool


def automatic(root: Path, files: dict[str, tuple[str, ...]]) -> list[Mutant]:
    mutants = []
    for path, tests in files.items():
        text = (root / path).read_text()
        count = sum(1 for _ in _sites(ast.parse(text)))
        original = ast.unparse(ast.parse(text))
        for k in range(count):
            tree = ast.parse(text)
            site = list(_sites(tree))[k]
            site.apply()
            mutated = ast.unparse(ast.fix_missing_locations(tree))
            if mutated != original:
                label = f"{path}:{site.line}: {site.change}"
                mutants.append(Mutant(label, path, mutated, tests, named=False))
    return mutants


def named(root: Path) -> tuple[list[Mutant], list[str]]:
    mutants, stale = [], []
    for m in NAMED:
        text = (root / m.path).read_text()
        if text.count(m.old) != 1:
            stale.append(f"{m.name}: {m.path} holds the text to replace {text.count(m.old)} times")
            continue
        mutants.append(Mutant(m.name, m.path, text.replace(m.old, m.new), m.tests, named=True))
    return mutants, stale


# -- running ------------------------------------------------------------------------------------


def _copy(root: Path, into: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],  # noqa: S607
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = root / name.decode()
        if source.is_file():
            target = into / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _run(copy: Path, mutant: Mutant) -> tuple[str, float]:
    target = copy / mutant.path
    original = target.read_text()
    target.write_text(mutant.source)
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [*PYTEST, *mutant.tests],
            check=False,
            cwd=copy,
            capture_output=True,
            timeout=TIMEOUT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        # Killed only when pytest itself says a test failed or errored (a collection error the
        # mutant caused counts); a run that never got that far (no interpreter, no pytest)
        # says nothing about the mutant and is reported as an error, not a kill.
        summary = done.stdout.decode(errors="replace").strip().splitlines()[-1:]
        said = bool(summary) and re.search(r"\d+ (failed|errors?)\b", summary[0]) is not None
        if done.returncode == 0:
            verdict = "survived"
        elif done.returncode in (1, 2) and said:
            verdict = "killed"
        else:
            verdict = f"error (exit {done.returncode})"
    except subprocess.TimeoutExpired:
        verdict = "killed (timeout)"
    finally:
        target.write_text(original)
    return verdict, time.monotonic() - started


def run_all(root: Path, mutants: list[Mutant], jobs: int) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="axn-mutate-") as tmp:
        copies: Queue[Path] = Queue()
        for j in range(jobs):
            copy = Path(tmp) / f"w{j}"
            _copy(root, copy)
            copies.put(copy)
        # The unmutated code must pass every test file used, or no verdict means anything.
        first = copies.get()
        for tests in sorted({m.tests for m in mutants}):
            path = mutants[0].path
            verdict, _ = _run(
                first, Mutant("baseline", path, (first / path).read_text(), tests, False)
            )
            if verdict != "survived":
                raise SystemExit(f"the unmutated code does not pass {' '.join(tests)}: {verdict}")
        copies.put(first)

        def one(mutant: Mutant) -> dict[str, object]:
            copy = copies.get()
            try:
                verdict, seconds = _run(copy, mutant)
            finally:
                copies.put(copy)
            mark = "  " if verdict.startswith("killed") else "!!" if verdict == "survived" else "??"
            print(f"{mark} {verdict:17} {seconds:5.1f}s  {mutant.label}", flush=True)
            return {"mutant": mutant.label, "named": mutant.named, "result": verdict}

        with ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(one, mutants))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.mutate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--named", action="store_true", help="run only the named mutants")
    parser.add_argument("--auto", action="store_true", help="run only the automatic mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and run nothing")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help="run only mutants whose label contains one of these texts, e.g. budget.py:72",
    )
    parser.add_argument(
        "--survivors",
        type=Path,
        metavar="JSON",
        help="run again the mutants that survived (or could not be judged) in an earlier --json file",
    )
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (default 2)")
    parser.add_argument("--json", type=Path, help="write every result to this JSON file")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="checkout to mutate (default: this one)"
    )
    parser.add_argument(
        "--files", nargs="+", help="files for automatic mutants (default: the bind path)"
    )
    parser.add_argument("--tests", nargs="+", help="tests run for --files")
    args = parser.parse_args(argv)

    mutants: list[Mutant] = []
    stale: list[str] = []
    if not args.auto:
        mutants, stale = named(args.root)
    if not args.named:
        files = dict.fromkeys(args.files, tuple(args.tests or ())) if args.files else FILES
        mutants += automatic(args.root, files)
    if args.only:
        mutants = [m for m in mutants if any(text in m.label for text in args.only)]
    if args.survivors:
        earlier = json.loads(args.survivors.read_text())["results"]
        alive = {r["mutant"] for r in earlier if not str(r["result"]).startswith("killed")}
        mutants = [m for m in mutants if m.label in alive]
    if args.list:
        for m in mutants:
            print(("named  " if m.named else "auto   ") + m.label)
        print(f"{len(mutants)} mutants", *stale, sep="\n")
        return 1 if stale else 0
    for line in stale:
        print(f"!! stale named mutant: {line}")
    results = run_all(args.root, mutants, max(1, args.jobs))
    summary = {}
    for kind in (True, False):
        part = [
            r for r in results if r["named"] is kind and not str(r["result"]).startswith("error")
        ]
        errors = sum(
            1 for r in results if r["named"] is kind and str(r["result"]).startswith("error")
        )
        if errors:
            print(f"{errors} {'named' if kind else 'automatic'} mutant(s) could not be judged")
        if part:
            killed = sum(str(r["result"]).startswith("killed") for r in part)
            summary["named" if kind else "automatic"] = {
                "killed": killed,
                "total": len(part),
                "score": round(killed / len(part), 3),
            }
    for kind, s in summary.items():
        print(f"{kind}: {s['killed']}/{s['total']} killed ({s['score']:.1%})")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "results": results}, indent=1) + "\n")
    named_survivors = [r for r in results if r["named"] and r["result"] == "survived"]
    return 1 if stale or named_survivors else 0


if __name__ == "__main__":
    sys.exit(main())
