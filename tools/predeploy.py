"""Pre-deploy check: refuse a deployment that cannot keep one binding per order.

Run from the repository root (the ``pre-deploy`` action in ``s.yaml`` runs it before
``make package``)::

    python3 tools/predeploy.py

It reads the variables that ``s deploy`` turns into function settings (``${env('NAME', …)}`` in
``s.yaml``) from its own environment. It refuses, with exit status 2 and one line per problem
on stderr, each naming the variable to set, when:

* ``AXN_IDEMPOTENCY_URL`` is unset, empty or ``memory://``: that store protects one instance
  only, and a redelivery on another instance binds again (override: ``memory``);
* ``AXN_IDEMPOTENCY_URL`` is not a store URL the function accepts;
* ``AXN_POOL_KEY`` is empty;
* ``AXN_UNKNOWN_OUTCOME`` is neither ``reexecute`` nor ``refuse``;
* the Redis named by ``AXN_IDEMPOTENCY_URL`` accepts a connection from this machine within 2 s
  and ``RedisStore.durability_problems()`` reports a problem (an evicting ``maxmemory-policy``,
  no persistence, persistence that cannot be confirmed), or the server cannot be asked (wrong
  password, TLS failure), or redis-py is missing here (override: ``durability``).

It warns without refusing when ``AXN_UNKNOWN_OUTCOME`` is ``reexecute`` (set, or unset while that
is the default in ``axn_bind.config.SETTINGS``, which ``s.yaml`` repeats): a retry after an
unknown outcome binds again and may leave an orphan binding, an operator's choice.

When the Redis does not accept a connection within 2 s (usual: it is inside a VPC that only the
function reaches), one note says so and the check passes; the durability of that Redis is left to
the function, which checks it when an instance starts.

``AXN_PREDEPLOY_ALLOW`` is a comma-separated list of refusals to turn into warnings:
``memory`` (deploy with the one-instance ``memory://`` store) and ``durability`` (deploy
although the Redis check failed or could not run). Any other entry is refused.

The Redis check needs redis-py. When the interpreter running the script lacks it, the script
runs itself again with the project virtualenv's interpreter (``.venv/bin/python``, built by
``make``); without either, a reachable Redis is refused as unchecked (override: ``durability``).

Output never contains the URL or its password: a Redis is named by host:port only. Exit status
0 prints one line, ``predeploy: ok (…)``, on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from axn_bind.config import SETTINGS  # noqa: E402 - needs src/ on sys.path
from axn_bind.errors import ConfigurationError  # noqa: E402
from axn_bind.idempotency import MemoryStore, StoreUnavailableError, open_store  # noqa: E402

URL_VAR = "AXN_IDEMPOTENCY_URL"
POOL_VAR = "AXN_POOL_KEY"
OUTCOME_VAR = "AXN_UNKNOWN_OUTCOME"
ALLOW_VAR = "AXN_PREDEPLOY_ALLOW"
ALLOWABLE = ("memory", "durability")
REACH_TIMEOUT = 2.0
EXIT_REFUSED = 2
URL_EXAMPLE = "rediss://:PASSWORD@HOST:6379/0"


@dataclass
class Report:
    allow: frozenset[str]
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    store: str = ""

    def problem(self, text: str, allowed_by: str | None = None) -> None:
        """A refusal, or a warning when ``allowed_by`` is listed in AXN_PREDEPLOY_ALLOW."""
        if allowed_by is not None and allowed_by in self.allow:
            self.warnings.append(f"(allowed by {ALLOW_VAR}={allowed_by}) {text}")
        elif allowed_by is not None:
            self.refusals.append(f"{text} To deploy anyway: {ALLOW_VAR}={allowed_by}.")
        else:
            self.refusals.append(text)


def parse_allow(env: Mapping[str, str]) -> tuple[frozenset[str], list[str]]:
    entries = [e.strip().lower() for e in (env.get(ALLOW_VAR) or "").split(",") if e.strip()]
    unknown = sorted({e for e in entries if e not in ALLOWABLE})
    errors = [
        f"{ALLOW_VAR}: {e!r} is not a check that can be allowed; use memory, durability or both "
        "(comma-separated)."
        for e in unknown
    ]
    return frozenset(e for e in entries if e in ALLOWABLE), errors


def redis_importable() -> bool:
    try:
        importlib.import_module("redis")
    except ImportError:
        return False
    return True


def project_python() -> Path | None:
    """The project virtualenv's interpreter (``.venv``, built by ``make``), unless running it."""
    venv = ROOT / ".venv"
    python = venv / "bin" / "python"
    if not python.is_file() or Path(sys.prefix).resolve() == venv.resolve():
        return None
    return python


def reachable(host: str, port: int) -> str | None:
    """None when ``host:port`` accepts a TCP connection within REACH_TIMEOUT, else why not."""
    try:
        socket.create_connection((host, port), timeout=REACH_TIMEOUT).close()
    except OSError as exc:
        return str(exc) or type(exc).__name__
    return None


def check_store(env: Mapping[str, str], report: Report) -> None:
    raw = env.get(URL_VAR)
    url = (raw or "").strip()
    forgets = (
        "which protects one instance only; a redelivery on another instance binds again; "
        f"export {URL_VAR}={URL_EXAMPLE} (or redis://) before `s deploy`."
    )
    if not url:
        how = "is not set" if raw is None else "is empty"
        report.problem(f"{URL_VAR} {how}, so the function uses memory://, {forgets}", "memory")
        report.store = "memory://"
        return
    try:
        store = open_store(url, connect_timeout=REACH_TIMEOUT, socket_timeout=REACH_TIMEOUT)
    except ConfigurationError as exc:  # names the variable, never repeats the value
        report.problem(exc.message)
        return
    except ImportError:  # a valid Redis URL, and no redis-py to open it with
        store = None
    if isinstance(store, MemoryStore):
        report.problem(f"{URL_VAR} is memory://, {forgets}", "memory")
        report.store = "memory://"
        return

    parts = urlsplit(url)  # open_store has validated it: a Redis URL with a host
    host, port = parts.hostname or "?", parts.port or 6379
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    why = reachable(host, port)
    if why is not None:
        if store is not None:
            store.close()
        report.notes.append(
            f"the Redis at {where} ({URL_VAR}) does not accept connections from this machine "
            f"within {REACH_TIMEOUT:g} s ({why}; usual when it is inside a VPC): its durability "
            "is not checked here but by the function when an instance starts."
        )
        report.store = f"Redis at {where}, not reachable from here, durability not checked"
        return
    report.store = f"Redis at {where}"
    if store is None:
        report.problem(
            f"{URL_VAR}: the Redis at {where} is reachable but its durability cannot be checked: "
            f"redis-py is not installed for {sys.executable} and there is no .venv with it; run "
            "`make package` once (it builds .venv, which this check then uses) or `pip install "
            "redis`.",
            "durability",
        )
        return

    try:
        problems = [
            f"{URL_VAR}: the Redis at {where}: {problem}" for problem in store.durability_problems()
        ]
    except StoreUnavailableError as exc:  # names host:port and the variable, not the password
        problems = [f"{exc.message.rstrip('.')}; its durability could not be checked."]
    except Exception as exc:  # e.g. a TLS file that exists only in the function's package
        detail = str(exc) or "no detail"
        for secret in {s for s in (parts.password, unquote(parts.password or "")) if s}:
            detail = detail.replace(secret, "***")
        problems = [
            f"{URL_VAR}: the Redis at {where} could not be asked about its durability: "
            f"{type(exc).__name__}: {detail}."
        ]
    finally:
        store.close()
    for problem in problems:
        report.problem(problem, "durability")
    if not problems:
        report.store += ", noeviction and persistent"


def check_settings(env: Mapping[str, str], report: Report) -> None:
    if not (env.get(POOL_VAR) or "").strip():
        report.problem(
            f"{POOL_VAR} is empty: every request without its own PoolKey is refused "
            f"(400 InvalidParameter); export {POOL_VAR}=FC100… (the number pool's PoolKey) "
            "before `s deploy`."
        )
    raw = env.get(OUTCOME_VAR)
    default = SETTINGS[OUTCOME_VAR][0] or ""  # also s.yaml's default (tests/tools/test_deploy.py)
    outcome = (raw or "").strip().lower() or default
    if outcome == "reexecute":
        how = (
            "is reexecute"
            if (raw or "").strip()
            else "is not set, so it is reexecute (the default)"
        )
        report.warnings.append(
            f"{OUTCOME_VAR} {how}: a retry after an unknown outcome binds again and may leave "
            "an orphan binding (logged as possible_orphan_binding); export "
            f"{OUTCOME_VAR}=refuse if a stray binding is worse than a stuck order."
        )
    elif outcome != "refuse":
        report.problem(f"{OUTCOME_VAR} must be reexecute or refuse, got {(raw or '').strip()!r}.")


def run(env: Mapping[str, str]) -> int:
    allow, allow_errors = parse_allow(env)
    report = Report(allow)
    report.refusals.extend(allow_errors)
    check_store(env, report)
    check_settings(env, report)
    for line in report.notes:
        print(f"predeploy: note: {line}", file=sys.stderr)
    for line in report.warnings:
        print(f"predeploy: warning: {line}", file=sys.stderr)
    for line in report.refusals:
        print(f"predeploy: refused: {line}", file=sys.stderr)
    if report.refusals:
        return EXIT_REFUSED
    count = len(report.warnings)
    warned = f"; {count} warning{'s' if count != 1 else ''}" if count else ""
    print(f"predeploy: ok ({URL_VAR}: {report.store}{warned})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    argparse.ArgumentParser(
        prog="python3 tools/predeploy.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(args)
    url = (os.environ.get(URL_VAR) or "").strip().lower()
    if url.startswith(("redis://", "rediss://")) and not redis_importable():
        python = project_python()
        if python is not None:  # the same check, run by the interpreter that has redis-py
            os.execv(python, [str(python), str(Path(__file__).resolve()), *args])  # noqa: S606 - this script, argument list
    return run(os.environ)


if __name__ == "__main__":
    sys.exit(main())
