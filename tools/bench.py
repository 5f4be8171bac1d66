"""``make bench``: cold-start and warm-path figures, measured against the local emulator.

- cold import: ``import index`` in a fresh interpreter (what FC pays before the first call);
- cold first call: a fresh interpreter running ``initialize`` and one bind;
- warm bind: p50/p95/max of ``handler`` over an FC HTTP event, emulator on loopback;
- warm rejection: a locally invalid request (no upstream call).

Figures depend on the machine; compare runs on the same one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tools.dypls_emulator import Emulator
from tools.fc_local import CODE_ROOT, FcContext, http_event, local_env

_COLD = """
import time, json, sys, random
t0 = time.perf_counter()
import index
t1 = time.perf_counter()
if sys.argv[1] == "call":
    from tools.fc_local import FcContext
    index.initialize(FcContext())
    out = index.handler(json.dumps({"PhoneNoA": "137%08d" % random.randrange(10**8), "TtlSeconds": 600}).encode(), FcContext())
    assert out.get("Code") == "OK", out
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "total_ms": (t2 - t0) * 1000}))
"""


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[math.ceil(len(ordered) * 0.95) - 1], 2),  # nearest rank
        "max_ms": round(ordered[-1], 2),
        "n": len(ordered),
    }


def cold(runs: int, mode: str, env: dict[str, str]) -> dict[str, float]:
    root = Path(__file__).resolve().parents[1]
    figures = []
    for _ in range(runs):
        out = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _COLD, mode],
            capture_output=True,
            text=True,
            check=True,
            env={**env, "PYTHONPATH": f"{CODE_ROOT}{os.pathsep}{root}"},
        )
        figures.append(json.loads(out.stdout.strip().splitlines()[-1]))
    key = "import_ms" if mode == "import" else "total_ms"
    return _percentiles([f[key] for f in figures])


def warm(n: int, make_body: Callable[[int], dict], expect: int) -> dict[str, float]:
    from index import handler

    samples = []
    for i in range(n):
        event = http_event("POST", make_body(i))
        t0 = time.perf_counter()
        result = handler(event, FcContext())
        samples.append((time.perf_counter() - t0) * 1000)
        assert result["statusCode"] == expect, result
    return _percentiles(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cold-runs", type=int, default=10, help="fresh interpreters per cold figure (default 10)"
    )
    parser.add_argument(
        "--warm", type=int, default=500, help="binds per warm figure, in one process (default 500)"
    )
    parser.add_argument(
        "--json", type=Path, help="write the figures to this JSON file (default: print them)"
    )
    args = parser.parse_args(argv)
    with Emulator("127.0.0.1", 0, max_extensions_per_number=900) as emulator:
        os.environ.update({**local_env(emulator.url), "AXN_LOG_LEVEL": "WARNING"})
        env = dict(os.environ)
        results = {
            "python": sys.version.split()[0],
            "cold_import": cold(args.cold_runs, "import", env),
            "cold_first_bind": cold(args.cold_runs, "call", env),
            "warm_bind": warm(
                args.warm, lambda i: {"PhoneNoA": f"139{i:08d}", "TtlSeconds": 600}, 200
            ),
            "warm_rejected": warm(
                args.warm, lambda i: {"PhoneNoA": str(i), "TtlSeconds": 600}, 400
            ),
        }
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nJSON: {args.json}")
    else:
        print("\n" + json.dumps(results, indent=2))
    return 0


LABELS = {
    "cold_import": "cold `import index` (fresh interpreter)",
    "cold_first_bind": "cold start to first binding (import + initialize + one bind)",
    "warm_bind": "warm bind through an HTTP event (emulator round trip included)",
    "warm_rejected": "warm rejection of an invalid request (no upstream call)",
}


def table(results: dict[str, object]) -> str:
    """The figures as the Markdown table the README's Performance section shows."""
    lines = [
        f"Python {results['python']}",
        "",
        "| what | p50 | p95 | max | n |",
        "|---|---|---|---|---|",
    ]
    for key, label in LABELS.items():
        f = results[key]
        assert isinstance(f, dict)
        lines.append(
            f"| {label} | {f['p50_ms']:g} ms | {f['p95_ms']:g} ms | {f['max_ms']:g} ms | {f['n']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
