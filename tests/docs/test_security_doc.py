"""docs/security.md cannot silently go stale: every file it names exists, and every name it cites
in a Python file (``tests/…::test_name``, ``src/…::Class.method``, ``src/…::CONSTANT``) is
defined there.

References are read from the document's code spans (text between backticks):

- ``path.py::name`` (``::`` or ``.`` separating nested names): the file exists and defines the
  name, found with ``ast`` (a function, a class, or an assignment at that level; a class's
  methods and attributes through ``Class.name`` or ``Class::name``; pytest's ``[param]`` ids are
  ignored);
- a path: a span made only of path characters that ends in a known file extension, or that
  starts with one of the repository's top-level folders; it must exist (a trailing ``/`` means a
  folder). Absolute paths (``/code/…``, places on the function's instance) and URLs are not
  repository paths and are skipped.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"

SPAN = re.compile(r"`([^`\n]+)`")
REFERENCE = re.compile(r"([\w./-]+\.py)::([\w.:\[\]-]+)")
PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)*/?")
EXTENSIONS = (".py", ".md", ".json", ".txt", ".yaml", ".yml", ".toml")
TOP_FOLDERS = ("src", "tests", "tools", "docs", "bench", "events", ".ci")
SECTIONS = (
    "Trust boundaries",
    "HTTP trigger",
    "logged",
    "Secret handling",
    "SSRF",
    "size and nesting limits",
    "idempotency store",
    "Dependencies",
)


def spans() -> list[str]:
    return SPAN.findall(DOC.read_text(encoding="utf-8"))


def references() -> list[tuple[str, str]]:
    """``(file, dotted name)`` for every ``file.py::name`` in the document."""
    found = []
    for span in spans():
        for path, name in REFERENCE.findall(span):
            found.append((path, name))
    return found


def paths() -> list[str]:
    """Every repository path the document names (see the module docstring)."""
    found = []
    for span in spans():
        text = span.strip()
        if "::" in text or "://" in text or text.startswith(("/", "~", "$")):
            continue
        if not PATH.fullmatch(text):
            continue
        bare = text.rstrip("/")
        if bare.endswith(EXTENSIONS) or ("/" in text and bare.split("/", 1)[0] in TOP_FOLDERS):
            found.append(text)
    return found


@functools.cache
def tree_of(path: str) -> ast.Module:
    return ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)


def names_in(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """What a module or class body defines: functions, classes and assigned names."""
    out: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        out[leaf.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
        elif isinstance(node, (ast.If, ast.Try)):  # definitions under `if` / `try` at that level
            for block in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                out.update(names_in(block))
    return out


def defines(path: str, dotted: str) -> bool:
    parts = [p for p in re.split(r"::|\.", re.sub(r"\[.*?\]", "", dotted)) if p]
    body: list[ast.stmt] = tree_of(path).body
    for i, part in enumerate(parts):
        node = names_in(body).get(part)
        if node is None:
            return False
        if i < len(parts) - 1:
            if not isinstance(node, ast.ClassDef):
                return False
            body = node.body
    return True


def test_the_document_has_every_section_the_review_covers():
    headings = [
        line.lstrip("#").strip()
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    ]
    for section in SECTIONS:
        assert any(section.lower() in h.lower() for h in headings), (section, headings)


def test_the_document_is_read_as_intended():
    """The parsing below finds what the document cites (so the checks are not vacuous)."""
    refs = references()
    assert len({r for r in refs if r[0].startswith("tests/")}) >= 40
    assert len({r for r in refs if r[0].startswith("src/")}) >= 40
    assert len(set(paths())) >= 10
    assert ("tests/conftest.py", "privacy_scan") in refs
    assert "s.yaml" in paths() and "requirements.txt" in paths()


def test_every_cited_file_exists():
    missing = sorted(
        {
            p
            for p in paths()
            if not (ROOT / p).exists() or (p.endswith("/") and not (ROOT / p).is_dir())
        }
        | {f for f, _ in references() if not (ROOT / f).is_file()}
    )
    assert not missing, f"docs/security.md names files that do not exist: {missing}"


@pytest.mark.parametrize(
    ("path", "name"),
    sorted(set(references())),
    ids=lambda value: value,
)
def test_every_cited_name_is_defined_where_the_document_says(path, name):
    assert (ROOT / path).is_file(), f"{path} does not exist"
    assert defines(path, name), f"docs/security.md cites {path}::{name}, which is not defined there"


def test_the_checker_tells_defined_names_from_missing_ones():
    assert defines("tests/docs/test_security_doc.py", "defines")
    assert defines("src/axn_bind/errors.py", "TransientFailureError.MAX_MESSAGE")
    assert defines("src/axn_bind/config.py", "Settings::from_env")
    assert not defines("src/axn_bind/errors.py", "TransientFailureError.NO_SUCH_NAME")
    assert not defines("src/axn_bind/config.py", "SETTINGS.items")  # not a class
    assert not defines("tests/docs/test_security_doc.py", "test_that_does_not_exist")
