"""FC_REGION and FC_ACCOUNT_ID are read in one place, config.fc_location."""

from __future__ import annotations

from types import SimpleNamespace

from axn_bind import config, service
from axn_bind.config import fc_location
from axn_bind.publish import http


def test_fc_location_reads_both_stripped_and_empty_when_not_set():
    assert fc_location({"FC_REGION": " cn-hangzhou ", "FC_ACCOUNT_ID": "42\n"}) == (
        "cn-hangzhou",
        "42",
    )
    assert fc_location({}) == ("", "")


def test_the_event_source_and_the_default_endpoints_read_it(monkeypatch):
    monkeypatch.setenv("FC_REGION", "cn-shanghai")
    monkeypatch.setenv("FC_ACCOUNT_ID", "1111")
    assert service.fc_location is http.fc_location is config.fc_location
    context = SimpleNamespace(function=SimpleNamespace(name="axn-bind"))
    source = service.BindService._source(None, context)
    assert source == "acs:fc:cn-shanghai:1111:functions/axn-bind"
    given = SimpleNamespace(function=context.function, region="cn-beijing", account_id="7")
    assert service.BindService._source(None, given) == "acs:fc:cn-beijing:7:functions/axn-bind"
    assert http.endpoint("x", None, None, "https://{account}.{region}.example") == (
        "https://1111.cn-shanghai.example"
    )
