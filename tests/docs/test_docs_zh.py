"""The Chinese docs must not drift from the code or from the English docs.

README.zh-CN.md is a translation of README.md, section by section. These checks fail when the
code gains, loses or changes a setting, when README.md changes a default or a row of its status
table, when a link between the two READMEs disappears, when docs/deploy.zh-CN.md (once it
exists) pins another Serverless Devs CLI than docs/deploy.md, when either README gains or loses
a ``##`` section that the other lacks, when a README's contents miss a heading, and when an error
code the function can answer is missing from the Troubleshooting section of either README. Only
files of this repository are read.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import axn_bind
from axn_bind.config import SETTINGS
from axn_bind.dypls import codes as upstream_codes
from axn_bind.errors import AxnError
from tests.tools.test_deploy import readme_configuration_names

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_ZH = ROOT / "README.zh-CN.md"
DEPLOY = ROOT / "docs" / "deploy.md"
DEPLOY_ZH = ROOT / "docs" / "deploy.zh-CN.md"

# The heading of the configuration section in each README.
CONFIGURATION_HEADING = {README: "Configuration", README_ZH: "配置"}

# Every `##` section of README.md, in order, and its heading in README.zh-CN.md. A section added
# to (or removed from) either README without the other fails test_sections_correspond.
SECTIONS = {
    "Quick start": "快速开始",
    "How a request flows": "请求流程",
    "HTTP API": "HTTP API",
    "Client examples": "客户端示例",
    "OpenAPI: Postman and Apifox": "OpenAPI：Postman 与 Apifox",
    "Events: queues, buses, timers": "事件：队列、总线、定时触发器",
    "Idempotency: exactly one binding per order": "幂等：每个订单恰好一个绑定关系",
    "Publishing: announcing every outcome to the order flow": "发布：把每个结果通知订单流程",
    "Retries and unknown outcomes": "重试与结果未知",
    "Configuration": "配置",
    "Deployment": "部署",
    "Troubleshooting": "故障排查",
    "Performance": "性能",
    "Testing": "测试",
    "URLs": "URL",
    "Logs, metrics and privacy": "日志、指标与隐私",
    "Layout": "目录结构",
    "The local Dyplsapi emulator": "本地 Dyplsapi 模拟器",
    "Choices made where the specification is silent": "规范未作规定之处的取舍",
}
TROUBLESHOOTING_HEADING = {README: "Troubleshooting", README_ZH: "故障排查"}

# Defaults README.md states in words, and how README.zh-CN.md states them. Any other default
# (a value in backticks) must be identical in both tables.
DEFAULT_WORDS = {"set by FC": "由 FC 设置", "empty": "空"}

# Same rule as tests/tools/test_deploy.py: setting names are backticked upper-case identifiers.
_SETTING = re.compile(r"`([A-Z][A-Z0-9_]+)`")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_STATUS = re.compile(r"\b[1-5]\d\d\b")
# A table row's cell separators: a `|` outside code spans.
_CELL_BAR = re.compile(r"\|(?=(?:[^`]*`[^`]*`)*[^`]*$)")
# The status table's header: its third column is `Code` (README.md: "| outcome | status | `Code` |").
_STATUS_HEADER = re.compile(r"^\|[^|\n]*\|[^|\n]*\|[ \t]*`Code`[ \t]*\|[ \t]*$", re.M)
# `npx [flags] @serverless-devs/s[@version]`
_NPX_S = re.compile(
    r"npx(?:[ \t]+-{1,2}[\w-]+(?:=\S+)?)*[ \t]+@serverless-devs/s"
    r"(?:@(?P<version>[^\s`'\")\]]+))?(?![\w./@-])"
)


def read(path: Path) -> str:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    return path.read_text(encoding="utf-8")


def cells(line: str) -> list[str]:
    """The cells of a Markdown table row, split on `|` outside code spans."""
    return [cell.strip() for cell in _CELL_BAR.split(line.strip())[1:-1]]


def section(path: Path, heading: str) -> str:
    """The text of the ``## heading`` section of ``path`` (up to the next ``## ``)."""
    found = re.search(rf"^## {re.escape(heading)}[ \t]*\n(.*?)(?=^## |\Z)", read(path), re.M | re.S)
    assert found, f"{path.relative_to(ROOT)} has no '## {heading}' section"
    return found[1]


def configuration_table(path: Path) -> list[tuple[str, str]]:
    """(setting, default cell) for each name in the first cell of the configuration table.

    The approach of ``readme_configuration_names`` in tests/tools/test_deploy.py: the table rows of the
    configuration section, the backticked names of each row's first cell.
    """
    rows = []
    for line in section(path, CONFIGURATION_HEADING[path]).splitlines():
        if line.startswith("|"):
            row = cells(line)
            for name in _SETTING.findall(row[0]):
                rows.append((name, " ".join(row[1].split()) if len(row) > 1 else ""))
    return rows


def status_table(path: Path) -> list[list[str]]:
    """The body rows (cells) of the status table: the one whose third header cell is `Code`."""
    text = read(path)
    headers = list(_STATUS_HEADER.finditer(text))
    name = path.relative_to(ROOT)
    assert len(headers) == 1, f"{name}: expected one table headed '| … | … | `Code` |'"
    lines = text[headers[0].end() :].lstrip("\n").splitlines()
    assert lines and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[0].strip()), (
        f"{name}: the status table header is not followed by |---|"
    )
    rows = []
    for line in lines[1:]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    assert rows, f"{name}: the status table has no rows"
    return rows


def spans(text: str) -> set[str]:
    return set(_CODE_SPAN.findall(text))


def npx_versions(path: Path) -> list[tuple[int, str | None]]:
    """(line number, pinned version or None) of every ``npx @serverless-devs/s`` in ``path``."""
    return [
        (number, match["version"])
        for number, line in enumerate(read(path).splitlines(), start=1)
        for match in _NPX_S.finditer(line)
    ]


# ---------------------------------------------------------------------------------------------
# (a) and (b): the configuration table
# ---------------------------------------------------------------------------------------------


def test_english_table_is_read_as_test_deploy_reads_it():
    """Both files use one reading of the configuration table (test_deploy checks README.md)."""
    assert {name for name, _ in configuration_table(README)} == readme_configuration_names()


def test_chinese_configuration_table_lists_every_setting_and_nothing_else():
    names = [name for name, _ in configuration_table(README_ZH)]
    missing = [n for n in SETTINGS if n not in names]
    extra = sorted(set(names) - set(SETTINGS))
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not missing, f"add to the configuration table of README.zh-CN.md (## 配置): {missing}"
    assert not extra, f"README.zh-CN.md documents settings the code does not read: {extra}"
    assert not twice, f"README.zh-CN.md lists these settings more than once: {twice}"


def test_chinese_defaults_are_the_english_defaults():
    english = dict(configuration_table(README))
    chinese = dict(configuration_table(README_ZH))
    wrong = []
    for name in SETTINGS:
        if name not in english or name not in chinese:
            continue  # reported by the table checks
        expected = DEFAULT_WORDS.get(english[name], english[name])
        if chinese[name] != expected:
            wrong.append(
                f"{name}: README.md says {english[name]!r}, README.zh-CN.md {chinese[name]!r}"
                f" (expected {expected!r})"
            )
    assert not wrong, (
        "defaults differ (a default given in words needs its Chinese in DEFAULT_WORDS):\n"
        + "\n".join(wrong)
    )


# ---------------------------------------------------------------------------------------------
# (c): the status table
# ---------------------------------------------------------------------------------------------


def test_every_code_of_the_status_table_is_in_chinese():
    """Each backticked value of README.md's status table (the `Code` column, and the upstream
    codes named in the outcome column) appears in README.zh-CN.md's status table."""
    english = set().union(*(spans(" ".join(row)) for row in status_table(README)))
    codes = set().union(*(spans(row[2]) for row in status_table(README) if len(row) > 2))
    assert codes, "README.md's status table has no backticked Code value"
    chinese = set().union(*(spans(" ".join(row)) for row in status_table(README_ZH)))
    missing_codes = sorted(codes - chinese)
    assert not missing_codes, f"`Code` values missing from README.zh-CN.md: {missing_codes}"
    missing = sorted(english - chinese)
    assert not missing, f"values of the status table missing from README.zh-CN.md: {missing}"


def test_status_tables_match_row_by_row():
    """Same rows in the same order: status codes and backticked values per row."""
    english, chinese = status_table(README), status_table(README_ZH)
    assert len(chinese) == len(english), (
        f"README.md's status table has {len(english)} rows, README.zh-CN.md's {len(chinese)}"
    )
    for number, (en, zh) in enumerate(zip(english, chinese, strict=True), start=1):
        status_en = _STATUS.findall(en[1]) if len(en) > 1 else []
        status_zh = _STATUS.findall(zh[1]) if len(zh) > 1 else []
        assert status_zh == status_en, f"row {number}: status {status_zh} vs {status_en}: {en}"
        assert spans(" ".join(zh)) == spans(" ".join(en)), (
            f"row {number} differs; README.md has {' | '.join(en)}"
        )


# ---------------------------------------------------------------------------------------------
# (d): links between the two READMEs
# ---------------------------------------------------------------------------------------------


def _links_to(text: str, target: str) -> bool:
    return re.search(rf"\]\(\s*(?:\./)?{re.escape(target)}(?:#[^)\s]*)?\s*\)", text) is not None


def test_readme_links_to_the_chinese_readme():
    assert _links_to(read(README), "README.zh-CN.md"), (
        "README.md must link to README.zh-CN.md, e.g. 中文文档：[README.zh-CN.md](README.zh-CN.md)"
    )


def test_chinese_readme_links_back():
    assert _links_to(read(README_ZH), "README.md"), "README.zh-CN.md must link to README.md"


# ---------------------------------------------------------------------------------------------
# (e): the pinned Serverless Devs CLI
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("english", "chinese"),
    [(DEPLOY, DEPLOY_ZH), (README, README_ZH)],
    ids=["docs/deploy", "README"],
)
def test_chinese_docs_pin_the_same_serverless_devs_cli(english, chinese):
    assert chinese.is_file(), f"{chinese.relative_to(ROOT)} is missing: README.md links to it"
    pinned = {version for _, version in npx_versions(english)}
    wrong = [
        f"line {line}: npx @serverless-devs/s{'@' + version if version else ''}"
        for line, version in npx_versions(chinese)
        if version not in pinned
    ]
    shown = ", ".join(sorted(f"@{v}" if v else "no version" for v in pinned)) or "no npx command"
    assert not wrong, (
        f"{chinese.relative_to(ROOT)} runs another Serverless Devs CLI than "
        f"{english.relative_to(ROOT)} ({shown}):\n" + "\n".join(wrong)
    )


# ---------------------------------------------------------------------------------------------
# (f): the same sections, and contents that reach every heading
# ---------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_TOC = re.compile(r"<!-- toc -->\n(.*?)<!-- /toc -->", re.S)


def headings(path: Path, level: str = "##") -> list[str]:
    """The ``level`` headings of ``path`` in order, code blocks left out."""
    text = _FENCE.sub("", read(path))
    return [m[1].strip() for m in re.finditer(rf"^{level} (.+)$", text, re.M)]


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_sections_correspond():
    english, chinese = headings(README), headings(README_ZH)
    extra_en = [h for h in english if h not in SECTIONS]
    missing_en = [h for h in SECTIONS if h not in english]
    extra_zh = [h for h in chinese if h not in SECTIONS.values()]
    missing_zh = [zh for zh in SECTIONS.values() if zh not in chinese]
    assert not extra_en and not missing_en, (
        f"README.md's sections differ from SECTIONS in this test: new {extra_en}, gone "
        f"{missing_en}; give README.zh-CN.md the same section and add both to SECTIONS"
    )
    assert not extra_zh and not missing_zh, (
        f"README.zh-CN.md's sections differ from SECTIONS in this test: new {extra_zh}, gone "
        f"{missing_zh}; every section of README.md needs its translation"
    )
    assert [SECTIONS[h] for h in english] == chinese, (
        "the two READMEs order their sections differently"
    )


@pytest.mark.parametrize("path", [README, README_ZH], ids=["README", "README.zh-CN"])
def test_contents_link_every_heading(path):
    found = _TOC.search(read(path))
    name = path.relative_to(ROOT)
    assert found, f"{name} has no contents between <!-- toc --> and <!-- /toc -->"
    links = re.findall(r"\]\(#([^)\s]+)\)", found[1])
    wanted = [anchor(h) for h in headings(path, "##") + headings(path, "###")]
    missing = sorted(set(wanted) - set(links))
    dangling = sorted(set(links) - set(wanted))
    assert not missing, f"{name}: the contents do not link to {missing}"
    assert not dangling, f"{name}: the contents link to headings that do not exist: {dangling}"


# ---------------------------------------------------------------------------------------------
# (g): every code the function answers is in Troubleshooting, in both languages
# ---------------------------------------------------------------------------------------------

# A backticked code: a name such as `StoreNotDurable`, `isv.NO_AVAILABLE_NUMBER`, `Forbidden.RAM`,
# or a family such as `Throttling*` and `isp.*` (not `Allow: POST`, `Retry-After` or `A=b`).
_CODE = re.compile(r"(?:isv|isp)\.\*|[A-Za-z][A-Za-z0-9]*(?:[._][A-Za-z0-9_]+)*\*?")


def _codes_in(spans_: set[str]) -> set[str]:
    return {s for s in spans_ if _CODE.fullmatch(s)}


def answered_codes() -> dict[str, str]:
    """Every code the function can answer, with where it comes from: README.md's status table,
    the error classes (src/axn_bind/errors.py and every AxnError subclass), each ``code="…"``
    given where an error is made, the upstream code table and its prefixes, and
    docs/openapi.json (generated from the code)."""
    found: dict[str, str] = {}

    def add(names, source: str) -> None:
        for name in names:
            if name != "OK":
                found.setdefault(name, source)

    for row in status_table(README):
        add(_codes_in(spans(" ".join(row[:1] + row[2:]))), "README.md's status table")
    for module in pkgutil.walk_packages(axn_bind.__path__, "axn_bind."):
        importlib.import_module(module.name)
    classes, todo = [], [AxnError]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    add((cls.code for cls in classes), "an error class")
    for path in sorted((ROOT / "src" / "axn_bind").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "code"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                add([node.value.value], str(path.relative_to(ROOT)))
    add(upstream_codes.CODES, "src/axn_bind/dypls/codes.py")
    add((prefix + "*" for prefix, _ in upstream_codes.PREFIXES), "src/axn_bind/dypls/codes.py")
    contract = json.loads(read(ROOT / "docs" / "openapi.json"))
    for operation in (op for item in contract["paths"].values() for op in item.values()):
        for answer in operation.get("responses", {}).values():
            add(_codes_in(set(_CODE_SPAN.findall(answer.get("description", "")))), "openapi.json")
    return found


def test_the_code_list_is_not_empty():
    """A list that silently lost its sources would make the Troubleshooting check pass."""
    found = answered_codes()
    for code in (
        "StoreNotDurable",
        "isv.NO_AVAILABLE_NUMBER",
        "OutcomeUnknown",
        "isp.*",
        "UpstreamTimeout",
        "NotAttempted",
        "SignatureDoesNotMatch",
    ):
        assert code in found, code
    assert len(found) > 50, sorted(found)


@pytest.mark.parametrize("path", [README, README_ZH], ids=["README", "README.zh-CN"])
def test_troubleshooting_names_every_code(path):
    named = spans(section(path, TROUBLESHOOTING_HEADING[path]))
    missing = {code: source for code, source in answered_codes().items() if code not in named}
    assert not missing, (
        f"{path.relative_to(ROOT)}: Troubleshooting does not name these codes (say what causes "
        "each and how to fix it, naming the setting where configuration is at fault): "
        + ", ".join(f"`{code}` (from {source})" for code, source in sorted(missing.items()))
    )
