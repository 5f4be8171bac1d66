"""The installable package: a wheel built from the repository installs ``axn_bind`` with its
runtime dependencies and nothing else at the top level, and serves a binding from a fresh venv.

The wheel is built with pip alone (``pip wheel --no-deps``; pip fetches setuptools for the
build) from a copy of the repository, so that the build writes nothing into the work tree. It is
installed with its dependencies from the package index into a venv with no other package, and
the installed handler binds against the local emulator from outside the source tree, in an
isolated interpreter (``-I``: neither the working directory nor PYTHONPATH is on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

import axn_bind
from tools.fc_local import local_env

ROOT = Path(__file__).resolve().parents[2]

# What the build reads is copied; local environments, caches, build output and the FC
# package's dependencies (src/python/, from tools/package.py --in-place) are not.
LEFT_BEHIND = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "python", "__pycache__", "*.egg-info", ".*cache", ".s"
)

# Runs in the venv's interpreter: what is importable, the installed distribution, and one
# binding through the installed handler; then an amqp:// target without the [amqp] extra.
CHILD = textwrap.dedent(
    """
    import json, os, sys
    from importlib import metadata
    report = {"prefix": sys.prefix, "sys_path": sys.path}
    try:
        import index
        report["index"] = index.__file__
    except ModuleNotFoundError as error:
        report["index"] = f"ModuleNotFoundError: {error.name}"
    import axn_bind
    from axn_bind import app, config
    dist = metadata.distribution("axn-bind")
    report.update(
        file=axn_bind.__file__,
        version=axn_bind.__version__,
        dist_version=dist.version,
        requires=dist.requires,
        license=dist.metadata["License-Expression"],
        installed=sorted(d.metadata["Name"].lower() for d in metadata.distributions()),
    )

    class Function:
        name, handler, memory, timeout = "axn-bind", "index.handler", 256, 30

    class Context:
        request_id = "install-test-1"
        function = Function()
        credentials = None

    request = {"PhoneNoA": "13900000001", "TtlSeconds": 3600, "OutOrderId": "install-1"}
    app.warm_up()
    report["bound"] = app.handle(json.dumps(request).encode(), Context())
    os.environ["AXN_PUBLISH_TO"] = "amqp://127.0.0.1:5672/?exchange=orders"
    config.reset_settings()
    app.reset()
    request["OutOrderId"] = "install-2"
    report["amqp"] = app.handle(json.dumps(request).encode(), Context())
    print(json.dumps(report))
    """
)


def _pip(*args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_TARGET")}
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, (
        f"pip {' '.join(args)}:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the repository."""
    base = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, base / "source", ignore=LEFT_BEHIND)
    started = time.perf_counter()
    _pip(
        "wheel", "--no-deps", "--quiet", "--wheel-dir", str(base / "dist"), ".", cwd=base / "source"
    )
    print(f"\nwheel built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    (built,) = (base / "dist").glob("*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_its_metadata(wheel):
    assert wheel.name == f"axn_bind-{axn_bind.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"axn_bind-{axn_bind.__version__}.dist-info"
        metadata = archive.read(f"{info}/METADATA").decode()
        license_text = archive.read(f"{info}/licenses/LICENSE").decode()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"axn_bind", info}, tops  # no index.py, tests, tools or bench
    shipped = {n for n in names if n.startswith("axn_bind/")}
    in_tree = {
        p.relative_to(ROOT / "src").as_posix()
        for p in (ROOT / "src" / "axn_bind").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert in_tree == shipped, in_tree ^ shipped  # every module and subpackage

    headers = [line.split(": ", 1) for line in metadata.split("\n\n", 1)[0].splitlines()]
    assert ["Version", axn_bind.__version__] in headers
    assert ["License-Expression", "Apache-2.0"] in headers
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    requires = [value for key, value in headers if key == "Requires-Dist"]
    runtime = _requirements(ROOT / "requirements.txt")
    assert {r.split("==")[0] for r in runtime} == {"pydantic", "requests", "redis"}
    amqp = [f'{r}; extra == "amqp"' for r in _requirements(ROOT / "requirements-amqp.txt")]
    assert requires == runtime + amqp
    assert ["Provides-Extra", "amqp"] in headers


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


@pytest.mark.slow
def test_the_installed_package_binds_from_a_fresh_venv(wheel, emulator, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    started = time.perf_counter()
    _pip("--python", str(python), "install", "--quiet", str(wheel), cwd=tmp_path)
    print(
        f"\ninstalled with its dependencies in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )

    emulator.reset()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**local_env(emulator.url), "TZ": "UTC", "LANG": "C.UTF-8"}
    proc = subprocess.run(
        [str(python), "-I", "-c", CHILD],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    # Only the package is installed at the top level: `import index` finds nothing.
    assert report["index"] == "ModuleNotFoundError: index", report["index"]
    # The package and its dependencies come from the venv, not from the source tree.
    assert Path(report["file"]).is_relative_to(venv), report["file"]
    assert not [p for p in report["sys_path"] if p.startswith(str(ROOT))], report["sys_path"]
    assert report["version"] == report["dist_version"] == axn_bind.__version__
    assert report["license"] == "Apache-2.0"
    for name in ("pydantic", "requests", "redis"):
        assert name in report["installed"], report["installed"]
    assert "pika" not in report["installed"]  # the [amqp] extra, not asked for

    bound = report["bound"]
    assert bound["Code"] == "OK", bound
    assert bound["SecretBindDTO"]["SecretNo"], bound
    (binding,) = emulator.bindings()
    assert binding["SubsId"] == bound["SecretBindDTO"]["SubsId"]
    started_lines = [
        json.loads(line[line.index("{") :])
        for line in proc.stderr.splitlines()
        if '"event":"instance_started"' in line
    ]
    assert [line["version"] for line in started_lines] == [axn_bind.__version__]

    # An amqp:// target without the extra is a configuration problem that says how to fix it.
    refused = report["amqp"]
    assert refused["Code"] == "InvalidConfiguration", refused
    assert "pip install 'axn-bind[amqp]'" in refused["Message"], refused["Message"]
