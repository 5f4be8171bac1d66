"""evolve: the copy of a frozen record that the bind path makes, as dataclasses.replace makes it."""

from __future__ import annotations

import dataclasses

import pytest

from axn_bind.dypls.classify import Verdict
from axn_bind.errors import Kind
from axn_bind.frozen import evolve
from axn_bind.idempotency.base import Record, State
from axn_bind.outcome import Outcome

SAMPLES = [
    (Outcome(200, {"Code": "OK"}, upstream_request_id="R1"), {"record": "k", "event": "{}"}),
    (Verdict(Kind.UNKNOWN, "UpstreamTimeout", 504, "late"), {"attempt": "n@t", "attempts": 2}),
    (Record(State.IN_PROGRESS, "fp", "tok", 1.0, None, None, None, 0.0), {"state": State.UNKNOWN}),
]


@pytest.mark.parametrize(("original", "changes"), SAMPLES)
def test_evolve_makes_what_replace_makes_and_leaves_the_original(original, changes):
    before = dataclasses.asdict(original)
    copy = evolve(original, **changes)
    assert copy == dataclasses.replace(original, **changes)
    assert type(copy) is type(original)
    assert dataclasses.asdict(original) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.status = 1  # still frozen


def test_evolve_refuses_a_field_the_record_does_not_have():
    with pytest.raises(TypeError, match="no field 'recrod'"):
        evolve(Outcome(200, {}), recrod="k")
