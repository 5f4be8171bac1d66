"""One version, written once (``axn_bind.__version__``), is the one every place reports: the wheel
(pyproject.toml reads it), the changelog's newest release, the log line an instance writes when it
starts (the FC code package has no package metadata to ask) and the local server's
``GET /version``. The built wheel's own metadata is checked by tests/tools/test_install.py."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from http.server import HTTPServer
from pathlib import Path

import requests

import axn_bind
from tests.conftest import call
from tools.localserver import TriggerHandler

if sys.version_info >= (3, 11):
    import tomllib
else:  # python3.10, the FC runtime's: pip carries the same parser
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
VERSION = re.compile(r"\d+\.\d+\.\d+")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_wheel_takes_its_version_from_the_code():
    pyproject = _pyproject()
    project = pyproject["project"]
    assert VERSION.fullmatch(axn_bind.__version__), axn_bind.__version__
    # A version written in pyproject.toml as well would be a second place that can drift.
    assert "version" not in project, f"pyproject.toml says {project['version']}: read the code's"
    assert "version" in project["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "axn_bind.__version__"}


def test_the_changelog_names_the_version_as_its_newest_release():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    assert releases and releases[0] == ("Unreleased", ""), releases[:2]
    newest, date = releases[1]
    assert newest == axn_bind.__version__, f"CHANGELOG.md's newest release is {newest}"
    assert date, f"{newest} has no release date"


def _messages(caplog, event: str) -> list[dict]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "axn_bind"]
    return [line for line in lines if line.get("event") == event]


def test_an_instance_logs_its_version_once_when_it_starts(env, caplog):
    request = {"PhoneNoA": "13900000001", "TtlSeconds": 600}
    with caplog.at_level(logging.INFO, logger="axn_bind"):
        assert call({**request, "OutOrderId": "version-1"})["Code"] == "OK"
        assert call({**request, "OutOrderId": "version-2"})["Code"] == "OK"
    started = _messages(caplog, "instance_started")
    assert len(started) == 1, started  # once an instance, not once a call
    assert started[0]["version"] == axn_bind.__version__
    assert started[0]["python"] == "{}.{}.{}".format(*sys.version_info[:3])


def test_the_local_server_answers_its_version():
    server = HTTPServer(("127.0.0.1", 0), TriggerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        answer = requests.get(f"http://127.0.0.1:{server.server_address[1]}/version", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {"Name": "axn-bind", "Version": axn_bind.__version__}
