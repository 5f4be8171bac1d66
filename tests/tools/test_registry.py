"""The Serverless Devs application template (``make registry``, tools/registry.py).

The template is built into a temporary directory and checked against Serverless Devs' application
spec (docs/zh/development-manual/readme.md and parameters.md of the Serverless-Devs repository):
the layout (publish.yaml, readme.md, version.md, src/ with s.yaml), publish.yaml's required keys
and values, and Parameters as JSON Schema (draft 7, plus the one type the spec adds: ``secret``,
which `s init` asks for hidden). Every ``{{ NAME }}`` placeholder in src/s.yaml is a declared
non-secret parameter and each of those is used; secrets have no placeholder and reach the function
through ``.env``. Rendered with the parameters' defaults, src/s.yaml is the repository's s.yaml
and passes every check of tests/tools/test_deploy.py's SHARED_CHECKS, ``s preview`` included; and the
pinned `s` CLI initialises an application from the zip, offline.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.validators import extend

from tests.tools import test_deploy
from tests.tools.test_deploy import SHARED_CHECKS, ServerlessDevs, raw_doc
from tools import registry

ROOT = Path(__file__).resolve().parents[2]

# The application spec: publish.yaml's keys (required ones), and the values it allows.
REQUIRED_KEYS = (
    "Edition",
    "Type",
    "Name",
    "Provider",
    "Version",
    "Description",
    "Category",
    "Service",
    "Organization",
    "Effective",
    "Parameters",
)
OPTIONAL_KEYS = ("HomePage", "Tags")
PROVIDERS = {"阿里云", "百度智能云", "华为云", "腾讯云", "AWS", "Azure", "Google Cloud", "其它"}
CATEGORIES = {
    "基础云服务",
    "Web框架",
    "全栈应用",
    "人工智能",
    "音视频处理",
    "图文处理",
    "监控告警",
    "大数据",
    "IoT",
    "新手入门",
    "其它",
    "开源项目",
}
SERVICES = {
    "函数计算",
    "容器服务",
    "镜像服务",
    "消息队列",
    "工作流",
    "CDN",
    "对象存储",
    "表格存储",
    "MNS",
    "日志服务",
    "API网关",
    "数据库",
    "解析服务",
    "云应用",
    "其它",
}
EFFECTIVE = {"Public", "Private", "Organization"}
# What the application must let its user choose at `s init` (the README's promise).
MUST_ASK = {
    "S_REGION",
    "S_FUNCTION_NAME",
    "AXN_POOL_KEY",
    "AXN_IDEMPOTENCY_URL",
    "AXN_PUBLISH_TO",
    "AXN_UNKNOWN_OUTCOME",
}
SECRET_PARAMETERS = {"AXN_IDEMPOTENCY_URL", "AXN_WEBHOOK_SECRET"}

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_NAME = re.compile(r"\s*([A-Za-z_$][\w$]*)\s*")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("registry") / "registry"
    registry.build(out)
    return out


def publish(template: Path) -> dict[str, Any]:
    return yaml.safe_load((template / "publish.yaml").read_text(encoding="utf-8"))


def parameters(template: Path) -> dict[str, dict[str, Any]]:
    return publish(template)["Parameters"]["properties"]


def placeholders(text: str) -> list[str]:
    """The names of the ``{{ … }}`` placeholders; AssertionError for anything else in braces."""
    names = []
    for body in _PLACEHOLDER.findall(text):
        match = _NAME.fullmatch(body)
        assert match, f"{{{{{body}}}}} is not a plain placeholder: `s init` would evaluate it"
        names.append(match[1])
    return names


def fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m[1].strip()], text)


def defaults(template: Path) -> dict[str, str]:
    return {k: v["default"] for k, v in parameters(template).items() if "default" in v}


# ---------------------------------------------------------------------------------------------
# Layout and publish.yaml
# ---------------------------------------------------------------------------------------------


def test_layout_is_a_serverless_devs_application(template):
    for rel in ("publish.yaml", "readme.md", "version.md", "src/s.yaml"):
        assert (template / rel).is_file(), f"{rel} is missing"
    app = template / "src"
    # What the pre-deploy actions and `code: ./src` need in the initialised application.
    for rel in (
        "src/index.py",
        "src/axn_bind/app.py",
        "tools/predeploy.py",
        "tools/package.py",
        "requirements.txt",
        ".fcignore",
        "ram-policy.json",
        "s.trial.yaml",
    ):
        assert (app / rel).is_file(), f"src/{rel} is missing"
    assert not (app / "src" / "python").exists(), "built dependencies must not ship"
    assert not list(app.rglob("__pycache__")), "interpreter caches must not ship"
    assert ".env" in (app / ".gitignore").read_text().split(), "the secrets' .env is ignored"
    assert (template / "version.md").read_text().startswith(f"## {registry.project_version()}")
    archive = template.with_suffix(".zip")
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
    on_disk = {p.relative_to(template).as_posix() for p in template.rglob("*") if p.is_file()}
    assert names == on_disk, "the zip holds the tree, publish.yaml at its root"


def test_publish_yaml_follows_the_application_spec(template):
    doc = publish(template)
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    assert not missing, f"publish.yaml lacks {missing}"
    unknown = sorted(set(doc) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    assert not unknown, f"publish.yaml has keys the spec does not define: {unknown}"
    assert doc["Edition"] == "3.0.0"
    assert doc["Type"] == "Project"
    assert re.fullmatch(r"[a-z][a-z0-9-]*", doc["Name"]), doc["Name"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", doc["Version"]), doc["Version"]
    assert doc["Version"] == registry.project_version(), "the version is pyproject.toml's"
    assert doc["Provider"] and set(doc["Provider"]) <= PROVIDERS, doc["Provider"]
    assert doc["Category"] in CATEGORIES, doc["Category"]
    assert doc["Effective"] in EFFECTIVE, doc["Effective"]
    assert doc["Service"] and set(doc["Service"]) <= SERVICES, sorted(doc["Service"])
    for name, service in doc["Service"].items():
        assert service.get("Authorities"), f"Service {name}: Authorities are required"
    assert isinstance(doc["Description"], str) and doc["Description"].strip()


def _metaschema_with_secret() -> Draft7Validator:
    """Draft 7's metaschema, its simple types plus ``secret`` (the spec's hidden input)."""
    meta = copy.deepcopy(Draft7Validator.META_SCHEMA)
    meta["definitions"]["simpleTypes"]["enum"].append("secret")
    return extend(Draft7Validator)(meta)


def test_parameters_are_json_schema_and_their_defaults_valid(template):
    schema = publish(template)["Parameters"]
    errors = [e.message for e in _metaschema_with_secret().iter_errors(schema)]
    assert not errors, "Parameters is not a JSON Schema:\n" + "\n".join(errors)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert set(schema["required"]) <= set(props)
    missing = sorted(MUST_ASK - set(props))
    assert not missing, f"`s init` must ask for {missing}"
    assert {k for k, v in props.items() if v["type"] == "secret"} == SECRET_PARAMETERS
    as_strings = {
        k: {**v, "type": "string"} if v["type"] == "secret" else v for k, v in props.items()
    }
    Draft7Validator.check_schema({**schema, "properties": as_strings})
    for name, prop in as_strings.items():
        assert prop.get("title") and prop.get("description"), f"{name}: title and description"
        if "default" in prop:
            errors = [e.message for e in Draft7Validator(prop).iter_errors(prop["default"])]
            assert not errors, f"{name}: its default breaks its own schema: {errors}"
    for name in SECRET_PARAMETERS:
        assert "default" not in props[name], f"{name}: a secret has no default"


def test_placeholders_are_exactly_the_non_secret_parameters(template):
    text = (template / "src" / "s.yaml").read_text(encoding="utf-8")
    used = placeholders(text)
    declared = parameters(template)
    plain = {k for k, v in declared.items() if v["type"] != "secret"}
    undeclared = sorted(set(used) - plain)
    assert not undeclared, f"placeholders without a (non-secret) parameter: {undeclared}"
    unused = sorted(plain - set(used))
    assert not unused, f"parameters no placeholder uses: {unused}"
    for name in SECRET_PARAMETERS:
        # `s init` writes a secret's answer to .env beside s.yaml; `s` loads that file first.
        assert re.search(rf"\$\{{env\('{name}'", text), f"{name} must be read with env()"
    assert not placeholders((template / "src" / "s.trial.yaml").read_text(encoding="utf-8"))


def test_defaults_render_the_repository_s_yaml(template):
    """Initialised with the defaults, the application deploys what this repository deploys."""
    text = fill((template / "src" / "s.yaml").read_text(encoding="utf-8"), defaults(template))
    doc = yaml.safe_load(text)
    ours = raw_doc(test_deploy.S_YAML)
    runs = doc["resources"]["axn-bind"]["actions"]["pre-deploy"]
    assert runs[1]["run"] == registry.TOOL_PACKAGE
    assert ours["resources"]["axn-bind"]["actions"]["pre-deploy"][1]["run"] == registry.MAKE_PACKAGE
    runs[1]["run"] = registry.MAKE_PACKAGE
    assert doc == ours


# ---------------------------------------------------------------------------------------------
# tests/tools/test_deploy.py's checks on the template's s.yaml, rendered with the defaults
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_template(template, tmp_path_factory) -> Path:
    app = tmp_path_factory.mktemp("app") / "app"
    shutil.copytree(template / "src", app)
    s_yaml = app / "s.yaml"
    s_yaml.write_text(fill(s_yaml.read_text(encoding="utf-8"), defaults(template)), "utf-8")
    return s_yaml


@pytest.fixture
def deploy_file(rendered_template) -> Path:
    """The template's s.yaml, rendered: what SHARED_CHECKS below run on."""
    return rendered_template


globals().update({check.__name__: check for check in SHARED_CHECKS})


# ---------------------------------------------------------------------------------------------
# `s init` from the zip
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_s_init_initialises_an_application_from_the_zip(template, tmp_path):
    """Non-interactive (`--parameters`), as CI and scripts run it; secrets are left out (given
    that way, `s init` writes them nowhere: they are exported before `s deploy` instead)."""
    s = ServerlessDevs(tmp_path)
    # `s init --uri FILE.zip` deletes the file once unpacked: give it a copy.
    archive = tmp_path / "axn-bind.zip"
    shutil.copy2(template.with_suffix(".zip"), archive)
    chosen = {"S_REGION": "cn-shanghai", "AXN_POOL_KEY": "FC100000012345678"}
    result = s.run(
        tmp_path,
        "init",
        "--uri",
        str(archive),
        "-d",
        "app",
        "--parameters",
        json.dumps(chosen),
        "-y",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    app = tmp_path / "app"
    expected = fill(
        (template / "src" / "s.yaml").read_text(encoding="utf-8"), {**defaults(template), **chosen}
    )
    assert (app / "s.yaml").read_text(encoding="utf-8") == expected
    for rel in ("src/index.py", "tools/predeploy.py", "tools/package.py", "s.trial.yaml"):
        assert (app / rel).is_file(), f"{rel} is missing from the initialised application"
    p = test_deploy.preview_props(s.preview(app / "s.yaml", env=test_deploy.VPC_ENV))
    assert p["region"] == "cn-shanghai"
    assert p["environmentVariables"]["AXN_POOL_KEY"] == "FC100000012345678"
