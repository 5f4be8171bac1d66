"""The deployment package: built without Docker, complete, and serving a binding on its own.

The slow tests build the package (``tools/package.py``, as ``make package`` does) into a temporary
directory and run the handler from it in a clean interpreter of the runtime's Python version:
isolated mode, no site-packages, ``sys.path`` = the package and its ``python/`` directory plus the
standard library, environment limited to what FC would set. The function is pointed at the local
Dyplsapi emulator and must answer a direct bind request with a ``SecretBindDTO``.

The package is built for ``manylinux2014_x86_64`` and the runtime's CPython (pydantic-core is a
compiled module), so the clean interpreter must be that Python version: found through pyenv. Without
it the test is skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tools import package as pkg
from tools.dypls_emulator import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_POOL_KEY,
)

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------
# Fast checks of the build script's pieces
# ---------------------------------------------------------------------------------------------


def test_runtime_parameter():
    assert pkg.python_version_of("python3.10") == "3.10"
    assert pkg.python_version_of("python3.12") == "3.12"
    assert pkg.python_version_of("3.12") == "3.12"
    with pytest.raises(pkg.PackageError, match=r"python3\.10, python3\.12"):
        pkg.python_version_of("python3.11")


def test_fcignore_keeps_tests_caches_and_tooling_out():
    patterns = pkg.ignore_patterns(ROOT / ".fcignore")
    ignored = [
        ("tests", True),
        ("tools", True),
        ("bench", True),
        ("events", True),
        (".venv", True),
        (".pytest_cache", True),
        ("python/bin", True),
        (".env", False),
        ("s.yaml", False),
        ("deploy-key.pem", False),
        ("NOTES.md", False),
    ]
    kept = [
        ("index.py", False),
        ("axn_bind/app.py", False),
        ("python/pydantic", True),
        ("python/pydantic/tools.py", False),  # only the top-level tools/ is local tooling
        ("python/redis/commands", True),
        ("python/bin.py", False),
        ("certs/ApsaraDB-CA-Chain.pem", False),  # the README's place for Redis's CA chain
        ("python/certifi/cacert.pem", False),  # a top-level pattern must not reach into deps
        ("python/idna-3.20.dist-info/licenses/LICENSE.md", False),
        ("python/redis/commands/search/aggregation.py", False),
    ]
    for rel, is_dir in ignored:
        assert pkg.is_ignored(rel, is_dir, patterns), f"{rel} should be left out"
    for rel, is_dir in kept:
        assert not pkg.is_ignored(rel, is_dir, patterns), f"{rel} should be packaged"
    # The runtime's bytecode is shipped (compiled by tools/package.py after the copy, which
    # leaves the developer's own caches behind): .fcignore must not drop it when s deploy reads it.
    assert not {"__pycache__/", "__pycache__", "*.pyc"} & set(patterns)


def _dist(deps: Path, name: str, version: str, requires: list[str]) -> None:
    info = deps / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n\nlong description\n", encoding="utf-8")


def test_markers_are_evaluated_for_the_runtime_python(tmp_path):
    """pip --python-version evaluates markers for the Python running pip; the build re-checks."""
    _dist(
        tmp_path,
        "redis",
        "8.1.0",
        [
            "async-timeout>=4.0.3; python_full_version < '3.11.3'",
            "hiredis>=3.2.0; extra == 'hiredis'",
            "typing-extensions; python_version < '3.11'",
        ],
    )
    _dist(tmp_path, "typing_extensions", "4.16.0", [])
    assert pkg.missing_requirements(tmp_path, "3.10") == ["async-timeout>=4.0.3"]
    assert pkg.missing_requirements(tmp_path, "3.12") == []


def test_binaries_for_another_python_are_refused(tmp_path):
    (tmp_path / "pydantic_core").mkdir()
    good = tmp_path / "pydantic_core" / "_pydantic_core.cpython-310-x86_64-linux-gnu.so"
    good.write_bytes(b"")
    assert pkg.check_binaries(tmp_path, "3.10") == [
        "pydantic_core/_pydantic_core.cpython-310-x86_64-linux-gnu.so"
    ]
    with pytest.raises(pkg.PackageError, match="cp310, not cp312"):
        pkg.check_binaries(tmp_path, "3.12")
    (tmp_path / "x.cpython-310-darwin.so").write_bytes(b"")
    with pytest.raises(pkg.PackageError, match="x86_64 Linux"):
        pkg.check_binaries(tmp_path, "3.10")


def test_pruning_that_breaks_a_dependency_is_refused(tmp_path):
    _dist(tmp_path, "certifi", "1.0", [])
    (tmp_path / "certifi").mkdir()
    (tmp_path / "certifi" / "core.py").write_text("", encoding="utf-8")
    record = tmp_path / "certifi-1.0.dist-info" / "RECORD"
    record.write_text(
        "certifi/core.py,sha256=x,0\ncertifi/cacert.pem,sha256=y,1\n"
        "certifi-1.0.dist-info/RECORD,,\n../../bin/x,,\n",
        encoding="utf-8",
    )
    with pytest.raises(pkg.PackageError, match=r"certifi/cacert\.pem"):
        pkg.check_records(tmp_path)
    (tmp_path / "certifi" / "cacert.pem").write_text("", encoding="utf-8")
    pkg.check_records(tmp_path)


def test_output_directory_is_never_a_foreign_one(tmp_path):
    (tmp_path / "keep.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(pkg.PackageError, match="not empty"):
        pkg.build(out=tmp_path, quiet=True)
    with pytest.raises(pkg.PackageError, match="must not be inside"):
        pkg.build(out=ROOT / "src" / "pkg", quiet=True)
    assert (tmp_path / "keep.txt").is_file()


def test_makefile_package_target_calls_the_build_script():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = text.split("\npackage:", 1)[1].split("\n\n", 1)[0]
    assert "tools/package.py" in target
    assert "$(BIN)/python" in target


# ---------------------------------------------------------------------------------------------
# The built package, in a clean interpreter, against the emulator
# ---------------------------------------------------------------------------------------------

RUNTIMES = ("python3.10", "python3.12")

# Runs inside the clean interpreter: imports everything from the package, serves one binding,
# and reports what it loaded from where, with the import time and the peak RSS.
CHILD = textwrap.dedent(
    """
    import importlib, json, os, pkgutil, resource, sys, time
    package = sys.argv[1]
    deps = os.path.join(package, "python")
    sys.path[:0] = [package, deps]
    started = time.perf_counter()
    import index
    import_ms = (time.perf_counter() - started) * 1000

    class Function:
        name = "axn-bind"
        handler = "index.handler"
        memory = 256
        timeout = 30

    class Context:
        request_id = "package-test-1"
        function = Function()
        credentials = None
        region = "cn-hangzhou"
        account_id = "1234567890123456"

    index.initialize(Context())
    request = {"PhoneNoA": "13900000001", "TtlSeconds": 3600}
    result = index.handler(json.dumps(request).encode(), Context())
    # VmHWM is this process's own peak; ru_maxrss would also count the parent's memory that a
    # fork-then-exec child starts with (the test runner's, hundreds of MB in a full run).
    try:
        with open("/proc/self/status") as status:
            rss_kb = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:"))
    except (OSError, StopIteration):
        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # HTTPS to the real endpoint needs the CA bundle that requests takes from certifi.
    import requests.certs
    ca_bundle = requests.certs.where()

    # Every module of the function and every packaged distribution must import from here.
    import axn_bind
    for info in pkgutil.walk_packages(axn_bind.__path__, "axn_bind."):
        importlib.import_module(info.name)
    tops = set()
    for entry in os.listdir(deps):
        if entry.endswith(".dist-info") or entry.startswith((".", "_")):
            continue
        name = entry[:-3] if entry.endswith(".py") else entry
        if entry.endswith(".py") or os.path.isfile(os.path.join(deps, entry, "__init__.py")):
            tops.add(name)
    for name in sorted(tops):
        importlib.import_module(name)
    origins = {
        name: getattr(module, "__file__", None)
        for name, module in sorted(sys.modules.items())
        if name.split(".")[0] in tops | {"index", "axn_bind"} and "." not in name
    }
    print(json.dumps({
        "result": result,
        "ca_bundle": [ca_bundle, os.path.isfile(ca_bundle)],
        "import_ms": round(import_ms),
        "maxrss_kb": rss_kb,
        "origins": origins,
        "sys_path": sys.path,
        "version": list(sys.version_info[:2]),
        "flags": {"isolated": sys.flags.isolated, "no_site": sys.flags.no_site},
    }))
    """
)


def _interpreter(runtime: str) -> Path:
    version = pkg.python_version_of(runtime)
    found = pkg.find_python(version)
    if found is None:
        message = (
            f"no Python {version} interpreter (pyenv install {version}): the package for "
            f"{runtime} holds cp{version.replace('.', '')} binaries and can only be imported there"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module", params=RUNTIMES)
def built(request, tmp_path_factory):
    """(runtime, interpreter, package dir) — built once per runtime for this module."""
    runtime = request.param
    interpreter = _interpreter(runtime)
    out = tmp_path_factory.mktemp(f"package-{runtime}") / "package"
    pkg.build(out=out, runtime=runtime, quiet=True)
    return runtime, interpreter, out


@pytest.mark.slow
def test_package_layout(built):
    runtime, interpreter, out = built
    version = pkg.python_version_of(runtime)
    tag = version.replace(".", "")
    assert (out / "index.py").is_file()
    assert (out / "axn_bind" / "app.py").is_file()
    assert not (out / "python" / "bin").exists()
    _assert_bytecode_for(out, interpreter, version)
    for unwanted in ("tests", "tools", "events", "docs", "s.yaml", "Makefile"):
        assert not (out / unwanted).exists(), unwanted
    stamp = json.loads((out / "python" / pkg.STAMP).read_text(encoding="utf-8"))
    assert stamp["python_version"] == version
    assert stamp["platform"] == "manylinux2014_x86_64"
    assert any(
        b.startswith("pydantic_core/") and f"cpython-{tag}-x86_64-linux-gnu" in b
        for b in stamp["binaries"]
    ), stamp["binaries"]
    # pika is the [amqp] extra of a pip install, but a deployed function takes its targets from
    # its environment: the code package carries every client a setting can name.
    required = {"pydantic", "pydantic_core", "redis", "requests", "typing_extensions", "pika"}
    present = {p.name.removesuffix(".py") for p in (out / "python").iterdir()}
    assert required <= present, required - present
    if version < "3.11":
        assert "async_timeout" in present, "redis needs async-timeout below Python 3.11.3"


def _assert_bytecode_for(root: Path, interpreter: Path, version: str) -> None:
    """Every module of the function has bytecode for the runtime's Python only, hash-based and
    never checked against the source (flags 0b01), so new timestamps cannot invalidate it."""
    tag = f"cpython-{version.replace('.', '')}"
    magic = subprocess.run(
        [str(interpreter), "-c", "import importlib.util as u; print(u.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    modules = [root / "index.py", *(root / "axn_bind").rglob("*.py")]
    for module in modules:
        pyc = module.parent / "__pycache__" / f"{module.stem}.{tag}.pyc"
        assert pyc.is_file(), f"no bytecode for {module.relative_to(root)}"
        header = pyc.read_bytes()[:16]
        assert header[:4].hex() == magic, f"{pyc} was compiled by another Python"
        assert int.from_bytes(header[4:8], "little") == 0b01, f"{pyc} is not unchecked-hash"
    others = [p for p in root.rglob("*.pyc") if f".{tag}." not in p.name]
    assert not others, f"bytecode of other Pythons: {others[:3]}"


@pytest.mark.slow
def test_the_shipped_bytecode_is_what_runs(built, tmp_path):
    """With the source of the handler's modules broken, the package still imports: the runtime
    reads the shipped bytecode and never the source (an unzipped upload's timestamps and a
    read-only /code cannot make it compile again)."""
    _, interpreter, out = built
    copy = tmp_path / "package"
    shutil.copytree(out, copy, symlinks=True)
    for module in ("index.py", "axn_bind/app.py", "axn_bind/service.py"):
        (copy / module).write_text("raise SystemExit('the source was read')\n", encoding="utf-8")
    probe = "import sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/python']; import index; print(index.handler)"
    proc = subprocess.run(
        [str(interpreter), "-I", "-S", "-B", "-c", probe, str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and "function handler" in proc.stdout, proc.stderr[-2000:]


def _run_clean(interpreter: Path, package: Path, endpoint: str) -> dict:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ACCESS_KEY_SECRET,
        "DYPLS_ENDPOINT": endpoint,
        "AXN_POOL_KEY": DEFAULT_POOL_KEY,
        "TZ": "UTC",  # FC instances run in UTC
        "LANG": "C.UTF-8",
    }
    proc = subprocess.run(
        [str(interpreter), "-I", "-S", "-B", "-c", CHILD, str(package)],
        env=env,
        cwd=package,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "stderr": proc.stderr}


@pytest.mark.slow
def test_package_serves_a_binding_from_a_clean_interpreter(built, emulator):
    runtime, interpreter, out = built
    emulator.reset()
    report = _run_clean(interpreter, out, emulator.url)
    assert report["version"] == [int(x) for x in pkg.python_version_of(runtime).split(".")]
    assert report["flags"] == {"isolated": 1, "no_site": 1}
    assert not [p for p in report["sys_path"] if "site-packages" in p or "dist-packages" in p]

    result = report["result"]
    assert result.get("Code") == "OK", result
    bundle, exists = report["ca_bundle"]
    assert exists, f"no CA bundle at {bundle}: HTTPS to Dyplsapi would fail"
    assert Path(bundle).resolve().is_relative_to(out.resolve())
    assert result["SecretBindDTO"]["SecretNo"], result

    outside = {
        name: origin
        for name, origin in report["origins"].items()
        if origin and not Path(origin).resolve().is_relative_to(out.resolve())
    }
    assert not outside, f"imported from outside the package: {outside}"
    for name in ("index", "axn_bind", "pydantic", "pydantic_core", "redis", "requests"):
        assert name in report["origins"], f"{name} was not imported"
    # Left out on purpose (tools/package.py LEFT_OUT), and its absence is no warning in the logs.
    assert "charset_normalizer" not in report["origins"]
    assert not list((out / "python").glob("charset_normalizer*"))
    assert "character detection" not in report["stderr"], report["stderr"][-2000:]

    # Memory is sized from this figure (s.yaml memorySize): keep at least half of it free.
    memory_mb = yaml.safe_load((ROOT / "s.yaml").read_text(encoding="utf-8"))["resources"][
        "axn-bind"
    ]["props"]["memorySize"]
    peak_mb = report["maxrss_kb"] / 1024
    print(
        f"\n{runtime}: import {report['import_ms']} ms (shipped .pyc), "
        f"peak RSS {peak_mb:.1f} MB of memorySize {memory_mb} MB",
        file=sys.stderr,
    )
    assert peak_mb <= memory_mb / 2, f"peak RSS {peak_mb:.1f} MB; s.yaml memorySize {memory_mb}"


@pytest.mark.slow
def test_in_place_build_for_s_deploy(tmp_path):
    """--in-place (the pre-deploy action) fills src/python/ and is a no-op when up to date."""
    src = tmp_path / "src"
    pkg.copy_tree(ROOT / "src", src, [], skip_top=(pkg.DEPS_DIR,))
    (src / "axn_bind" / "__pycache__").mkdir(exist_ok=True)
    (src / "axn_bind" / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"")
    pkg.build(out=None, runtime="python3.10", in_place=True, src=src, quiet=True)
    stamp = src / "python" / pkg.STAMP
    assert json.loads(stamp.read_text(encoding="utf-8"))["python_version"] == "3.10"
    assert (src / "python" / "pydantic").is_dir()
    assert not list(src.rglob("*.cpython-311.pyc")), "s deploy zips src/ as it is"
    _assert_bytecode_for(src, _interpreter("python3.10"), "3.10")
    before = stamp.stat().st_mtime_ns
    pkg.build(out=None, runtime="python3.10", in_place=True, src=src, quiet=True)
    assert stamp.stat().st_mtime_ns == before, "an unchanged build must not reinstall"
    assert not list((src / "python").glob("charset_normalizer*"))


def test_a_package_built_by_an_older_recipe_is_not_current(tmp_path):
    """A stamp from before charset-normalizer was left out makes the next build reinstall."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests==2.34.2\n", encoding="utf-8")
    deps = tmp_path / "python"
    deps.mkdir()
    stamp = {"python_version": "3.10", "requirements_sha256": pkg.requirements_digest(requirements)}
    (deps / pkg.STAMP).write_text(json.dumps(stamp), encoding="utf-8")
    assert not pkg.is_current(deps, requirements, "3.10")
    stamp["left_out"] = ["charset-normalizer"]
    (deps / pkg.STAMP).write_text(json.dumps(stamp), encoding="utf-8")
    assert pkg.is_current(deps, requirements, "3.10")
    assert not pkg.is_current(deps, requirements, "3.12")
