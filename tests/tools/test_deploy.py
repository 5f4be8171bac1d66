"""Deployment checks: s.yaml, s.trial.yaml, the RAM policy, the README table and the event samples.

s.yaml (production) and s.trial.yaml (the trial deploy: memory store, no VPC) are parsed with its magic variables (``${vars.x}``, ``${env('N', 'default')}``,
``${config('AccountID')}``) replaced by test values and validated against the fc3 component's props
schema (tests/data/fc3-props.schema.json, source in the .SOURCE.txt beside it). The schema accepts
any trigger config for any trigger type, so each trigger is also checked against the definition
of its own type and against this project's rules: no anonymous HTTP trigger, POST only, a
six-field cron with a zone, retry windows inside the idempotency record lifetime, and so on.

Checks that take the ``deploy_file`` fixture run on both files; tests/tools/test_registry.py runs the
same ones (SHARED_CHECKS) on the s.yaml of the Serverless Devs application template. Serverless
Devs itself (``s preview``, offline, Node.js required) renders every file as well.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from axn_bind.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
S_YAML = ROOT / "s.yaml"
TRIAL_YAML = ROOT / "s.trial.yaml"
DEPLOY_FILES = (S_YAML, TRIAL_YAML)
SCHEMA = ROOT / "tests" / "data" / "fc3-props.schema.json"
SCHEMA_SOURCE = SCHEMA.with_name("fc3-props.schema.SOURCE.txt")
README = ROOT / "README.md"
RAM_POLICY = ROOT / "ram-policy.json"

TEST_ACCOUNT_ID = "1234567890123456"
RUNTIMES = ("python3.10", "python3.12")
# Read by s.yaml without a default (the VPC of the Redis store): every `s` command stops without
# them. The checks render with these test values.
VPC_ENV = {
    "S_VPC_ID": "vpc-test0000000000000001",
    "S_VSWITCH_ID": "vsw-test0000000000000001",
    "S_SECURITY_GROUP_ID": "sg-test0000000000000001",
}
# Settings a deploy file fixes instead of reading them from the deployer's environment.
FIXED_SETTINGS = {"s.trial.yaml": {"AXN_IDEMPOTENCY_URL": "memory://"}}
# Serverless Devs CLI used for `s preview`, pinned so that the check is reproducible.
S_CLI = "@serverless-devs/s@3.1.10"

# Read by the code but provided by FC from the function's role: never declared in s.yaml.
FC_PROVIDED = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
}
# Declared in s.yaml for the runtime, not settings of the code.
RUNTIME_VARS = {"PYTHONPATH": "/code/python"}
# The idempotency record lifetime when the setting is not (yet) declared anywhere.
IDEMPOTENCY_TTL_FALLBACK = 86400
MAX_ASYNC_EVENT_AGE = 604800  # FC's documented upper bound
FC_ENV_LIMIT = 4096  # bytes, all environment variables together

# Which sample in events/ stands for which trigger (by type, and source type for EventBridge).
EVENT_SAMPLES = {
    ("http", None): "events/http_post.json",
    ("timer", None): "events/timer.json",
    ("eventbridge", "MNS"): "events/mns_queue_batch.json",
    ("eventbridge", "RocketMQ"): "events/rocketmq.json",
}
# triggerType -> the schema definition its triggerConfig must satisfy.
TRIGGER_DEFINITIONS = {
    "http": "IHttpTriggerConfig",
    "timer": "ITimerTriggerConfig",
    "eventbridge": "IEventBridge",
    "mns_topic": "IMnsTriggerConfig",
    "oss": "IOssTriggerConfig",
    "log": "ILogTriggerConfig",
    "cdn_events": "ICdnTriggerConfig",
    "tablestore": "IOtsConfig",
}
MNS_QUEUE_ARN = re.compile(
    r"acs:mns:(?P<region>[a-z0-9-]+):(?P<account>\d+):/queues/(?P<queue>[\w-]+)"
)


# ---------------------------------------------------------------------------------------------
# Loading and rendering s.yaml
# ---------------------------------------------------------------------------------------------

_MAGIC = re.compile(r"\$\{([^{}]*)\}")
_ENV_CALL = re.compile(
    r"""env\(\s*(?P<q>['"]?)(?P<name>[A-Za-z_]\w*)(?P=q)\s*"""
    r"""(?:,\s*(?P<dq>['"])(?P<default>.*?)(?P=dq)\s*)?\)""",
    re.S,
)


class MagicError(ValueError):
    pass


def _resolve(expr: str, env: dict[str, str], variables: dict[str, Any]) -> Any:
    expr = expr.strip()
    if expr.startswith("vars."):
        name = expr[len("vars.") :]
        if name not in variables:
            raise MagicError(f"${{{expr}}}: no such entry in vars")
        return variables[name]
    match = _ENV_CALL.fullmatch(expr)
    if match:
        name, default = match["name"], match["default"]
        if name in env:
            return env[name]
        if default is None:
            raise MagicError(f"${{{expr}}}: {name} is not set and has no default")
        return default
    if re.fullmatch(r"""config\(\s*['"]?AccountID['"]?\s*\)""", expr):
        return TEST_ACCOUNT_ID
    raise MagicError(f"${{{expr}}}: magic variable not understood by this check")


def render(value: Any, env: dict[str, str], variables: dict[str, Any]) -> Any:
    """``value`` with every magic variable replaced (a lone one keeps its value's type)."""
    if isinstance(value, dict):
        return {k: render(v, env, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, env, variables) for v in value]
    if not isinstance(value, str):
        return value
    whole = _MAGIC.fullmatch(value)
    if whole:
        return _resolve(whole[1], env, variables)
    return _MAGIC.sub(lambda m: str(_resolve(m[1], env, variables)), value)


@cache
def raw_doc(path: Path = S_YAML) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rendered(
    env: dict[str, str] | None = None, path: Path = S_YAML, *, vpc: bool = True
) -> dict[str, Any]:
    """The file with its magic variables resolved; ``vpc``: with VPC_ENV exported."""
    doc = raw_doc(path)
    env = {**(VPC_ENV if vpc else {}), **(env or {})}
    variables: dict[str, Any] = {}
    for key, val in (doc.get("vars") or {}).items():
        variables[key] = render(val, env, variables)
    return render(doc, env, variables)


def the_resource(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    resources = doc["resources"]
    assert len(resources) == 1, f"expected one function in s.yaml, found {sorted(resources)}"
    return next(iter(resources.items()))


def props(env: dict[str, str] | None = None, path: Path = S_YAML) -> dict[str, Any]:
    return the_resource(rendered(env, path))[1]["props"]


def raw_props(path: Path = S_YAML) -> dict[str, Any]:
    return the_resource(raw_doc(path))[1]["props"]


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


def definition_validator(name: str) -> Draft7Validator:
    """A validator for one definition of the fc3 schema (its $refs still resolve)."""
    full = schema()
    return Draft7Validator({**full["definitions"][name], "definitions": full["definitions"]})


def schema_errors(validator: Draft7Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def triggers(env: dict[str, str] | None = None, path: Path = S_YAML) -> list[dict[str, Any]]:
    return props(env, path).get("triggers") or []


def triggers_of(kind: str, path: Path = S_YAML) -> list[dict[str, Any]]:
    found = [t for t in triggers(path=path) if t["triggerType"] == kind]
    assert found, f"{path.name} has no {kind} trigger"
    return found


def pre_deploy_runs(path: Path = S_YAML) -> list[str]:
    """The commands of the pre-deploy action, as `s deploy` runs them (magic variables resolved)."""
    _, resource = the_resource(rendered(path=path))
    return [a["run"] for a in resource.get("actions", {}).get("pre-deploy", []) if "run" in a]


@pytest.fixture(params=DEPLOY_FILES, ids=lambda path: path.name)
def deploy_file(request) -> Path:
    """Each deploy file in turn (tests/tools/test_registry.py gives the template's s.yaml instead)."""
    return request.param


def idempotency_ttl() -> int:
    """The idempotency record lifetime as deployed (s.yaml default, else the code default)."""
    env = props().get("environmentVariables") or {}
    value = env.get("AXN_IDEMPOTENCY_TTL_SECONDS")
    if value in (None, "") and "AXN_IDEMPOTENCY_TTL_SECONDS" in SETTINGS:
        value = SETTINGS["AXN_IDEMPOTENCY_TTL_SECONDS"][0]
    return int(value) if value not in (None, "") else IDEMPOTENCY_TTL_FALLBACK


def rocketmq_alternative() -> dict[str, Any]:
    """The commented RocketMQ trigger in s.yaml, uncommented and parsed."""
    lines = S_YAML.read_text(encoding="utf-8").splitlines()
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if re.match(r"\s*# - triggerName: orders-rocketmq", line)
        ),
        None,
    )
    assert start is not None, "s.yaml lacks the commented RocketMQ alternative (orders-rocketmq)"
    indent = lines[start].index("#")
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#") or line.index("#") != indent:
            break
        block.append(line[indent + 2 :])
    doc = yaml.safe_load("\n".join(block))
    variables = rendered()["vars"]
    return render(doc[0], {}, variables)


# ---------------------------------------------------------------------------------------------
# The file as a whole
# ---------------------------------------------------------------------------------------------


def schema_release() -> str:
    """The fc3 release whose props schema tests/data holds (recorded beside it)."""
    found = re.search(r"Version: (\d+\.\d+\.\d+)", SCHEMA_SOURCE.read_text(encoding="utf-8"))
    assert found, f"{SCHEMA_SOURCE.name} does not name the component release of the schema"
    return found[1]


def test_s_yaml_is_one_fc3_function(deploy_file):
    doc = raw_doc(deploy_file)
    assert doc["edition"] == "3.0.0"
    name, resource = the_resource(doc)
    assert str(resource["component"]).partition("@")[0] == "fc3", f"{name}: component must be fc3"
    # `s` does not expand magic variables in `access` (s preview shows it verbatim), so it must
    # be a plain alias; `s deploy -a ALIAS` picks another one.
    assert isinstance(doc["access"], str)
    assert "${" not in doc["access"], "access must be a plain alias name"


def test_fc3_component_is_pinned_to_the_release_of_its_schema(deploy_file):
    """`component: fc3` alone makes `s` download the newest release on every deploy: a release
    that changes a default or a field would change the deployed function unannounced. The pin
    is the release whose props schema the other checks validate against."""
    _, resource = the_resource(raw_doc(deploy_file))
    component = str(resource["component"])
    pinned = re.fullmatch(r"fc3@(\d+\.\d+\.\d+)", component)
    assert pinned, (
        f"{deploy_file.name}: component {component!r} is not pinned: fc3@{schema_release()}"
    )
    assert pinned[1] == schema_release(), (
        f"{deploy_file.name} pins fc3@{pinned[1]}, but tests/data/fc3-props.schema.json is the "
        f"schema of fc3 {schema_release()}: update the schema and the pin together"
    )


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_props_validate_against_fc3_schema(runtime, deploy_file):
    p = props({"S_RUNTIME": runtime}, deploy_file)
    assert p["runtime"] == runtime
    errors = schema_errors(Draft7Validator(schema()), p)
    assert not errors, f"{deploy_file.name} props break the fc3 schema:\n" + "\n".join(errors)


def test_every_magic_variable_resolves(deploy_file):
    """Nothing is left unexpanded (a typo in a variable name would be deployed verbatim)."""
    text = json.dumps(rendered(path=deploy_file))
    assert "${" not in text


def test_code_and_runtime(deploy_file):
    p = props(path=deploy_file)
    assert p["runtime"] in RUNTIMES, "python3.10 or python3.12: the code supports both"
    assert p["code"] == "./src"
    assert (deploy_file.parent / p["code"] / "index.py").is_file()
    assert p["memorySize"] % 64 == 0
    assert 128 <= p["memorySize"] <= 3072
    assert 1 <= p["timeout"] <= 600
    assert p["instanceLifecycleConfig"]["initializer"]["timeout"] <= p["timeout"]


def test_production_logs_to_its_logstore():
    assert props()["logConfig"], "logConfig must be set: logs are the only record of a binding"


def test_pre_deploy_checks_then_builds_the_package(deploy_file):
    runs = pre_deploy_runs(deploy_file)
    runtime = props(path=deploy_file)["runtime"]
    assert runs and "tools/predeploy.py" in runs[0], (
        f"{deploy_file.name}: the pre-deploy check must run first, before anything is built: {runs}"
    )
    builds = [
        r
        for r in runs
        if "--in-place" in r
        and (
            (r.startswith("make package") and f"RUNTIME={runtime}" in r)
            or f"tools/package.py --runtime {runtime}" in r
        )
    ]
    assert builds, f"{deploy_file.name}: no in-place package build for {runtime}: {runs}"
    assert props(path=deploy_file)["environmentVariables"]["PYTHONPATH"] == "/code/python"


@pytest.mark.parametrize("kind", ["handler", "initializer"])
def test_handler_paths_resolve_to_callables(kind, deploy_file):
    p = raw_props(deploy_file)
    spec = (
        p["handler"]
        if kind == "handler"
        else p["instanceLifecycleConfig"]["initializer"]["handler"]
    )
    module_name, _, attr = spec.rpartition(".")
    code = deploy_file.parent / p["code"]
    path = code / f"{module_name.replace('.', '/')}.py"
    assert path.is_file(), f"{spec}: no module in {code}"
    loaded = importlib.util.spec_from_file_location(f"_deployed_{module_name}", path)
    assert loaded and loaded.loader
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    func = getattr(module, attr, None)
    assert callable(func), f"{spec} is not a callable"
    params = inspect.signature(func).parameters
    assert len(params) == (2 if kind == "handler" else 1), f"{spec}{inspect.signature(func)}"


# ---------------------------------------------------------------------------------------------
# The trial deploy (s.trial.yaml): the production function without Redis, VPC, queues or logs
# ---------------------------------------------------------------------------------------------

# What the trial leaves out of the production props, and why each can go.
TRIAL_OMITS = {
    "vpcConfig": "no Redis to reach",
    "logConfig": "no log project to create; `s invoke` prints the answer",
    "asyncInvokeConfig": "its failure destination is an MNS queue",
}


def test_trial_is_the_production_function_without_its_infrastructure():
    # As deployed from a shell that exports a production store URL: the trial ignores it.
    exported = {"AXN_IDEMPOTENCY_URL": "rediss://r-test.redis.rds.aliyuncs.com:6380/0"}
    production, trial = props(exported), props(exported, TRIAL_YAML)
    assert set(production) - set(trial) == set(TRIAL_OMITS), "s.trial.yaml omits other props"
    assert not set(trial) - set(production), "s.trial.yaml adds props s.yaml lacks"
    differ = {k for k in trial if trial[k] != production[k]}
    assert differ == {"functionName", "description", "environmentVariables", "triggers"}, differ
    env = dict(trial["environmentVariables"])
    assert env.pop("AXN_IDEMPOTENCY_URL") == "memory://"
    assert env == {
        k: v for k, v in production["environmentVariables"].items() if k != "AXN_IDEMPOTENCY_URL"
    }
    assert trial["triggers"] == triggers_of("http"), "the trial has the signed HTTP trigger only"


def test_trial_never_takes_the_name_of_a_production_function():
    """A deployer with S_FUNCTION_NAME exported for production deploys the trial beside it,
    not over it (which would take the function out of its VPC and off its Redis)."""
    env = {"S_FUNCTION_NAME": "orders-bind"}
    assert props(env)["functionName"] == "orders-bind"
    assert props(env, TRIAL_YAML)["functionName"] != "orders-bind"
    assert props(path=TRIAL_YAML)["functionName"] != props()["functionName"]


def _run_pre_deploy_check(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The pre-deploy check as `s deploy` runs it for ``path``: its command line through a shell
    (python3 found first in this interpreter's directory), from the directory of the file."""
    command = pre_deploy_runs(path)[0]
    bin_dir = str(Path(sys.executable).parent)
    return subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=path.parent,
        env={"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "HOME": str(Path.home()), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_trial_pre_deploy_accepts_the_memory_store_and_states_the_risk():
    pool = {"AXN_POOL_KEY": "FC100000012345678"}
    # Even with a production store URL left in the shell: the trial deploys memory://.
    left_over = {"AXN_IDEMPOTENCY_URL": "redis://:pw@r-test.redis.rds.aliyuncs.com:6379/0"}
    trial = _run_pre_deploy_check(TRIAL_YAML, {**pool, **left_over})
    assert trial.returncode == 0, trial.stderr
    assert "predeploy: ok (AXN_IDEMPOTENCY_URL: memory://" in trial.stdout
    assert "protects one instance only" in trial.stderr, "the risk must be printed"
    assert "pw@" not in trial.stdout + trial.stderr
    # Everything else is still refused.
    empty_pool = _run_pre_deploy_check(TRIAL_YAML, {})
    assert empty_pool.returncode == 2, empty_pool.stderr
    assert "AXN_POOL_KEY is empty" in empty_pool.stderr
    # The production file does not accept the memory store.
    production = _run_pre_deploy_check(S_YAML, {**pool, "AXN_IDEMPOTENCY_URL": "memory://"})
    assert production.returncode == 2, production.stderr
    assert "refused: AXN_IDEMPOTENCY_URL is memory://" in production.stderr


# ---------------------------------------------------------------------------------------------
# Triggers
# ---------------------------------------------------------------------------------------------


def _check_trigger_config(trigger: dict[str, Any]) -> list[str]:
    kind = trigger["triggerType"]
    if kind not in TRIGGER_DEFINITIONS:
        return [f"{trigger['triggerName']}: unknown trigger type {kind}"]
    name = TRIGGER_DEFINITIONS[kind]
    config = trigger["triggerConfig"]
    errors = schema_errors(definition_validator(name), config)
    allowed = set(schema()["definitions"][name].get("properties", {}))
    errors += [f"{key}: not a field of {name}" for key in sorted(set(config) - allowed)]
    return [f"{trigger['triggerName']} ({kind}): {e}" for e in errors]


def test_each_trigger_config_matches_its_own_type(deploy_file):
    """The schema's anyOf lets any config through; check each against its type's definition."""
    errors = [e for t in triggers(path=deploy_file) for e in _check_trigger_config(t)]
    assert not errors, "\n".join(errors)


def test_trigger_names_are_unique(deploy_file):
    names = [t["triggerName"] for t in triggers(path=deploy_file)]
    assert len(names) == len(set(names)), names


def test_no_trigger_is_anonymous_and_http_is_post_only(deploy_file):
    for trigger in triggers_of("http", deploy_file):
        config = trigger["triggerConfig"]
        assert config["authType"] in ("function", "jwt"), "an anonymous trigger can bind numbers"
        if config["authType"] == "jwt":
            assert config.get("authConfig", {}).get("jwks"), "jwt needs its keys"
        assert config["methods"] == ["POST"]


def test_timer_trigger():
    for trigger in triggers_of("timer"):
        config = trigger["triggerConfig"]
        assert config["enable"] is False, "the timer ships disabled"
        match = re.fullmatch(r"CRON_TZ=Asia/Shanghai (.+)", config["cronExpression"])
        assert match, "cron must start with CRON_TZ=Asia/Shanghai (FC's timer runs in UTC)"
        fields = match[1].split()
        assert len(fields) == 6, f"FC cron has 6 fields (seconds first): {fields}"
        allowed = (r"[0-9*/,\-]+",) * 3 + (
            r"[0-9*/,\-?LW]+",
            r"[0-9A-Za-z*/,\-]+",
            r"[0-9A-Za-z*/,\-?L#]+",
        )
        for field, pattern in zip(fields, allowed, strict=True):
            assert re.fullmatch(pattern, field), f"cron field {field!r}"
        payload = json.loads(config["payload"])
        if trigger["triggerName"] == "sweep":
            assert payload == {"action": "sweep"}, "the sweep timer's payload is the action"
            continue
        items = payload if isinstance(payload, list) else [payload]
        assert items
        assert all(isinstance(i, dict) and "PhoneNoA" in i for i in items), "a bind request"


def _eventbridge_errors(trigger: dict[str, Any]) -> list[str]:
    config = trigger["triggerConfig"]
    errors = []
    source = config["eventSourceConfig"]
    params = source.get("eventSourceParameters", {})
    if source["eventSourceType"] == "MNS":
        mns = params.get("sourceMNSParameters", {})
        if not mns.get("QueueName"):
            errors.append("sourceMNSParameters.QueueName is required")
        if not isinstance(mns.get("IsBase64Decode"), bool):
            errors.append("sourceMNSParameters.IsBase64Decode must be a boolean")
    elif source["eventSourceType"] == "RocketMQ":
        rmq = params.get("sourceRocketMQParameters", {})
        missing = {"InstanceId", "Topic", "GroupID"} - set(rmq)
        if missing:
            errors.append(f"sourceRocketMQParameters lacks {sorted(missing)}")
    else:
        errors.append(f"eventSourceType {source['eventSourceType']}: expected MNS or RocketMQ")
    if config["asyncInvocationType"] is not False:
        errors.append("asyncInvocationType must be false: EventBridge's retries and DLQ then apply")
    if config["eventSinkConfig"]["deliveryOption"].get("eventSchema") != "CloudEvents":
        errors.append("deliveryOption.eventSchema must be CloudEvents (the handler reads them)")
    run = config["runOptions"]
    if run.get("mode") != "event-streaming":
        errors.append("runOptions.mode must be event-streaming (runOptions apply only there)")
    window = run.get("batchWindow", {})
    if not 1 <= int(window.get("CountBasedWindow", 0)) <= 10000:
        errors.append("batchWindow.CountBasedWindow must be 1..10000")
    if not 0 <= int(window.get("TimeBasedWindow", -1)) <= 15:
        errors.append("batchWindow.TimeBasedWindow must be 0..15 s")
    retry = run.get("retryStrategy", {})
    if retry.get("PushRetryStrategy") not in ("BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"):
        errors.append(
            "retryStrategy.PushRetryStrategy must be BACKOFF_RETRY or EXPONENTIAL_DECAY_RETRY"
        )
    age = int(retry.get("MaximumEventAgeInSeconds", 86400))
    if not 0 < age <= idempotency_ttl():
        errors.append(
            f"retryStrategy.MaximumEventAgeInSeconds {age} must be within the idempotency record "
            f"lifetime ({idempotency_ttl()} s), or a late retry could bind twice"
        )
    if run.get("errorsTolerance") not in ("ALL", "NONE"):
        errors.append("errorsTolerance must be ALL or NONE")
    dlq = run.get("deadLetterQueue", {}).get("Arn", "")
    if not MNS_QUEUE_ARN.fullmatch(dlq):
        errors.append(f"deadLetterQueue.Arn {dlq!r} is not an MNS queue ARN")
    return [f"{trigger['triggerName']}: {e}" for e in errors]


def test_eventbridge_trigger_for_the_order_queue():
    found = triggers_of("eventbridge")
    assert any(t["triggerConfig"]["eventSourceConfig"]["eventSourceType"] == "MNS" for t in found)
    errors = [e for t in found for e in _eventbridge_errors(t)]
    assert not errors, "\n".join(errors)


def test_commented_rocketmq_alternative_is_valid():
    trigger = rocketmq_alternative()
    errors = schema_errors(definition_validator("ITrigger"), trigger)
    errors += _check_trigger_config(trigger) + _eventbridge_errors(trigger)
    assert not errors, "\n".join(errors)
    assert trigger["triggerName"] not in {t["triggerName"] for t in triggers()}


def test_async_invoke_config():
    config = raw_props().get("asyncInvokeConfig") or {}
    attempts = config.get("maxAsyncRetryAttempts")
    assert isinstance(attempts, int), "maxAsyncRetryAttempts must be explicit"
    assert 0 <= attempts <= 8
    age = config.get("maxAsyncEventAgeInSeconds")
    assert isinstance(age, int), "maxAsyncEventAgeInSeconds must be explicit"
    assert 0 < age <= MAX_ASYNC_EVENT_AGE
    assert age <= idempotency_ttl(), (
        f"maxAsyncEventAgeInSeconds {age} outlives the idempotency record "
        f"({idempotency_ttl()} s): a late retry could bind a second time"
    )
    destination = props()["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]
    match = re.fullmatch(MNS_QUEUE_ARN.pattern + "/messages", destination)
    assert match, f"onFailure destination {destination!r} is not an MNS queue ARN"
    assert match["region"] == props()["region"]
    assert match["account"] == TEST_ACCOUNT_ID


# ---------------------------------------------------------------------------------------------
# Environment variables: s.yaml <-> SETTINGS <-> the code <-> the README
# ---------------------------------------------------------------------------------------------


def _env_line(name: str) -> str:
    default = SETTINGS[name][0] or ""
    return f"        {name}: ${{env('{name}', '{default}')}}"


def test_environment_declares_every_setting_and_nothing_else(deploy_file):
    declared = set(raw_props(deploy_file).get("environmentVariables") or {}) - set(RUNTIME_VARS)
    expected = set(SETTINGS) - FC_PROVIDED
    missing = sorted(expected - declared)
    extra = sorted(declared - expected)
    assert not missing, f"add to environmentVariables in {deploy_file.name}:\n" + "\n".join(
        _env_line(n) for n in missing
    )
    assert not extra, f"{deploy_file.name} declares variables the code does not read: {extra}"


def test_environment_values_come_from_env_with_the_code_defaults(deploy_file):
    env = raw_props(deploy_file)["environmentVariables"]
    fixed = FIXED_SETTINGS.get(deploy_file.name, {})
    for name, value in {**RUNTIME_VARS, **fixed}.items():
        assert env.get(name) == value, f"{deploy_file.name}: {name} must be {value!r}"
    for name in set(env) - set(RUNTIME_VARS) - set(fixed):
        match = _ENV_CALL.fullmatch(str(env[name]).removeprefix("${").removesuffix("}"))
        assert match and str(env[name]).startswith("${"), (
            f"{name}: the value must be ${{env('{name}', 'default')}}"
        )
        assert match["name"] == name, f"{name} reads ${{env('{match['name']}')}}"
        code_default = (SETTINGS[name][0] or "") if name in SETTINGS else None
        assert match["default"] == code_default, (
            f"{name}: s.yaml default {match['default']!r} differs from the code's {code_default!r}"
        )


_SECRETISH = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL", re.I)


def test_no_secret_ships_in_s_yaml(deploy_file):
    env = props(path=deploy_file).get("environmentVariables") or {}
    for name in FC_PROVIDED:
        assert name not in env, f"{name} comes from the function's role, never from s.yaml"
    for name, value in env.items():
        assert not name.startswith("FC_"), f"{name}: the FC_ prefix is reserved by the runtime"
        if _SECRETISH.search(name):
            assert value == "", f"{name}: a secret-like setting must default to empty"
        assert not re.search(r"://[^/@\s]+:[^/@\s]*@", value), f"{name}: credentials in a URL"
    text = deploy_file.read_text(encoding="utf-8")
    assert not re.search(r"\bLTAI[0-9A-Za-z]{12,}", text), "an AccessKey id is in the file"
    assert not re.search(r"(?i)(access_?key_?secret|password)\s*:\s*\S", text)


def test_environment_fits_fc_size_limit(deploy_file):
    env = props(path=deploy_file).get("environmentVariables") or {}
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in env.items())
    assert size <= FC_ENV_LIMIT, f"{size} bytes of environment; FC allows {FC_ENV_LIMIT}"


_SETTING_NAME = re.compile(r"(?:AXN|DYPLS)_[A-Z0-9_]+|ALIBABA_CLOUD_[A-Z0-9_]+")


def _env_names_read_by_code() -> dict[str, set[str]]:
    """Setting-like string constants and os.environ/getenv names found in src/ (not src/python)."""
    found: dict[str, set[str]] = {}
    src = ROOT / "src"
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if rel.parts[0] == "python":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _SETTING_NAME.fullmatch(node.value):
                    names.append(node.value)
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                attr = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                base = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
                first = node.args[0]
                if (
                    (attr == "getenv" or (attr == "get" and base.endswith("environ")))
                    and isinstance(first, ast.Constant)
                    and isinstance(first.value, str)
                ):
                    names.append(first.value)
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
                key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    names.append(key.value)
            for name in names:
                found.setdefault(name, set()).add(str(rel))
    return found


def test_code_reads_no_undeclared_setting():
    undeclared = {
        name: sorted(files)
        for name, files in _env_names_read_by_code().items()
        if name not in SETTINGS and not name.startswith("FC_")
    }
    assert not undeclared, f"read by the code but missing from SETTINGS: {undeclared}"


def readme_configuration_names() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Configuration[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "README.md has no '## Configuration' section"
    names: set[str] = set()
    for line in section[1].splitlines():
        if line.startswith("|"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def test_readme_configuration_table_matches_settings():
    documented = readme_configuration_names()
    missing = sorted(set(SETTINGS) - documented)
    extra = sorted(documented - set(SETTINGS))
    assert not missing, f"not in the README's configuration table: {missing}"
    assert not extra, f"in the README's configuration table but not read by the code: {extra}"


# ---------------------------------------------------------------------------------------------
# RAM policy
# ---------------------------------------------------------------------------------------------


def policy_statements() -> list[dict[str, Any]]:
    doc = json.loads(RAM_POLICY.read_text(encoding="utf-8"))
    assert doc["Version"] == "1"
    return doc["Statement"]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_ram_policy_grants_only_what_the_function_uses():
    grants: dict[str, list[str]] = {}
    for statement in policy_statements():
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"wildcard action {action}"
            grants.setdefault(action, []).extend(_as_list(statement["Resource"]))
    assert set(grants) == {"dypls:BindAxnExtension", "mns:SendMessage", "log:PostLogStoreLogs"}
    for action, resources in grants.items():
        for resource in resources:
            if resource == "*":
                # Dyplsapi authorizes per operation only; its resource element is always "*".
                assert action.startswith("dypls:"), f"{action} on every resource"
            else:
                assert "*" not in resource, f"{action}: wildcard in {resource}"


def test_ram_policy_matches_s_yaml():
    """The queue and log store the policy names are the ones s.yaml deploys with."""
    p = props()
    fill = {"<region>": p["region"], "<account-id>": TEST_ACCOUNT_ID}

    def filled(resource: str) -> str:
        for key, value in fill.items():
            resource = resource.replace(key, value)
        return resource

    resources = {
        a: [filled(r) for r in _as_list(s["Resource"])]
        for s in policy_statements()
        for a in _as_list(s["Action"])
    }
    destination = p["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]
    assert destination in resources["mns:SendMessage"]
    log = p["logConfig"]
    store = f"acs:log:{p['region']}:{TEST_ACCOUNT_ID}:project/{log['project']}/logstore/{log['logstore']}"
    assert store in resources["log:PostLogStoreLogs"]


# ---------------------------------------------------------------------------------------------
# Every trigger has a sample in events/ that the handler processes (against the emulator)
# ---------------------------------------------------------------------------------------------


def _trigger_key(trigger: dict[str, Any]) -> tuple[str, str | None]:
    if trigger["triggerType"] == "eventbridge":
        return ("eventbridge", trigger["triggerConfig"]["eventSourceConfig"]["eventSourceType"])
    return (trigger["triggerType"], None)


def _collect(value: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in ``value`` (HTTP bodies are JSON text: parsed first)."""
    if isinstance(value, dict):
        if isinstance(value.get("body"), str) and "statusCode" in value:
            try:
                return _collect(json.loads(value["body"]), key)
            except ValueError:
                return []
        out = [value[key]] if key in value else []
        for item in value.values():
            out += _collect(item, key)
        return out
    if isinstance(value, list):
        return [x for item in value for x in _collect(item, key)]
    return []


def _envelope_keys(event: Any) -> set[str]:
    first = event[0] if isinstance(event, list) and event else event
    return set(first) if isinstance(first, dict) else set()


def assert_processed(event: Any, result: Any) -> None:
    """The handler recognised the event: no UnsupportedEvent, no envelope key taken for a field."""
    codes = _collect(result, "Code")
    assert codes, f"no Code in the result: {result!r}"
    assert "UnsupportedEvent" not in codes, f"not recognised: {result!r}"
    fields = {e.get("Field") for errors in _collect(result, "Errors") for e in errors or []}
    wrong = fields & _envelope_keys(event)
    assert not wrong, f"the envelope was read as a bind request (fields {wrong}): {result!r}"


def invoke(event: Any) -> Any:
    from index import handler
    from tools.fc_local import FcContext

    data = event if isinstance(event, bytes) else json.dumps(event, ensure_ascii=False).encode()
    return handler(data, FcContext())


TRIGGER_IDS = [t["triggerName"] for t in raw_props().get("triggers") or []]


@pytest.mark.parametrize("name", TRIGGER_IDS)
def test_trigger_has_a_sample_the_handler_processes(name, env):
    trigger = next(t for t in triggers() if t["triggerName"] == name)
    sample = EVENT_SAMPLES.get(_trigger_key(trigger))
    assert sample, f"{name}: no sample file is assigned to {_trigger_key(trigger)}"
    path = ROOT / sample
    assert path.is_file(), f"{name}: {sample} is missing"
    event = json.loads(path.read_text(encoding="utf-8"))
    assert_processed(event, invoke(event))


def test_timer_payload_in_s_yaml_binds(env):
    trigger = triggers_of("timer")[0]
    event = {
        "triggerTime": "2026-01-01T00:00:00Z",
        "triggerName": trigger["triggerName"],
        "payload": trigger["triggerConfig"]["payload"],
    }
    result = invoke(event)
    assert_processed(event, result)
    assert _collect(result, "SecretBindDTO"), f"the s.yaml timer payload did not bind: {result!r}"


# ---------------------------------------------------------------------------------------------
# Serverless Devs itself
# ---------------------------------------------------------------------------------------------


def _npx() -> str | None:
    if not shutil.which("node"):
        return None
    return shutil.which("npx")


class ServerlessDevs:
    """The pinned `s` CLI (through npx) in a temporary HOME holding one throwaway access alias
    with a fake AccountID, so that ${config('AccountID')} resolves; nothing is sent anywhere.
    Only PATH, npm's settings and the variables given reach it, not this process's environment."""

    ALIAS = "axn-test"

    def __init__(self, tmp_path: Path) -> None:
        npx = _npx()
        if npx is None:
            reason = "Node.js (node and npx) is not installed: the Serverless Devs CLI cannot run"
            if os.environ.get("CI") == "true":
                pytest.fail(reason + " (CI must run it)")
            pytest.skip(reason)
        self.npx = npx
        home = tmp_path / "s-home"
        home.mkdir(exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            # Reuse the real npm cache so that the CLI is downloaded once, not for every run.
            "npm_config_cache": str(Path.home() / ".npm"),
            "npm_config_update_notifier": "false",
        }
        self.env.update(
            {k: v for k, v in os.environ.items() if k.lower().startswith(("npm_config_", "http"))}
        )
        added = self.run(
            ROOT,
            "config",
            "add",
            "-a",
            self.ALIAS,
            "--AccountID",
            TEST_ACCOUNT_ID,
            "--AccessKeyID",
            "fake-access-key-id",
            "--AccessKeySecret",
            "fake-access-key-secret",
            "-f",
        )
        assert added.returncode == 0, added.stdout[-2000:] + added.stderr[-2000:]

    def run(
        self, cwd: Path, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.npx, "--yes", S_CLI, *args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def preview(
        self, path: Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            path.parent, "preview", "-t", path.name, "-a", self.ALIAS, "-o", "json", env=env
        )


def preview_props(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    start = out.find("\n{") + 1 if not out.startswith("{") else 0  # a warning line may come first
    _, resource = the_resource(json.loads(out[start:]))
    return resource["props"]


@pytest.mark.slow
def test_s_preview_renders_the_file(tmp_path, deploy_file):
    """`s preview -o json` (offline) renders the file; its output passes the fc3 schema too."""
    s = ServerlessDevs(tmp_path)
    env = {"S_RUNTIME": "python3.10"}
    p = preview_props(s.preview(deploy_file, env={**VPC_ENV, **env}))
    assert "${" not in json.dumps(p), "s preview left a magic variable unexpanded"
    errors = schema_errors(Draft7Validator(schema()), p)
    assert not errors, "s preview output breaks the fc3 schema:\n" + "\n".join(errors)
    # Our own rendering agrees with the real tool's.
    assert p == props(env, deploy_file)


@pytest.mark.slow
def test_production_deploy_stops_without_the_vpc_of_its_store(tmp_path):
    """Without S_VPC_ID & co. exported, `s` refuses to render s.yaml (so `s deploy` deploys
    nothing) instead of deploying a function outside the VPC, where its Redis is unreachable."""
    with pytest.raises(MagicError, match="S_VPC_ID"):
        rendered(vpc=False)
    s = ServerlessDevs(tmp_path)
    result = s.preview(S_YAML)
    assert result.returncode != 0, "s preview rendered s.yaml without S_VPC_ID"
    assert "S_VPC_ID" in result.stdout + result.stderr
    p = preview_props(s.preview(S_YAML, env=VPC_ENV))
    assert p["vpcConfig"] == {
        "vpcId": VPC_ENV["S_VPC_ID"],
        "vSwitchIds": [VPC_ENV["S_VSWITCH_ID"]],
        "securityGroupId": VPC_ENV["S_SECURITY_GROUP_ID"],
    }
    assert p["internetAccess"] is True, "Dyplsapi is a public endpoint"


# The checks every deploy file must pass, whatever it deploys: tests/tools/test_registry.py runs them on
# the s.yaml of the application template too (rendered with the defaults of its parameters).
SHARED_CHECKS = (
    test_s_yaml_is_one_fc3_function,
    test_fc3_component_is_pinned_to_the_release_of_its_schema,
    test_props_validate_against_fc3_schema,
    test_every_magic_variable_resolves,
    test_code_and_runtime,
    test_pre_deploy_checks_then_builds_the_package,
    test_handler_paths_resolve_to_callables,
    test_each_trigger_config_matches_its_own_type,
    test_trigger_names_are_unique,
    test_no_trigger_is_anonymous_and_http_is_post_only,
    test_environment_declares_every_setting_and_nothing_else,
    test_environment_values_come_from_env_with_the_code_defaults,
    test_no_secret_ships_in_s_yaml,
    test_environment_fits_fc_size_limit,
    test_s_preview_renders_the_file,
)


def test_the_publish_policy_grants_each_signed_target_exactly_its_action():
    """ram-policy.publish.json: one statement per kind of target that signs with the function's
    role, no wildcard, every resource a placeholder the README names."""
    policy = json.loads((ROOT / "ram-policy.publish.json").read_text())
    grants: dict[str, list[str]] = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement
        for action in statement["Action"]:
            assert "*" not in action
            grants.setdefault(action, []).extend(statement["Resource"])
    assert set(grants) == {
        "eventbridge:PutEvents",
        "mns:SendMessage",
        "mns:PublishMessage",
        "fc:InvokeFunction",
    }
    readme = (ROOT / "README.md").read_text()
    for resources in grants.values():
        for resource in resources:
            assert "*" not in resource
            for placeholder in re.findall(r"<[a-z-]+>", resource):
                assert placeholder in readme, f"README must say what {placeholder} is"
