"""Build the Serverless Devs application template of axn-bind (``make registry``).

Output, from this repository's own files::

    build/registry/              the application, in the Serverless Registry layout
        publish.yaml             Edition 3.0.0, Type Project; Parameters: JSON Schema of the inputs
        readme.md, version.md    what the application is; what this version changed
        src/                     what `s init` copies into the new project
            s.yaml               s.yaml with {{ PARAMETER }} placeholders `s init` fills in
            s.trial.yaml         the trial deploy (memory store, no VPC), unchanged
            src/                 the function code (src/ without caches and src/python/)
            tools/predeploy.py, tools/package.py, requirements.txt, requirements-amqp.txt, .fcignore, ram-policy*.json
    build/registry.zip           the same tree, for `s init --uri build/registry.zip`

Each non-secret parameter replaces the default of one ``${env('NAME', 'default')}`` in s.yaml
with ``{{ NAME }}``, and its default in publish.yaml is that default, so an application
initialised with the defaults deploys exactly what s.yaml deploys. A deployer's exported variable
still wins over the value chosen at `s init`. The two secrets (the Redis URL with its password,
the webhook secret) are ``type: secret`` parameters without a placeholder: `s init` asks for them
hidden and writes them to ``.env`` beside s.yaml (its own behaviour for secret parameters), which
`s` loads before it expands ``${env('NAME')}``; they never enter s.yaml.

The pre-deploy actions run the same two tools as in this repository, without make:
``python3 tools/predeploy.py`` and ``python3 tools/package.py --runtime … --in-place``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.package import copy_tree, ignore_patterns  # noqa: E402 - needs ROOT on sys.path

NAME = "axn-bind"
DEFAULT_OUT = ROOT / "build" / "registry"

# The make-based build of this repository, and what the template runs instead (no Makefile and
# no development virtualenv in an initialised application).
MAKE_PACKAGE = "make package RUNTIME=${vars.runtime} PACKAGE_ARGS=--in-place"
TOOL_PACKAGE = "python3 tools/package.py --runtime ${vars.runtime} --in-place"

# Files of this repository copied into the application next to s.yaml (code: ./src needs them
# for the pre-deploy actions; the RAM policies are step 3 of docs/deploy.md).
PROJECT_FILES = (
    "s.trial.yaml",
    "requirements.txt",
    "requirements-amqp.txt",
    ".fcignore",
    "ram-policy.json",
    "ram-policy.publish.json",
    "tools/package.py",
    "tools/predeploy.py",
)

# The regions where Function Compute 3.0 runs and Dyplsapi is sold: Chinese mainland numbers.
REGIONS = (
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-shenzhen",
    "cn-qingdao",
    "cn-chengdu",
)

# The application's inputs. Non-secret ones name the ${env('NAME', …)} they fill in s.yaml;
# "default" is taken from s.yaml when the tool runs.
PARAMETERS: dict[str, dict[str, Any]] = {
    "S_REGION": {
        "title": "地域 Region",
        "type": "string",
        "enum": list(REGIONS),
        "description": "Region of the function (and of the number pool's X numbers' calls).",
    },
    "S_FUNCTION_NAME": {
        "title": "函数名称 Function name",
        "type": "string",
        "pattern": "^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$",
        "description": "Letters, digits, _ and -; not starting with a digit or -; up to 64.",
    },
    "AXN_POOL_KEY": {
        "title": "号码池 PoolKey",
        "type": "string",
        "pattern": "^(FC[0-9]+)?$",
        "description": "The number pool's Pool Key (FC100…), from the Phone Number Protection "
        "console; used when a request carries no PoolKey. Empty: the deploy is refused.",
    },
    "AXN_IDEMPOTENCY_URL": {
        "title": "Redis URL（含密码）",
        "type": "secret",
        "pattern": "^(rediss?://\\S+)?$",
        "description": "Idempotency store: redis://:PASSWORD@HOST:6379/0 or rediss://…, a Redis "
        "(Tair) in the function's VPC (export S_VPC_ID, S_VSWITCH_ID, S_SECURITY_GROUP_ID). Kept "
        "in .env beside s.yaml, never in s.yaml. Empty: memory://, which the deploy refuses; "
        "for a trial use s.trial.yaml.",
    },
    "AXN_PUBLISH_TO": {
        "title": "结果发布目标 Publish targets",
        "type": "string",
        "pattern": "^[^'\\s]*$",
        "description": "Where binding outcomes are announced: comma-separated target URLs "
        "(README, Publishing). Empty: nowhere.",
    },
    "AXN_WEBHOOK_SECRET": {
        "title": "Webhook 签名密钥",
        "type": "secret",
        "pattern": "^(whsec_\\S+)?$",
        "description": "whsec_… secret that signs webhook deliveries; only for webhook targets. "
        "Kept in .env beside s.yaml.",
    },
    "AXN_UNKNOWN_OUTCOME": {
        "title": "结果未知时 Unknown outcome",
        "type": "string",
        "enum": ["refuse", "reexecute"],
        "description": "After a bind whose outcome is unknown: refuse (409 OutcomeUnknown until "
        "cleared) or reexecute (bind again; may leave an orphan binding).",
    },
}
REQUIRED = ("S_REGION", "S_FUNCTION_NAME", "AXN_POOL_KEY", "AXN_UNKNOWN_OUTCOME")

_ENV_DEFAULT = r"\$\{{env\('{name}', '(?P<default>[^'{{}}]*)'\)\}}"


class RegistryError(RuntimeError):
    """The template could not be built; the message says why."""


def project_version() -> str:
    """The version the function reports: ``axn_bind.__version__``, the one place it is written."""
    text = (ROOT / "src" / "axn_bind" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'(?m)^__version__\s*=\s*"([^"]+)"', text)
    if not found:
        raise RegistryError("src/axn_bind/__init__.py has no __version__")
    return found[1]


def templated_s_yaml(text: str) -> tuple[str, dict[str, str]]:
    """s.yaml with a placeholder for each non-secret parameter; and s.yaml's defaults."""
    defaults = {}
    for name, spec in PARAMETERS.items():
        if spec["type"] == "secret":
            continue
        pattern = re.compile(_ENV_DEFAULT.format(name=re.escape(name)))
        found = pattern.findall(text)
        if len(found) != 1:
            raise RegistryError(f"s.yaml: expected one ${{env('{name}', …)}}, found {len(found)}")
        defaults[name] = found[0]
        text = pattern.sub(f"${{env('{name}', '{{{{ {name} }}}}')}}", text)
    for name, spec in PARAMETERS.items():
        if spec["type"] == "secret" and not re.search(rf"\$\{{env\('{name}'", text):
            raise RegistryError(f"s.yaml: the secret {name} must be read as ${{env('{name}', …)}}")
    return without_make(text, "s.yaml"), defaults


def without_make(text: str, name: str) -> str:
    if text.count(MAKE_PACKAGE) != 1:
        raise RegistryError(f"{name}: expected one pre-deploy `{MAKE_PACKAGE}`")
    return text.replace(MAKE_PACKAGE, TOOL_PACKAGE)


def publish_yaml(version: str, defaults: dict[str, str]) -> dict[str, Any]:
    properties = {}
    for name, spec in PARAMETERS.items():
        prop = dict(spec)
        if name in defaults:
            prop["default"] = defaults[name]
        properties[name] = prop
    return {
        "Edition": "3.0.0",
        "Type": "Project",
        "Name": NAME,
        "Provider": ["阿里云"],
        "Version": version,
        "Description": "Function Compute 3.0 function that creates Dyplsapi privacy-number "
        "(AXN extension) bindings, exactly once per order",
        "Tags": ["函数计算", "号码隐私保护", "AXN", "Python"],
        "Category": "其它",
        "Service": {
            "函数计算": {"Runtime": "Python", "Authorities": ["AliyunFCFullAccess"]},
            "数据库": {"Authorities": ["AliyunKvstoreFullAccess"]},
            "其它": {"Authorities": ["dypls:BindAxnExtension (the function's role)"]},
        },
        "Organization": NAME,
        "Effective": "Public",
        "Parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": list(REQUIRED),
            "properties": properties,
        },
    }


README = """# axn-bind

A Function Compute 3.0 function (Python 3.10/3.12) that creates Dyplsapi `BindAxnExtension`
privacy-number bindings — exactly one per order, through a Redis idempotency store — from a
signed HTTP POST, a direct invocation, a timer or an MNS queue through EventBridge.

## Initialise

```sh
npx @serverless-devs/s@3.1.10 init --uri registry.zip -d axn-bind   # or: s init axn-bind
cd axn-bind
```

`s init` asks for the parameters of `publish.yaml`: region, function name, the number pool's
PoolKey, the Redis URL, publish targets, the webhook secret and the unknown-outcome policy. The
Redis URL and the webhook secret are asked hidden and saved in `.env` beside `s.yaml` (keep it out
of version control; `.gitignore` lists it), never in `s.yaml`; every other answer becomes the
default of its `${env('NAME', …)}` in `s.yaml`, and an exported variable of that name still wins.
With `--parameters '{…}'` (no questions), leave the secrets out and export them before
`s deploy` instead: `s init` writes secrets given that way nowhere.

## Trial: one binding in minutes, no Redis, no VPC

```sh
export AXN_POOL_KEY=FC100…                    # the number pool's Pool Key
npx @serverless-devs/s@3.1.10 deploy -t s.trial.yaml -y
npx @serverless-devs/s@3.1.10 invoke -t s.trial.yaml \\
  -e '{"PhoneNoA":"139xxxxxxxx","TtlSeconds":120,"OutOrderId":"trial-1"}'
```

The trial uses the `memory://` store, allowed explicitly by `s.trial.yaml`: it protects one
instance only, so a redelivery on another instance can bind twice. It needs the function's RAM
role (`S_ROLE_NAME`, default `axn-bind-fc`, with `dypls:BindAxnExtension`; `ram-policy.json`).

## Production

Redis (Tair) in a VPC, the function in that VPC, MNS queues, EventBridge and a log project:
follow the runbook `docs/deploy.md` of the axn-bind repository, then

```sh
export S_VPC_ID=vpc-… S_VSWITCH_ID=vsw-… S_SECURITY_GROUP_ID=sg-…
npx @serverless-devs/s@3.1.10 deploy -y
```

`s deploy` first runs `tools/predeploy.py`, which refuses a deploy that could bind an order twice
(memory store, empty PoolKey, a Redis that may evict or forget records), then
`tools/package.py --in-place`, which installs the dependencies for the FC runtime into
`src/python/` (pip, no Docker).
"""


def version_md(version: str) -> str:
    changelog = ROOT / "CHANGELOG.md"
    if changelog.is_file():
        text = changelog.read_text(encoding="utf-8")
        found = re.search(rf"(?ms)^## \[?{re.escape(version)}\]?[^\n]*\n(.*?)(?=^## |\Z)", text)
        if found and found[1].strip():
            return f"## {version}\n\n{found[1].strip()}\n"
    return (
        f"## {version}\n\n- The function, `s.yaml` (production: Redis in a VPC) and "
        "`s.trial.yaml` (trial: memory store) as an application template.\n"
    )


GITIGNORE = """# Secrets `s init` saved, and build output of the pre-deploy actions
.env
.s/
src/python/
__pycache__/
"""


def build(out: Path = DEFAULT_OUT, zip_path: Path | None = None) -> Path:
    """Build the template into ``out`` (emptied first) and zip it; returns the zip's path."""
    out = out.resolve()
    zip_path = (zip_path or out.with_suffix(".zip")).resolve()
    src = (ROOT / "src").resolve()
    if any(out == p or out in p.parents for p in (ROOT, src)) or src in out.parents:
        raise RegistryError(f"refusing to empty {out}: it holds or is inside the repository's code")
    if out.exists():
        shutil.rmtree(out)
    app = out / "src"
    (app / "tools").mkdir(parents=True)
    version = project_version()

    s_yaml, defaults = templated_s_yaml((ROOT / "s.yaml").read_text(encoding="utf-8"))
    header = (
        "# Serverless Devs application template of axn-bind, built by tools/registry.py from\n"
        "# the repository's s.yaml; `s init` fills in each placeholder with a publish.yaml answer.\n"
    )
    (app / "s.yaml").write_text(header + s_yaml, encoding="utf-8")
    for rel in PROJECT_FILES:
        target = app / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    trial = app / "s.trial.yaml"
    trial.write_text(without_make(trial.read_text(encoding="utf-8"), "s.trial.yaml"), "utf-8")
    (app / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    copy_tree(ROOT / "src", app / "src", ignore_patterns(ROOT / ".fcignore"), skip_top=("python",))
    (app / "readme.md").write_text(README, encoding="utf-8")

    (out / "publish.yaml").write_text(
        yaml.safe_dump(publish_yaml(version, defaults), allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    (out / "readme.md").write_text(README, encoding="utf-8")
    (out / "version.md").write_text(version_md(version), encoding="utf-8")

    zip_path.unlink(missing_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(out.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(out).as_posix())
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default: build/registry)"
    )
    parser.add_argument(
        "--zip", type=Path, default=None, help="zip file (default: the output directory + .zip)"
    )
    args = parser.parse_args(argv)
    try:
        zip_path = build(args.out, args.zip)
    except RegistryError as error:
        print(f"registry: {error}", file=sys.stderr)
        return 1
    print(f"registry: {args.out} and {zip_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
