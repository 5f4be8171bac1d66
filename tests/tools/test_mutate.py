"""The mutation check's named mutants still match the code they break: a rule moved or reworded
in the source would otherwise leave its mutant unapplied, and `make mutate` would stop checking
that rule without anybody running it noticing before the 40 minutes are over."""

from __future__ import annotations

from pathlib import Path

from tools import mutate

ROOT = Path(__file__).resolve().parents[2]


def test_every_named_mutant_applies_to_exactly_one_place():
    mutants, stale = mutate.named(ROOT)
    assert stale == []
    assert len(mutants) == len(mutate.NAMED)
    for mutant in mutants:
        assert all((ROOT / test).is_file() for test in mutant.tests), mutant.label
