"""``make bench``: the function (a) against the official Dyplsapi SDK (b), one run, one machine.

Both bind through the same local Dyplsapi emulator (its own process, on loopback). Measured:

1. cold, as FC pays it: fresh ``python3.10 -I -S -B`` processes, alternating a and b, each
   importing from a read-only directory with the bytecode each ships: (a) the code package as
   ``s deploy`` uploads it (``tools/package.py --in-place``, the pre-deploy action, which ships
   unchecked-hash .pyc for python3.10), (b) the SDK installed with ``python3.10 -m pip install
   -t`` (pip's own .pyc, timestamps kept). Wall time of the whole process and its peak RSS.
2. cold with cached bytecode: the same, from a normal venv (``.venv-bench``) with ``.pyc`` files.
3. warm: one process each, sequential binds after a warm-up; the function also through an HTTP
   trigger event and a one-record queue batch, with its own overhead (handler time less the time
   in ``Transport.send``).
4. HTTP path: the local HTTP trigger (``tools/localserver.py``) under concurrent clients.

Prints one table and writes every figure as JSON. See bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import http.client
import importlib.util
import json
import math
import os
import platform
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from tools import package
from tools.dypls_emulator import DEFAULT_POOL_KEY, EmulatorAdmin
from tools.fc_local import local_env

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
BUILD = ROOT / "build" / "bench"
REQUIREMENTS = BENCH / "requirements.txt"
RUNTIME = "python3.10"
SDK_MODULE = "alibabacloud_dyplsapi20170525"
SHANGHAI = timezone(timedelta(hours=8))

# What the function is held to (bench/README.md, "Targets").
TARGETS = {
    "cold_wall_ratio": ("cold, deployed: wall time a/b", 0.45),
    "cold_rss_ratio": ("cold, deployed: peak RSS a/b", 0.60),
    "cached_wall_ratio": ("cold, cached bytecode: wall time a/b", 0.50),
    "warm_ratio": ("warm bind: median a/b", 0.90),
    "direct_overhead_us": ("own overhead, direct invocation: median µs", 300.0),
}
PHASES = ("cold", "cached", "warm", "http")


class BenchError(RuntimeError):
    """A measurement could not be made; the message says why."""


# ----------------------------------------------------------------------------- figures


def spread(values: list[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]


def latency(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p99": percentile(values, 99),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "per_pair": ratios,
    }


# ----------------------------------------------------------------------------- preparation


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 sent to 2 for a while, child processes included."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _writable(tree: Path) -> None:
    for dirpath, _, filenames in os.walk(tree):
        os.chmod(dirpath, Path(dirpath).stat().st_mode | stat.S_IRWXU)
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | stat.S_IWUSR)


def remove(tree: Path) -> None:
    if tree.exists():
        _writable(tree)
        shutil.rmtree(tree)


def read_only_copy(source: Path, dest: Path) -> Path:
    """``dest``: a copy of ``source`` as it was built (with the bytecode it ships, timestamps
    kept), then ``chmod -R a-w``."""
    remove(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, dest)
    subprocess.run(["chmod", "-R", "a-w", str(dest)], check=True)  # noqa: S607 - coreutils
    return dest


def bytecode_in(tree: Path) -> set[str]:
    return {str(p.relative_to(tree)) for p in tree.rglob("*.pyc")}


def build_deployed_package(log: Callable[[str], None]) -> Path:
    """src/ as ``s deploy`` uploads it: .fcignore applied, dependencies for python3.10 in
    ``python/`` by ``tools/package.py --in-place`` (the pre-deploy action), built on a copy so
    that src/ itself is left alone."""
    stage = BUILD / "deploy"
    stage.mkdir(parents=True, exist_ok=True)
    for entry in stage.iterdir():  # fresh sources; keep python/ (rebuilt only when stale)
        if entry.name == package.DEPS_DIR:
            continue
        if entry.is_dir():
            remove(entry)
        else:
            entry.unlink()
    patterns = package.ignore_patterns(ROOT / ".fcignore")
    package.copy_tree(ROOT / "src", stage, patterns, skip_top=(package.DEPS_DIR,))
    log(f"package: tools/package.py --in-place --runtime {RUNTIME} on {stage.relative_to(ROOT)}")
    package.build(out=None, runtime=RUNTIME, in_place=True, src=stage, quiet=True)
    return stage


def install_sdk(python: Path, log: Callable[[str], None]) -> Path:
    """``python3.10 -m pip install -t build/bench/sdk -r bench/requirements.txt``, with the
    bytecode pip compiles; skipped when the requirements and the interpreter are unchanged."""
    target = BUILD / "sdk"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + f"{python} pyc".encode()).hexdigest()
    stamp = target / ".bench-sdk.sha256"
    if stamp.is_file() and stamp.read_text(encoding="ascii").strip() == digest:
        return target
    log(f"sdk: {python} -m pip install -t {target.relative_to(ROOT)} -r bench/requirements.txt")
    BUILD.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".sdk-", dir=BUILD))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_TARGET")}
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--no-input", "--target", str(scratch), "-r", str(REQUIREMENTS)]
    try:
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            raise BenchError(f"pip could not install {REQUIREMENTS.relative_to(ROOT)} for {python}")
        (scratch / stamp.name).write_text(digest + "\n", encoding="ascii")
        remove(target)
        scratch.rename(target)
    finally:
        remove(scratch)
    return target


def source_with_bytecode() -> Path:
    """A copy of src/ with its .pyc files (the function as a normal venv would run it)."""
    dest = BUILD / "src"
    remove(dest)
    package.copy_tree(ROOT / "src", dest, [], skip_top=(package.DEPS_DIR,))
    if not compileall.compile_dir(str(dest), quiet=1):
        raise BenchError(f"{dest} does not compile")
    return dest


# ----------------------------------------------------------------------------- processes


class Emulator:
    """``python -m tools.dypls_emulator`` in its own process, on loopback."""

    def __init__(self, python: str, log: IO[str]) -> None:
        self.proc = subprocess.Popen(
            [python, "-m", "tools.dypls_emulator", "--port", "0", "--max-extensions", "900"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) < 2 or not line[1].startswith("http://127.0.0.1:"):
            self.close()
            raise BenchError("the emulator did not start (see build/bench/logs/emulator.log)")
        self.url = line[1]
        self.admin = EmulatorAdmin(self.url)
        self.admin.wait_ready()

    def reset(self) -> None:
        """Bindings, nonces and the request log cleared (its per-bind cost grows with them)."""
        self.admin.reset()

    def check(self, expected: int, what: str) -> dict[str, int]:
        """Since the last reset: exactly ``expected`` requests, each a verified V3-signed
        BindAxnExtension that made a binding (no retry hidden in a figure, no other signer)."""
        seen = self.admin.requests()
        bad = [
            r
            for r in seen
            if not (
                r.get("verified")
                and r.get("binding_created")
                and r.get("signature_version") == "V3"
                and r.get("action") == "BindAxnExtension"
            )
        ]
        if len(seen) != expected or bad:
            raise BenchError(
                f"{what}: the emulator saw {len(seen)} request(s) for {expected} bind(s); "
                f"not a V3 binding: {bad[:1]}"
            )
        return {"requests": len(seen), "v3_bindings": len(seen) - len(bad)}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Orders:
    """Bind requests that the emulator accepts one after another: a distinct PhoneNoA and
    OutOrderId each, the same pool and an Expiration two hours ahead (Asia/Shanghai)."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.count = 0
        self.lock = threading.Lock()
        ahead = datetime.now(SHANGHAI) + timedelta(hours=2)
        self.expiration = ahead.strftime("%Y-%m-%d %H:%M:%S")

    def next(self) -> dict[str, str]:
        with self.lock:
            self.count += 1
            n = self.count
        return {
            "PoolKey": DEFAULT_POOL_KEY,
            "PhoneNoA": f"139{n:08d}",
            "Expiration": self.expiration,
            "OutOrderId": f"BENCH-{self.tag}-{n}",
        }

    def take(self, n: int) -> list[dict[str, str]]:
        return [self.next() for _ in range(n)]


def child_env(endpoint: str) -> dict[str, str]:
    """What FC would set, pointed at the emulator; nothing inherited that could change the
    function's settings (a redis:// store, a publish target)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - only a fallback
        "LANG": "C.UTF-8",
        "TZ": "UTC",  # FC instances run in UTC
        **local_env(endpoint),
        "AXN_LOG_LEVEL": "INFO",
        "AXN_IDEMPOTENCY_URL": "memory://",
        "AXN_PUBLISH_TO": "",
    }


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.orders = Orders()
        self.logs = BUILD / "logs"
        remove(self.logs)  # this run's logs only
        self.logs.mkdir(parents=True)
        self.python = sys.executable  # .venv-bench: requirements.txt + bench/requirements.txt
        found = package.find_python(package.python_version_of(RUNTIME))
        if found is None:
            raise BenchError("no Python 3.10 (pyenv install 3.10): the FC runtime's Python")
        self.runtime_python = found
        self.emulator: Emulator | None = None
        self.env: dict[str, str] = {}

    def say(self, text: str) -> None:
        print(f"bench: {text}", file=sys.stderr, flush=True)

    def log(self, name: str) -> IO[str]:
        return (self.logs / f"{name}.log").open("a", encoding="utf-8")

    @contextmanager
    def running(self) -> Iterator[Emulator]:
        with self.log("emulator") as log:
            self.emulator = Emulator(self.python, log)
            self.env = child_env(self.emulator.url)
            try:
                yield self.emulator
            finally:
                self.emulator.close()

    # --------------------------------------------------------------------------- cold

    def cold_once(
        self, python: str, flags: list[str], side: str, path: list[Path], cwd: Path
    ) -> dict:
        arg = json.dumps(
            {"side": side, "path": [str(p) for p in path], "request": self.orders.next()}
        )
        with self.log(f"cold-{side}") as log:
            started = time.perf_counter()
            proc = subprocess.run(
                [python, *flags, str(BENCH / "child_cold.py"), arg],
                env=self.env,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=300,
                check=False,
            )
            wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise BenchError(f"a cold {side} process failed (see build/bench/logs/cold-{side}.log)")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        report["wall_s"] = wall
        return report

    def cold_pairs(
        self,
        python: str,
        flags: list[str],
        a_path: list[Path],
        b_path: list[Path],
        cwd: tuple[Path, Path],
    ) -> dict[str, Any]:
        """Alternating fresh processes, a then b, then b then a, …; one discarded pair first."""
        assert self.emulator is not None
        self.emulator.reset()

        def a() -> dict:
            return self.cold_once(python, flags, "project", a_path, cwd[0])

        def b() -> dict:
            return self.cold_once(python, flags, "sdk", b_path, cwd[1])

        a()  # page cache, and bytecode where it may be written: not counted
        b()
        runs: dict[str, list[dict]] = {"a": [], "b": []}
        for i in range(self.args.pairs):
            for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
                runs[side].append(a() if side == "a" else b())
        checked = self.emulator.check(2 * (self.args.pairs + 1), "cold")
        out: dict[str, Any] = {"flags": flags, "python": python, "emulator": checked}
        for side in ("a", "b"):
            rs = runs[side]
            out[side] = {
                "wall_s": spread([r["wall_s"] for r in rs]),
                "vmhwm_kb": spread([r["vmhwm_kb"] for r in rs]),
                "import_s": spread([r["import_s"] for r in rs]),
                "init_s": spread([r["init_s"] for r in rs]),
                "call_s": spread([r["call_s"] for r in rs]),
                "modules": rs[0]["modules"],
                "runs": rs,
            }
        out["ratio"] = {
            "wall": paired([r["wall_s"] for r in runs["a"]], [r["wall_s"] for r in runs["b"]]),
            "vmhwm": paired([r["vmhwm_kb"] for r in runs["a"]], [r["vmhwm_kb"] for r in runs["b"]]),
        }
        return out

    def _child(self, script: str, args: list[str], log: Any) -> subprocess.Popen[str]:
        """A child script of the bench, talking JSON lines on stdin and stdout."""
        return subprocess.Popen(
            [self.python, str(BENCH / script), *args],
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )

    def cold_deployed(self) -> dict[str, Any]:
        with stdout_to_stderr():  # pip and the package build talk; stdout is for the table
            built = build_deployed_package(self.say)
            installed = install_sdk(self.runtime_python, self.say)
        deployed = read_only_copy(built, BUILD / "ro" / "package")
        sdk = read_only_copy(installed, BUILD / "ro" / "sdk")
        self.say(f"cold, deployed: {self.args.pairs} pairs of {self.runtime_python} -I -S -B")
        # -B: as root, chmod a-w does not stop Python writing __pycache__; FC's /code is a
        # read-only mount that does. Each side runs on the bytecode it ships: the package's
        # unchecked-hash .pyc (tools/package.py), the SDK's .pyc as pip wrote them.
        shipped = bytecode_in(deployed) | bytecode_in(sdk)
        out = self.cold_pairs(
            str(self.runtime_python),
            ["-I", "-S", "-B"],
            [deployed, deployed / package.DEPS_DIR],
            [sdk],
            (deployed, sdk),  # FC runs the handler with /code as the working directory
        )
        written = sorted((bytecode_in(deployed) | bytecode_in(sdk)) - shipped)
        if written:
            raise BenchError(f"bytecode was written into the read-only copies: {written[:3]}")
        out["a"]["dir"], out["b"]["dir"] = str(deployed), str(sdk)
        return out

    def cold_cached(self, code: Path) -> dict[str, Any]:
        self.say(f"cold, cached bytecode: {self.args.pairs} pairs of {self.python} -I")
        out = self.cold_pairs(self.python, ["-I"], [code], [], (code, BUILD))
        out["a"]["dir"], out["b"]["dir"] = str(code), "site-packages of " + sys.prefix
        return out

    # --------------------------------------------------------------------------- warm

    def warm(self, code: Path) -> dict[str, Any]:
        assert self.emulator is not None
        emulator = self.emulator
        n, block, warmup = self.args.warm, self.args.block, self.args.warmup
        self.say(f"warm: {n} binds per path after {warmup} warm-up, blocks of {block}")
        children = {}
        with self.log("warm-project") as plog, self.log("warm-sdk") as slog:
            for side, log, extra in (
                ("project", plog, ["--code", str(code)]),
                ("sdk", slog, []),
            ):
                children[side] = self._child("child_warm.py", ["--side", side, *extra], log)
            try:
                for side, child in children.items():
                    if not self._reply(child, side).get("ready"):
                        raise BenchError(f"the warm {side} process did not start")

                def run(side: str, path: str, count: int) -> dict[str, list]:
                    emulator.reset()
                    child = children[side]
                    command = {"op": "run", "path": path, "requests": self.orders.take(count)}
                    assert child.stdin is not None
                    child.stdin.write(json.dumps(command) + "\n")
                    child.stdin.flush()
                    reply = self._reply(child, f"{side} {path}")
                    emulator.check(count, f"warm {path}")
                    return reply

                lanes = [
                    ("project", "direct"),
                    ("sdk", "sdk"),
                    ("project", "http"),
                    ("project", "batch"),
                ]
                for side, path in lanes:
                    for start in range(0, warmup, block):
                        run(side, path, min(block, warmup - start))
                samples: dict[str, dict[str, list]] = {
                    p: {"seconds": [], "wire": [], "urlopen": []} for _, p in lanes
                }
                for i, start in enumerate(range(0, n, block)):
                    count = min(block, n - start)
                    for side, path in lanes[i % len(lanes) :] + lanes[: i % len(lanes)]:
                        got = run(side, path, count)
                        samples[path]["seconds"] += got["seconds"]
                        samples[path]["wire"] += got["wire"]
                        samples[path]["urlopen"] += got["urlopen"]
            finally:
                for child in children.values():
                    if child.poll() is None and child.stdin is not None:
                        child.stdin.write(json.dumps({"op": "quit"}) + "\n")
                        child.stdin.close()
                for child in children.values():
                    try:
                        child.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        child.kill()
                        child.wait()
        out: dict[str, Any] = {"n": n, "warmup": warmup, "block": block}
        for path, got in samples.items():
            entry: dict[str, Any] = {"seconds": latency(got["seconds"])}
            # Both sides end in urllib3's HTTPConnectionPool.urlopen: the work outside it, side by side.
            entry["outside_urlopen"] = latency(
                [s - w for s, w in zip(got["seconds"], got["urlopen"], strict=True)]
            )
            if path != "sdk":
                entry["wire"] = latency(got["wire"])
                own = [s - w for s, w in zip(got["seconds"], got["wire"], strict=True)]
                entry["overhead"] = latency(own)
            out[path] = entry
        a, b = out["direct"]["seconds"], out["sdk"]["seconds"]
        out["ratio"] = {"median": a["median"] / b["median"], "p99": a["p99"] / b["p99"]}
        a, b = out["direct"]["outside_urlopen"], out["sdk"]["outside_urlopen"]
        out["ratio_outside_urlopen"] = a["median"] / b["median"]
        return out

    @staticmethod
    def _reply(child: subprocess.Popen, what: str) -> dict:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise BenchError(f"the warm {what} process ended (see build/bench/logs/warm-*.log)")
        return json.loads(line)

    # --------------------------------------------------------------------------- HTTP

    def http(self, code: Path) -> dict[str, Any]:
        assert self.emulator is not None
        emulator = self.emulator
        args = self.args
        self.say(
            f"HTTP path: {args.http_clients} clients, at most {args.http_requests} requests "
            f"or {args.http_seconds:g} s"
        )
        with self.log("http-server") as log:
            server = self._child("child_http.py", ["--code", str(code)], log)
            try:
                assert server.stdout is not None
                port_line = server.stdout.readline().strip()
                if not port_line.isdigit():
                    raise BenchError(
                        "the HTTP server did not start (build/bench/logs/http-server.log)"
                    )
                port = int(port_line)
                for _ in range(args.warmup):  # warm-up, one at a time
                    status, _ = self._post(port, self.orders.next())
                    if status != 200:
                        raise BenchError(f"the local HTTP trigger answered {status}")
                emulator.reset()
                result = self._load(port, emulator)
            finally:
                if server.stdin is not None:
                    server.stdin.close()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
        return result

    @staticmethod
    def _post(port: int, request: dict[str, str]) -> tuple[int | None, float]:
        body = json.dumps(request).encode("utf-8")
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            status: int | None = response.status
        except OSError:
            status = None
        finally:
            conn.close()
        return status, time.perf_counter() - started

    def _load(self, port: int, emulator: Emulator) -> dict[str, Any]:
        args = self.args
        lock = threading.Lock()
        state = {"issued": 0, "done": 0}
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        deadline = time.monotonic() + args.http_seconds

        def client() -> None:
            while True:
                with lock:
                    if state["issued"] >= args.http_requests or time.monotonic() >= deadline:
                        return
                    state["issued"] += 1
                status, elapsed = self._post(port, self.orders.next())
                with lock:
                    latencies.append(elapsed)
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    state["done"] += 1
                    reset = state["done"] % args.http_reset_every == 0
                if reset:  # keeps the emulator's per-bind cost flat
                    emulator.reset()

        threads = [threading.Thread(target=client) for _ in range(args.http_clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        return {
            "clients": args.http_clients,
            "requests": state["done"],
            "seconds": elapsed,
            "rps": state["done"] / elapsed,
            "latency": latency(latencies),
            "statuses": statuses,
            "errors": sum(v for k, v in statuses.items() if k != "200"),
            "server": "tools.localserver.TriggerHandler behind one-at-a-time http.server.HTTPServer",
        }

    # --------------------------------------------------------------------------- all

    def run(self) -> dict[str, Any]:
        phases = self.args.only
        if importlib.util.find_spec(SDK_MODULE) is None:
            raise BenchError(
                f"{SDK_MODULE} is not installed for {self.python}: run the bench with `make bench`"
            )
        code = source_with_bytecode()
        results: dict[str, Any] = {"meta": self.meta()}
        with self.running():
            if "cold" in phases:
                results["cold_deployed"] = self.cold_deployed()
            if "cached" in phases:
                results["cold_cached"] = self.cold_cached(code)
            if "warm" in phases:
                results["warm"] = self.warm(code)
            if "http" in phases:
                results["http"] = self.http(code)
        results["meta"]["loadavg_end"] = list(os.getloadavg())
        results["targets"] = targets(results)
        return results

    def meta(self) -> dict[str, Any]:
        def out(*cmd: str) -> str | None:
            try:
                proc = subprocess.run(
                    list(cmd), cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
                )
            except OSError:
                return None
            return proc.stdout.strip() if proc.returncode == 0 else None

        try:
            sdk_version = metadata.version("alibabacloud-dyplsapi20170525")
        except metadata.PackageNotFoundError:
            sdk_version = None
        return {
            "when": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "commit": out("git", "rev-parse", "--short", "HEAD"),
            "dirty": bool(out("git", "status", "--porcelain")),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "loadavg_start": list(os.getloadavg()),
            "bench_python": f"{self.python} ({platform.python_version()})",
            "runtime_python": str(self.runtime_python),
            "sdk": f"alibabacloud-dyplsapi20170525 {sdk_version}",
            "pairs": self.args.pairs,
            "phases": list(self.args.only),
        }


def targets(results: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, float] = {}
    if "cold_deployed" in results:
        values["cold_wall_ratio"] = results["cold_deployed"]["ratio"]["wall"]["median"]
        values["cold_rss_ratio"] = results["cold_deployed"]["ratio"]["vmhwm"]["median"]
    if "cold_cached" in results:
        values["cached_wall_ratio"] = results["cold_cached"]["ratio"]["wall"]["median"]
    if "warm" in results:
        values["warm_ratio"] = results["warm"]["ratio"]["median"]
        values["direct_overhead_us"] = results["warm"]["direct"]["overhead"]["median"] * 1e6
    return {
        key: {
            "what": TARGETS[key][0],
            "value": value,
            "limit": TARGETS[key][1],
            "met": value <= TARGETS[key][1],
        }
        for key, value in values.items()
    }


# ----------------------------------------------------------------------------- the table


def _ms(seconds: float, digits: int = 0) -> str:
    return f"{seconds * 1000:.{digits}f}"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def _trio(s: dict[str, float], fmt: Callable[[float], str], unit: str) -> str:
    return f"{fmt(s['min'])} / {fmt(s['median'])} / {fmt(s['max'])} {unit}"


def _ratio(r: dict[str, float]) -> str:
    return f"**{r['median']:.2f}** ({r['min']:.2f}–{r['max']:.2f})"


def _target(results: dict[str, Any], key: str | None) -> str:
    t = results["targets"].get(key) if key else None
    if t is None:
        return ""
    limit = f"{t['limit']:g} µs" if key and key.endswith("_us") else f"{t['limit']:.2f}"
    return f"≤ {limit} {'met' if t['met'] else 'MISSED'}"


def _cold_rows(results: dict[str, Any], key: str, label: str) -> list[str]:
    c = results[key]
    deployed = key == "cold_deployed"
    wall_target = "cold_wall_ratio" if deployed else "cached_wall_ratio"
    rss_target = "cold_rss_ratio" if deployed else None

    def phases(side: str) -> str:
        return " + ".join(_ms(c[side][k]["median"]) for k in ("import_s", "init_s", "call_s"))

    return [
        f"| {label}: wall time, {c['a']['wall_s']['n']} pairs "
        f"| {_trio(c['a']['wall_s'], _ms, 'ms')} | {_trio(c['b']['wall_s'], _ms, 'ms')} "
        f"| {_ratio(c['ratio']['wall'])} | {_target(results, wall_target)} |",
        f"| {label}: peak RSS (VmHWM) "
        f"| {_trio(c['a']['vmhwm_kb'], _mb, 'MB')} | {_trio(c['b']['vmhwm_kb'], _mb, 'MB')} "
        f"| {_ratio(c['ratio']['vmhwm'])} | {_target(results, rss_target)} |",
        f"| {label}: in the process, import + init + first bind (medians) "
        f"| {phases('a')} ms | {phases('b')} ms | | |",
    ]


def _warm_rows(results: dict[str, Any]) -> list[str]:
    w = results["warm"]
    d, s = w["direct"]["seconds"], w["sdk"]["seconds"]
    rows = [
        f"| warm bind, median / p99 ({w['n']} sequential; a: direct invocation, b: client call) "
        f"| {_ms(d['median'], 2)} / {_ms(d['p99'], 2)} ms | {_ms(s['median'], 2)} / "
        f"{_ms(s['p99'], 2)} ms | **{w['ratio']['median']:.2f}** (p99 {w['ratio']['p99']:.2f}) "
        f"| {_target(results, 'warm_ratio')} |"
    ]
    da, sa = w["direct"]["outside_urlopen"], w["sdk"]["outside_urlopen"]
    rows.append(
        "| warm bind, work outside urllib3's `HTTPConnectionPool.urlopen` (where both sides' HTTP exchange "
        f"ends), median / p99 | {_us(da['median'])} / {_us(da['p99'])} µs "
        f"| {_us(sa['median'])} / {_us(sa['p99'])} µs "
        f"| {w['ratio_outside_urlopen']:.2f} | |"
    )
    for path, label in (
        ("http", "HTTP trigger event"),
        ("direct", "direct invocation"),
        ("batch", "queue batch of one record"),
    ):
        e = w[path]
        target = _target(results, "direct_overhead_us" if path == "direct" else None)
        rows.append(
            f"| own overhead, {label}: median / p99 (handler {_ms(e['seconds']['median'], 2)} ms "
            f"− wire {_ms(e['wire']['median'], 2)} ms, medians) "
            f"| {_us(e['overhead']['median'])} / {_us(e['overhead']['p99'])} µs | | | {target} |"
        )
    return rows


def _http_row(results: dict[str, Any]) -> str:
    h = results["http"]
    lat = h["latency"]
    return (
        f"| HTTP path, local trigger, {h['clients']} client threads: {h['requests']} requests in "
        f"{h['seconds']:.1f} s, {h['errors']} errors | {h['rps']:.0f} req/s, "
        f"p50 {_ms(lat['median'], 1)} ms, p99 {_ms(lat['p99'], 1)} ms | | | |"
    )


def table(results: dict[str, Any]) -> str:
    meta = results["meta"]
    dirty = " (uncommitted changes)" if meta["dirty"] else ""
    lines = [
        f"axn-bind bench {meta['when']}, commit {meta['commit'] or '?'}{dirty}, {meta['cpus']} CPUs, "
        f"load {meta['loadavg_start'][0]:.2f} → {meta['loadavg_end'][0]:.2f}",
        f"a = the function, b = {meta['sdk']}, both against one emulator on loopback. Cold rows: "
        "min / median / max over fresh processes; a/b = median of the per-pair ratios (min–max).",
        "",
        "| row | a: function | b: SDK | a/b | target |",
        "|---|---|---|---|---|",
    ]
    if "cold_deployed" in results:
        label = "cold, deployed (python3.10 -I -S -B, read-only, the .pyc each ships)"
        lines += _cold_rows(results, "cold_deployed", label)
    if "cold_cached" in results:
        label = "cold, cached bytecode (.venv-bench, .pyc present)"
        lines += _cold_rows(results, "cold_cached", label)
    if "warm" in results:
        lines += _warm_rows(results)
    if "http" in results:
        lines.append(_http_row(results))
    cold = [k for k in ("cold_deployed", "cold_cached") if k in results]
    if cold:
        lines += ["", "a/b per pair, in run order:"]
    for key in cold:
        label = key.replace("_", ", ")
        for what in ("wall", "vmhwm"):
            ratios = " ".join(f"{r:.2f}" for r in results[key]["ratio"][what]["per_pair"])
            name = "wall time" if what == "wall" else "peak RSS"
            lines.append(f"- {label}, {name}: {ratios}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def _pairs(text: str) -> int:
    n = int(text)
    if n < 7:
        raise argparse.ArgumentTypeError("at least 7 pairs")
    return n


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in chosen if p not in PHASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(PHASES)}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make bench",
        description="The function against the official Dyplsapi SDK, cold, warm and over HTTP, "
        "against the local emulator (bench/README.md). Extra options: make bench BENCH_ARGS=...",
    )
    parser.add_argument(
        "--pairs",
        type=_pairs,
        default=7,
        help="pairs of cold processes, a then b, the order alternating (default 7, at least 7)",
    )
    parser.add_argument(
        "--warm",
        type=int,
        default=500,
        help="sequential binds per warm path, in one process (default 500)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=50,
        help="binds before the warm and HTTP figures, not counted (default 50)",
    )
    parser.add_argument(
        "--block",
        type=int,
        default=50,
        help="warm binds per turn; paths take turns and the emulator is reset between (default 50)",
    )
    parser.add_argument(
        "--http-clients",
        type=int,
        default=8,
        help="client threads of the HTTP-path load (default 8)",
    )
    parser.add_argument(
        "--http-requests",
        type=int,
        default=2000,
        help="the HTTP-path load stops after this many requests (default 2000)",
    )
    parser.add_argument(
        "--http-seconds",
        type=float,
        default=20.0,
        help="... or after this many seconds (default 20)",
    )
    parser.add_argument(
        "--http-reset-every",
        type=int,
        default=200,
        help="reset the emulator after this many HTTP-path requests (default 200)",
    )
    parser.add_argument(
        "--only",
        type=_phases,
        default=PHASES,
        help=f"comma-separated phases to run (default all: {','.join(PHASES)})",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "build" / "bench.json",
        help="where to write every figure as JSON (default build/bench.json)",
    )
    args = parser.parse_args(argv)
    for name in ("warm", "warmup", "block", "http_clients", "http_requests", "http_reset_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = Bench(args).run()
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nJSON: {args.json}")
    return 0
