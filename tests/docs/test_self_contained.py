"""The repository needs nothing beside it: no source, test, tool or document points outside it.

Every text file that builds, tests or documents the function (``src/``, ``tests/``, ``tools/``, the
Makefile, ``.ci/run``, ``pyproject.toml``, ``s.yaml``, ``docs/*.md``, ``events/README.md`` and the
top-level READMEs) is read line by line. A line fails when it names a sibling folder of the
repository, the machine's work folder or a home directory.
URLs are allowed, and so are the paths every machine has: ``/tmp``, ``/usr``, ``/dev/null`` and
``/code/`` (the Function Compute code directory).

The files are the ones git would commit: tracked, plus untracked ones that are not ignored. In a
copy without ``.git`` (an unpacked archive) git still lists them, with the same ignore rules,
through a scratch git directory.

This file is checked too. Its patterns are built from pieces so that it never matches itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]

TREES = ("src", "tests", "tools")
FILES = ("Makefile", ".ci/run", "pyproject.toml", "s.yaml", "events/README.md")

SLASH = "/"
WORK = SLASH + "work"
ABSOLUTE = r"(?<![\w.~-])"  # a path that starts here, not a relative one such as tests/…
# (name, pattern): each pattern is assembled so that this file's own text never matches it.
LEAKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("sibling shared folder", re.compile(re.escape(".." + SLASH + "shared"))),
    # the reference folder, also when its path is joined from pieces (a / b, join(a, b), a + b)
    (
        "shared reference folder",
        re.compile("shared" + "(?:/|[\"'`]\\s*[/,+]\\s*[\"'`]/?)" + "reference"),
    ),
    ("work folder", re.compile(ABSOLUTE + re.escape(WORK) + "(?=[/\"'`]|$)")),
    (
        "home folder",
        re.compile(
            ABSOLUTE + SLASH + "(?:home|root|Users)" + SLASH + "|[A-Za-z]:[\\\\/]+Users[\\\\/]"
        ),
    ),
)
# scheme://host…: removed before matching. A URL with no host (file:///…) is left in, so a file
# URL into a work or home folder still fails.
URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/\"'`<>()\[\]]+[^\s\"'`<>()\[\]]*")


def leaks(line: str) -> list[str]:
    """The names of the patterns ``line`` matches once its URLs are removed."""
    bare = URL.sub("", line)
    return [name for name, pattern in LEAKS if pattern.search(bare)]


def _git_env() -> dict[str, str]:
    # A GIT_DIR or GIT_WORK_TREE set by a hook or an editor would make git list another tree.
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def _git(*args: str, git_dir: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    prefix = ["git"] if git_dir is None else ["git", f"--git-dir={git_dir}", f"--work-tree={ROOT}"]
    return subprocess.run(
        [*prefix, *args], cwd=ROOT, env=_git_env(), capture_output=True, check=False
    )


def listed_files(scratch: Path) -> list[str]:
    """``git ls-files --cached --others --exclude-standard`` of the repository, as POSIX paths."""
    if shutil.which("git") is None:
        message = "git is not installed: the files git would commit cannot be listed."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} CI=true: this test must run, not skip.", pytrace=False)
        pytest.skip(message)
    top = _git("rev-parse", "--show-toplevel")
    git_dir = None
    if top.returncode != 0 or Path(os.fsdecode(top.stdout.strip())).resolve() != ROOT:
        # No repository of its own (a copy of the files): an empty scratch repository over this
        # work tree applies the same .gitignore rules and lists every file as untracked.
        init = _git("init", "-q", str(scratch))
        assert init.returncode == 0, init.stderr.decode(errors="replace")
        git_dir = scratch / ".git"
    out = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z", git_dir=git_dir)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return sorted({os.fsdecode(p) for p in out.stdout.split(b"\0") if p})


def selected(path: str) -> bool:
    parts = PurePosixPath(path).parts
    if parts[0] in TREES or path in FILES:
        return True
    if len(parts) == 2 and parts[0] == "docs" and path.endswith(".md"):
        return True
    return len(parts) == 1 and path.startswith("README") and path.endswith(".md")


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary file (not UTF-8, or holding a NUL byte)."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    return listed_files(tmp_path_factory.mktemp("git"))


def test_the_listing_covers_what_is_checked(files):
    """A listing that silently missed the tree would make the real check pass vacuously."""
    me = Path(__file__).resolve().relative_to(ROOT).as_posix()
    for must in (me, "tests/e2e/test_events.py", "src/index.py", "README.md", *FILES):
        assert must in files, must
    samples = sorted(p.name for p in (ROOT / "tests" / "data" / "events").iterdir())
    assert samples
    for name in samples:
        assert f"tests/data/events/{name}" in files, name
    ignored = [f for f in files if f.startswith((".venv/", "build/")) or "__pycache__/" in f]
    assert not ignored


def test_no_file_points_outside_the_repository(files):
    found = []
    checked = 0
    for rel in files:
        path = ROOT / rel
        if not selected(rel) or not path.is_file():
            continue
        text = read_text(path)
        if text is None:
            continue
        checked += 1
        for number, line in enumerate(text.splitlines(), 1):
            for name in leaks(line):
                found.append(f"{rel}:{number}: {name}: {line.strip()}")
    assert checked > 50
    assert not found, "paths that leave the repository:\n" + "\n".join(found)


def test_no_listed_file_resolves_outside_the_repository(files):
    """A symbolic link to a folder beside the repository is the same dependency, hidden."""
    outside = []
    for rel in files:
        path = ROOT / rel
        if path.is_symlink() and not path.resolve().is_relative_to(ROOT):
            outside.append(f"{rel} -> {os.readlink(path)}")
    assert not outside, "links out of the repository:\n" + "\n".join(outside)


@pytest.mark.parametrize(
    "line",
    [
        "SAMPLES = ROOT.parent / '..'  # " + ".." + SLASH + "shared" + SLASH + "reference",
        "see " + "shared" + SLASH + "reference" + "/events/",
        'ROOT.parent / "' + "shared" + '" / "' + "reference" + '" / "events"',
        "os.path.join(ROOT, '..', '" + "shared" + "', '" + "reference" + "')",
        '"' + "shared" + '" + "/' + "reference" + '"',
        "cd " + WORK + SLASH + "main && make test",
        "path = '" + WORK + "'",
        'Path("' + SLASH + "home" + '/dev/project")',
        "`" + SLASH + "root" + "/.cache/x`",
        "open('" + SLASH + "Users" + "/me/x.json')",
        '"C:' + "\\" + "Users" + '\\me\\x"',
        "file://" + WORK + SLASH + "x.json",
        "https://example.com/a and then " + WORK + SLASH + "b",
        "cd " + WORK,
        "# see " + SLASH + "home" + "/me/x",
    ],
)
def test_each_kind_of_leak_is_caught(line):
    assert leaks(line)


@pytest.mark.parametrize(
    "line",
    [
        'tmp = Path("/tmp/axn")',
        "'/code/ApsaraDB-CA-Chain.pem'",
        "ssl_ca_certs=/code/ApsaraDB-CA-Chain.pem",
        'env = "/usr/bin/env"',
        "redis-cli ping >/dev/null 2>&1",
        "https://help.aliyun.com" + WORK + SLASH + "shared" + SLASH + "reference" + "/x",
        "redis://127.0.0.1:6379/13",
        "rel.startswith(('../', '/', 'bin/'))",
        '"certifi-1.0.dist-info/RECORD,,\\n../../bin/x,,\\n"',
        'root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")',
        "a store shared by all instances",
        "`/v1/bind` and `/admin`",
        "homework/ and /network/ and tests" + WORK + SLASH + "x",
    ],
)
def test_what_is_allowed_is_not_flagged(line):
    assert leaks(line) == []
