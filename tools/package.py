"""Build the Function Compute code package without Docker.

The FC Python runtimes ship only ``requests`` (see docs/deploy.md); everything else in
``requirements.txt`` (pydantic with its compiled pydantic-core, redis, ...) and the optional
clients of ``requirements-amqp.txt`` (pika) has to travel inside the code package, built for the
runtime's platform (``manylinux2014_x86_64``) and Python (cp310 for ``python3.10``, cp312 for
``python3.12``). ``pip --platform ... --only-binary=:all:`` fetches exactly
those wheels on any host, so no Docker and no Linux build tools are needed.

Two layouts:

* ``python tools/package.py`` (``make package``): a self-contained directory, by default
  ``build/package/``, holding a copy of ``src/`` and the dependencies in ``python/``. The tests import
  the handler from it in a clean interpreter; it can also be zipped and uploaded by hand.
* ``python tools/package.py --in-place`` (the ``pre-deploy`` action in ``s.yaml``): the
  dependencies go to ``src/python/`` (git-ignored) because ``s.yaml`` deploys ``code: ./src``. A
  stamp file makes a repeated call with unchanged requirements a no-op.

Either way the runtime finds the dependencies through ``PYTHONPATH=/code/python`` (set in s.yaml).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "manylinux2014_x86_64"
RUNTIMES = {"python3.10": "3.10", "python3.12": "3.12"}
DEFAULT_RUNTIME = "python3.10"
DEPS_DIR = "python"
STAMP = ".axn-package.json"
# What the code package installs: the runtime dependencies (requirements.txt, what
# `pip install axn-bind` installs) and the clients of the extras (pip install 'axn-bind[amqp]').
# A deployed function takes its publish targets from its environment, so it carries every client
# a setting can name; each is imported only when one is named, and costs no cold start otherwise.
REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "requirements-amqp.txt")

# Always left out, whatever .fcignore says: interpreter and tool caches.
_ALWAYS_SKIP = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".ruff_cache", ".DS_Store")

# Distributions installed as dependencies of another but never used by the function, left out
# of the package (each costs every cold start its import), with why. requests imports
# charset_normalizer only to guess the text encoding of an answer that names no charset, for
# Response.text; the function reads bytes and parses JSON, and without it requests takes UTF-8.
# Leaving it out saves about 21 ms and 2.6 MB of `import requests` on python3.10;
# axn_bind.dypls.transport silences the one warning requests gives for it at import.
LEFT_OUT = ("charset-normalizer",)


class PackageError(RuntimeError):
    """The package could not be built; the message says why."""


def python_version_of(runtime: str) -> str:
    """``"3.10"`` for ``python3.10`` (also accepts ``3.10``); PackageError for anything else."""
    if runtime in RUNTIMES:
        return RUNTIMES[runtime]
    if runtime in RUNTIMES.values():
        return runtime
    choices = ", ".join(RUNTIMES)
    raise PackageError(f"Unsupported runtime {runtime!r}; choose one of {choices}.")


def find_python(version: str) -> Path | None:
    """An interpreter of ``version`` (e.g. ``3.10``): pyenv's newest patch release, else PATH."""
    roots = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run(  # noqa: S603 - fixed arguments, no shell
                [pyenv, "root"], capture_output=True, text=True, timeout=30, check=False
            )
            if out.returncode == 0 and out.stdout.strip():
                roots.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    roots.append(Path.home() / ".pyenv")
    for root in roots:
        found = sorted(
            (root / "versions").glob(f"{version}.*/bin/python"),
            key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.parent.name)],
        )
        if found:
            return found[-1]
    on_path = shutil.which(f"python{version}")
    return Path(on_path) if on_path else None


def ignore_patterns(fcignore: Path) -> list[str]:
    """The patterns of a ``.fcignore`` file (gitignore syntax; negation is not supported)."""
    if not fcignore.is_file():
        return []
    patterns = []
    for raw in fcignore.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise PackageError(f"{fcignore}: negated patterns ({line}) are not supported.")
        patterns.append(line)
    return patterns


@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """gitignore globbing: ``*`` and ``?`` stay within one path segment, ``**`` crosses them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def is_ignored(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    """gitignore-style match of a POSIX path relative to the package root (no negation)."""
    name = rel.rsplit("/", 1)[-1]
    for pattern in (*_ALWAYS_SKIP, *patterns):
        if pattern.endswith("/") and not is_dir:
            continue
        pat = pattern.rstrip("/")
        if "/" in pat:  # anchored: matched against the whole path from the root
            if _glob_regex(pat.lstrip("/")).fullmatch(rel):
                return True
        elif _glob_regex(pat).fullmatch(name):
            return True
    return False


def copy_tree(src: Path, dest: Path, patterns: list[str], *, skip_top: tuple[str, ...] = ()) -> int:
    """Copy ``src`` into ``dest`` without the ignored entries; returns the number of files."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(src):
        base = Path(dirpath)
        rel_base = base.relative_to(src).as_posix()
        rel_base = "" if rel_base == "." else rel_base + "/"
        kept = []
        for d in sorted(dirnames):
            rel = rel_base + d
            if (not rel_base and d in skip_top) or is_ignored(rel, True, patterns):
                continue
            kept.append(d)
        dirnames[:] = kept
        for f in sorted(filenames):
            rel = rel_base + f
            if is_ignored(rel, False, patterns):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(base / f, target)
            count += 1
    return count


def prune(tree: Path, patterns: list[str], prefix: str = "") -> None:
    """Delete the ignored entries below ``tree``, whose path in the package is ``prefix``."""
    for dirpath, dirnames, filenames in os.walk(tree, topdown=True):
        base = Path(dirpath)
        rel_base = base.relative_to(tree).as_posix()
        rel_base = prefix if rel_base == "." else prefix + rel_base + "/"
        for d in list(dirnames):
            if is_ignored(rel_base + d, True, patterns):
                shutil.rmtree(base / d)
                dirnames.remove(d)
        for f in filenames:
            if is_ignored(rel_base + f, False, patterns):
                (base / f).unlink()


def _files(requirements: Path | Sequence[Path]) -> list[Path]:
    return [requirements] if isinstance(requirements, Path) else list(requirements)


def requirements_digest(requirements: Path | Sequence[Path]) -> str:
    """SHA-256 of the requirement files' text, in order."""
    digest = hashlib.sha256()
    for path in _files(requirements):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def pip_install(
    requirements: list[str], target: Path, version: str, *, cache_dir: Path | None, quiet: bool
) -> None:
    """Install ``requirements`` (``-r file`` or specifiers) into ``target`` as FC-platform wheels."""
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    if quiet:
        cmd.append("--quiet")
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    cmd += [
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        version,
        "--only-binary=:all:",
        *requirements,
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_TARGET")}
    result = subprocess.run(cmd, env=env, check=False)  # noqa: S603 - argument list, no shell
    if result.returncode != 0:
        raise PackageError(
            f"pip could not install the requirements for cp{version.replace('.', '')} "
            f"{PLATFORM} (exit {result.returncode}). Every dependency needs a wheel for that "
            "platform: pin a version that has one."
        )


def _requirement_class() -> type:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always carries a copy
        from pip._vendor.packaging.requirements import Requirement
    return Requirement


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def target_environments(version: str) -> list[dict[str, str]]:
    """Marker environments of the FC runtime (lowest and a high patch release of ``version``)."""
    base = {
        "implementation_name": "cpython",
        "implementation_version": f"{version}.0",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "sys_platform": "linux",
        "python_version": version,
        "platform_release": "",
        "platform_version": "",
    }
    return [{**base, "python_full_version": f"{version}.{patch}"} for patch in (0, 99)]


def missing_requirements(deps: Path, version: str) -> list[str]:
    """Dependencies the target Python needs that are not in ``deps``.

    ``pip --python-version`` picks wheels for the target but evaluates environment markers for the
    Python running pip: built on 3.11.3+ for cp310, ``redis`` would come without ``async-timeout``.
    This re-reads every installed distribution's ``Requires-Dist`` under the runtime's markers.
    """
    requirement_cls = _requirement_class()
    installed: set[str] = set()
    requires: list[tuple[str, str]] = []
    for meta in deps.glob("*.dist-info/METADATA"):
        headers = _headers(meta)
        name = next((v for k, v in headers if k == "Name"), "")
        requires += [(name, v) for k, v in headers if k == "Requires-Dist"]
        installed.add(_canonical(name))
    missing: dict[str, str] = {}
    for owner, spec in requires:
        req = requirement_cls(spec)
        needed = any(
            req.marker is None or req.marker.evaluate({**env, "extra": ""})
            for env in target_environments(version)
        )
        if needed and _canonical(req.name) not in installed:
            missing[_canonical(req.name)] = f"{req.name}{req.specifier}"
            print(f"package: {owner} needs {req} on Python {version}; adding it")
    return sorted(missing.values())


_ABI_TAG = re.compile(r"\.cpython-(\d+)-")


def check_binaries(deps: Path, version: str) -> list[str]:
    """The compiled modules in ``deps``; PackageError if one is for another Python or platform."""
    want = version.replace(".", "")
    found = []
    for so in sorted(deps.rglob("*.so")):
        name = so.name
        tag = _ABI_TAG.search(name)
        if tag and tag.group(1) != want:
            raise PackageError(
                f"{so.relative_to(deps)} is built for cp{tag.group(1)}, not cp{want}."
            )
        if tag and "x86_64-linux-gnu" not in name:
            raise PackageError(f"{so.relative_to(deps)} is not built for x86_64 Linux.")
        found.append(so.relative_to(deps).as_posix())
    for bad in ("*.pyd", "*.dylib"):
        for path in deps.rglob(bad):
            raise PackageError(f"{path.relative_to(deps)} is not a Linux binary.")
    return found


def _headers(meta: Path) -> list[tuple[str, str]]:
    """The ``Key: value`` headers of a distribution's METADATA (they end at the first blank)."""
    out = []
    for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        out.append((key, value.strip()))
    return out


def _record_files(record: Path) -> list[str]:
    """The files a distribution's RECORD lists, relative to the install directory."""
    lines = record.read_text(encoding="utf-8").splitlines()
    files = [line.rsplit(",", 2)[0].strip('"') for line in lines]
    return [f for f in files if f and not f.startswith(("../", "/"))]


def leave_out(deps: Path) -> None:
    """Remove the distributions named in LEFT_OUT from ``deps``: every file their RECORD lists,
    then their dist-info."""
    for record in sorted(deps.glob("*.dist-info/RECORD")):
        name = next((v for k, v in _headers(record.parent / "METADATA") if k == "Name"), "")
        if _canonical(name) not in _left_out_names():
            continue
        files = _record_files(record)
        for rel in files:
            (deps / rel).unlink(missing_ok=True)
        for top in {Path(rel).parts[0] for rel in files}:
            if (deps / top).is_dir() and not any(f.is_file() for f in (deps / top).rglob("*")):
                shutil.rmtree(deps / top)  # nothing but emptied directories is left in it
        shutil.rmtree(record.parent, ignore_errors=True)


def check_records(deps: Path) -> None:
    """PackageError if pruning removed a file that an installed distribution lists as its own."""
    lost = []
    for record in sorted(deps.glob("*.dist-info/RECORD")):
        for rel in _record_files(record):
            if rel.startswith("bin/") or "__pycache__" in rel:
                continue
            if not (deps / rel).exists():
                lost.append(rel)
    if lost:
        shown = ", ".join(lost[:5]) + (" ..." if len(lost) > 5 else "")
        raise PackageError(
            f".fcignore removed {len(lost)} file(s) the dependencies need: {shown}. "
            "Anchor the pattern (start it with /) so that it matches only at the top."
        )


def build_deps(
    requirements: Path | Sequence[Path],
    deps: Path,
    version: str,
    patterns: list[str],
    *,
    cache_dir: Path | None,
    quiet: bool,
) -> dict[str, Any]:
    """Install into a scratch directory, check it, then swap it in as ``deps``."""
    deps.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".deps-", dir=deps.parent))
    try:
        specs = [arg for path in _files(requirements) for arg in ("-r", str(path))]
        for _ in range(5):
            pip_install(specs, scratch, version, cache_dir=cache_dir, quiet=quiet)
            extra = missing_requirements(scratch, version)
            if not extra:
                break
            # Reinstall everything together so that pip resolves one consistent set.
            shutil.rmtree(scratch)
            scratch.mkdir()
            specs = [*specs, *extra]
        else:
            raise PackageError("The dependency set did not settle after 5 rounds.")
        leave_out(scratch)
        prune(scratch, patterns, prefix=DEPS_DIR + "/")
        check_records(scratch)
        binaries = check_binaries(scratch, version)
        stamp = {
            "python_version": version,
            "platform": PLATFORM,
            "requirements_sha256": requirements_digest(requirements),
            "binaries": binaries,
            "left_out": _left_out_names(),
        }
        (scratch / STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        if deps.exists():
            shutil.rmtree(deps)
        scratch.rename(deps)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return stamp


def compile_bytecode(root: Path, version: str, *, quiet: bool = False) -> int:
    """Compile every module under ``root`` with the runtime's own interpreter, hash-validated
    without checking the source (``unchecked-hash``): an unzipped upload gets new timestamps,
    which would invalidate timestamp-based .pyc files, and a read-only /code could not replace
    them. Every cold start would then compile the whole package again. Returns the number of
    .pyc files written; 0 (with a warning) when no interpreter of that version is found."""
    python = find_python(version)
    if python is None:
        print(
            f"warning: no Python {version} interpreter (pyenv install {version}): the package "
            "ships without bytecode, and every cold start compiles it",
            file=sys.stderr,
        )
        return 0
    tag = f"cpython-{version.replace('.', '')}"
    command = [str(python), "-m", "compileall", "-q", "-f", "-j", "0"]
    command += ["--invalidation-mode", "unchecked-hash", str(root)]
    # A third-party file that does not compile (a Python 2 example, say) is only reported.
    subprocess.run(command, check=False, capture_output=quiet)  # noqa: S603 - argument list, no shell
    written = list(root.rglob(f"*.{tag}.pyc"))
    if not any(p.parent.parent.name == "axn_bind" for p in written):
        raise PackageError(f"{python} -m compileall wrote no bytecode for axn_bind under {root}.")
    return len(written)


def is_current(deps: Path, requirements: Path | Sequence[Path], version: str) -> bool:
    try:
        stamp = json.loads((deps / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        stamp.get("python_version") == version
        and stamp.get("requirements_sha256") == requirements_digest(requirements)
        and stamp.get("left_out") == _left_out_names()  # built by this recipe, not an older one
    )


def _left_out_names() -> list[str]:
    return sorted(_canonical(name) for name in LEFT_OUT)


def build(
    *,
    out: Path | None,
    runtime: str = DEFAULT_RUNTIME,
    in_place: bool = False,
    src: Path = ROOT / "src",
    requirements: Path | Sequence[Path] = REQUIREMENTS,
    fcignore: Path = ROOT / ".fcignore",
    cache_dir: Path | None = None,
    force: bool = False,
    quiet: bool = False,
) -> Path:
    """Build the package; returns its root (``out``, or ``src`` with ``in_place``)."""
    version = python_version_of(runtime)
    patterns = ignore_patterns(fcignore)
    if not (src / "index.py").is_file():
        raise PackageError(f"{src}/index.py not found: the handler index.handler lives there.")
    if in_place:
        deps = src / DEPS_DIR
        if not force and is_current(deps, requirements, version):
            print(f"{deps}: up to date (cp{version.replace('.', '')}, {PLATFORM})")
        else:
            build_deps(requirements, deps, version, patterns, cache_dir=cache_dir, quiet=quiet)
        # s deploy zips src/ as it is: no caches of other interpreters, bytecode for this one.
        prune(src, [])
        compile_bytecode(src, version, quiet=quiet)
        return src
    if out is None:
        raise PackageError("An output directory is required unless --in-place is given.")
    out = out.resolve()
    if out == src.resolve() or src.resolve() in out.parents:
        raise PackageError(f"The output directory {out} must not be inside {src}.")
    if out.exists() and any(out.iterdir()):
        if not (out / DEPS_DIR / STAMP).is_file():
            raise PackageError(
                f"{out} is not empty and holds no earlier package: choose another --out."
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    copied = copy_tree(src, out, patterns, skip_top=(DEPS_DIR,))
    if fcignore.is_file():
        shutil.copy2(fcignore, out / ".fcignore")
    stamp = build_deps(
        requirements, out / DEPS_DIR, version, patterns, cache_dir=cache_dir, quiet=quiet
    )
    pycs = compile_bytecode(out, version, quiet=quiet)
    print(
        f"{out}: {copied} source files + dependencies for cp{version.replace('.', '')} "
        f"{PLATFORM} ({len(stamp['binaries'])} compiled modules, {pycs} .pyc files)"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "build" / "package",
        help="output directory (default: build/package); emptied first",
    )
    parser.add_argument(
        "--runtime",
        default=DEFAULT_RUNTIME,
        help="FC runtime the package is for: python3.10 (default) or python3.12",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="install the dependencies into src/python/ for `s deploy` (code: ./src)",
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        action="append",
        help="a requirements file to install, instead of the default requirements.txt and "
        "requirements-amqp.txt; repeat it for more than one",
    )
    parser.add_argument(
        "--src", type=Path, default=ROOT / "src", help="function code to package (default: src/)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="pip cache directory (default: pip's own)"
    )
    parser.add_argument("--force", action="store_true", help="reinstall even if up to date")
    parser.add_argument("--quiet", action="store_true", help="less pip output")
    args = parser.parse_args(argv)
    try:
        build(
            out=args.out,
            runtime=args.runtime,
            in_place=args.in_place,
            src=args.src,
            requirements=args.requirements or REQUIREMENTS,
            cache_dir=args.cache_dir,
            force=args.force,
            quiet=args.quiet,
        )
    except PackageError as error:
        print(f"package: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
