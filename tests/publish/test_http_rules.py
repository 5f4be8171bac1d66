"""The rules the HTTP targets share, written once in axn_bind.publish.http."""

from __future__ import annotations

import pytest

from axn_bind.errors import ConfigurationError
from axn_bind.publish import eventbridge, fc, http, mns, open_target, webhook

ENV = {"FC_REGION": "cn-hangzhou", "FC_ACCOUNT_ID": "1"}


def test_the_retried_statuses_are_one_list_and_mns_adds_only_its_own():
    assert {429, 500, 502, 503, 504} == http.RETRIED
    assert webhook.RETRIED is eventbridge.RETRIED is fc.RETRIED is http.RETRIED
    assert mns.MNS_RETRIED is http.MNS_RETRIED
    assert {408, 501, *range(505, 1000)} == http.MNS_RETRIED - http.RETRIED
    assert not {200, 201, 400, 403, 404, 409, 410, 499} & http.MNS_RETRIED


@pytest.mark.parametrize(
    ("url", "takes"),
    [
        ("eventbridge://orders", "it takes one query parameter, endpoint="),
        ("mns://queue/q", "its options are base64= and endpoint="),
        ("fc://f", "its options are qualifier= and endpoint="),
        ("fc2://s/f", "its options are qualifier= and endpoint="),
    ],
)
def test_the_targets_refuse_unknown_and_repeated_options_alike(url, takes, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as unknown:
        open_target(f"{url}?region=hunter2&endpoint=https://h")
    assert (
        unknown.value.message == f"AXN_PUBLISH_TO: {url} has an unknown option ?region=; {takes}."
    )
    with pytest.raises(ConfigurationError) as repeated:
        open_target(f"{url}?endpoint=https://a&endpoint=https://b")
    assert repeated.value.message == f"AXN_PUBLISH_TO: {url} gives ?endpoint= twice; give it once."
