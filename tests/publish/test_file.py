"""The JSON-lines file target, for local use."""

from __future__ import annotations

import json

import pytest

from axn_bind.errors import ConfigurationError, PublishError
from axn_bind.publish import event as ev
from axn_bind.publish import open_target


def event(n: int) -> ev.Event:
    return ev.created(
        source="s", when=0, pool_key="P", binding={"SubsId": str(n), "SecretNo": "17000000001"},
        request={"PhoneNoA": "13912345678"}, upstream_request_id=None,
    )  # fmt: skip


def test_each_event_is_one_line_appended(tmp_path):
    target = open_target(f"file://{tmp_path}/out/events.jsonl")
    target.send(event(1), timeout=1)
    target.send(event(2), timeout=1)
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["data"]["SubsId"] for line in lines] == ["1", "2"]


def test_a_file_that_cannot_be_written_is_a_retryable_error(tmp_path):
    (tmp_path / "blocked").write_text("a file where a directory should be")
    with pytest.raises(PublishError) as raised:
        open_target(f"file://{tmp_path}/blocked/events.jsonl").send(event(1), timeout=1)
    assert raised.value.retryable


@pytest.mark.parametrize("url", ["file://host/x.jsonl", "file://"])
def test_a_file_url_must_be_an_absolute_local_path(url):
    with pytest.raises(ConfigurationError):
        open_target(url)


def test_an_unknown_scheme_names_the_kinds_it_takes():
    with pytest.raises(ConfigurationError) as raised:
        open_target("gopher://x")
    assert "https://" in raised.value.message and "file://" in raised.value.message
