"""The rules the HTTP targets share, written once in axn_bind.publish.http."""

from __future__ import annotations

from axn_bind.publish import eventbridge, fc, http, mns, webhook


def test_the_retried_statuses_are_one_list_and_mns_adds_only_its_own():
    assert {429, 500, 502, 503, 504} == http.RETRIED
    assert webhook.RETRIED is eventbridge.RETRIED is fc.RETRIED is http.RETRIED
    assert mns.MNS_RETRIED is http.MNS_RETRIED
    assert {408, 501, *range(505, 1000)} == http.MNS_RETRIED - http.RETRIED
    assert not {200, 201, 400, 403, 404, 409, 410, 499} & http.MNS_RETRIED
