"""Every transition of the idempotency store, run against both backends (memory and Redis)."""

from __future__ import annotations

import pytest

from axn_bind.idempotency import Begin, Outcome, Record, State, store_key
from tests.idempotency.support import Backend

FP = "fp-1"
OTHER_FP = "fp-2"
LEASE = 30.0  # live for the whole test
SHORT = 0.1  # for records whose owner "dies": Redis tests wait it out in real time
TTL = 60


def key(name: str = "k") -> str:
    return store_key("tenant", name)


def begin(b: Backend, k: str, fp: str = FP, *, take_over: bool = False, lease: float = LEASE):
    return b.store.begin(k, fp, lease_seconds=lease, ttl_seconds=TTL, take_over_unknown=take_over)


def started(b: Backend, k: str, fp: str = FP) -> str:
    result = begin(b, k, fp)
    assert result.started and result.outcome is Outcome.STARTED, result
    assert result.token
    return result.token


def unknown_record(b: Backend, k: str) -> Record:
    token = started(b, k)
    assert b.store.mark_unknown(
        k, token, response='{"Code":"UpstreamTimeout"}', status=504, ttl_seconds=TTL,
        upstream_request_id="REQ-U",
    )  # fmt: skip
    record = b.store.get(k)
    assert record is not None and record.state is State.UNKNOWN
    return record


def expired_record(b: Backend, k: str) -> Record:
    assert begin(b, k, lease=SHORT).started
    b.wait(SHORT + 0.05)
    record = b.store.get(k)
    assert record is not None and record.state is State.IN_PROGRESS
    return record


# -- begin --------------------------------------------------------------------------------


def test_begin_on_a_new_key_creates_an_in_progress_record(backend: Backend) -> None:
    before = backend.now()
    result = begin(backend, key())
    assert result == Begin(True, result.token, None, Outcome.STARTED)
    record = backend.store.get(key())
    assert record is not None
    assert record.state is State.IN_PROGRESS
    assert (record.fingerprint, record.token) == (FP, result.token)
    assert record.lease_until > backend.now()
    assert (record.response, record.status, record.upstream_request_id) == (None, None, None)
    assert before - 1 <= record.created_at <= backend.now() + 1
    assert record.lease_until == pytest.approx(record.created_at + LEASE, abs=0.01)


def test_tokens_are_random_per_begin(backend: Backend) -> None:
    tokens = {started(backend, key(str(i))) for i in range(20)}
    assert len(tokens) == 20
    assert all(len(t) >= 32 for t in tokens)


def test_a_live_lease_is_not_taken_even_when_take_over_is_allowed(backend: Backend) -> None:
    token = started(backend, key())
    for take_over in (False, True):
        result = begin(backend, key(), take_over=take_over)
        assert (result.started, result.token, result.outcome) == (False, None, Outcome.IN_PROGRESS)
        assert result.record is not None and result.record.token == token
    record = backend.store.get(key())
    assert record is not None and record.token == token


def test_completed_is_replayed_and_never_taken_over(backend: Backend) -> None:
    token = started(backend, key())
    body = '{"Code":"OK","SecretBindDTO":{"SecretNo":"17000000000","Extension":"130"}}'
    assert backend.store.complete(
        key(), token, response=body, status=200, ttl_seconds=TTL, upstream_request_id="REQ-1"
    )
    for take_over in (False, True):
        result = begin(backend, key(), take_over=take_over)
        assert (result.started, result.token, result.outcome) == (False, None, Outcome.COMPLETED)
        assert result.record is not None
        assert result.record.state is State.COMPLETED
        assert (result.record.response, result.record.status) == (body, 200)
        assert result.record.upstream_request_id == "REQ-1"
        assert result.record.token == token


def test_unknown_without_take_over_is_reported_and_kept(backend: Backend) -> None:
    record = unknown_record(backend, key())
    result = begin(backend, key())
    assert result == Begin(False, None, record, Outcome.UNKNOWN)
    assert backend.store.get(key()) == record


def test_unknown_is_taken_over_when_asked(backend: Backend) -> None:
    record = unknown_record(backend, key())
    result = begin(backend, key(), take_over=True)
    assert result.started and result.outcome is Outcome.TAKEN_OVER
    assert result.record == record  # the replaced record, response and all
    assert result.token not in (None, record.token)
    now = backend.store.get(key())
    assert now is not None
    assert (now.state, now.token, now.response, now.status) == (
        State.IN_PROGRESS, result.token, None, None,
    )  # fmt: skip
    # The new owner's lease is live: a second take-over is refused.
    again = begin(backend, key(), take_over=True)
    assert again.outcome is Outcome.IN_PROGRESS and again.record == now
    # The old owner can no longer write.
    assert not backend.store.complete(
        key(), record.token, response="{}", status=200, ttl_seconds=TTL
    )
    assert backend.store.complete(key(), result.token, response="{}", status=200, ttl_seconds=TTL)


def test_an_expired_lease_is_an_unknown_outcome(backend: Backend) -> None:
    record = expired_record(backend, key())
    result = begin(backend, key())
    assert result == Begin(False, None, record, Outcome.LEASE_EXPIRED)
    assert backend.store.get(key()) == record


def test_an_expired_lease_is_taken_over_when_asked(backend: Backend) -> None:
    record = expired_record(backend, key())
    result = begin(backend, key(), take_over=True)
    assert result.started and result.outcome is Outcome.TAKEN_OVER
    assert result.record == record
    assert result.token != record.token
    # The dead owner comes back: it no longer owns the key, in any way.
    for write in (
        lambda t: backend.store.complete(key(), t, response="{}", status=200, ttl_seconds=TTL),
        lambda t: backend.store.mark_unknown(
            key(), t, response="{}", status=502, ttl_seconds=TTL, upstream_request_id=None
        ),
        lambda t: backend.store.release(key(), t),
    ):
        assert write(record.token) is False
    current = backend.store.get(key())
    assert current is not None and current.token == result.token


def test_the_owner_may_still_complete_after_its_lease_ran_out(backend: Backend) -> None:
    # Nobody took the key over, so the owner's real answer is better than "unknown".
    record = expired_record(backend, key())
    assert backend.store.complete(key(), record.token, response="{}", status=200, ttl_seconds=TTL)
    assert begin(backend, key(), take_over=True).outcome is Outcome.COMPLETED


@pytest.mark.parametrize("state", ["in_progress", "expired", "completed", "unknown"])
def test_a_different_fingerprint_never_touches_the_record(backend: Backend, state: str) -> None:
    k = key()
    if state == "in_progress":
        started(backend, k)
    elif state == "expired":
        expired_record(backend, k)
    elif state == "completed":
        token = started(backend, k)
        assert backend.store.complete(k, token, response="{}", status=200, ttl_seconds=TTL)
    else:
        unknown_record(backend, k)
    before = backend.store.get(k)
    assert before is not None
    for take_over in (False, True):
        result = begin(backend, k, OTHER_FP, take_over=take_over)
        assert result == Begin(False, None, before, Outcome.KEY_REUSED)
        assert result.record is not None and result.record.fingerprint == FP
    assert backend.store.get(k) == before


# -- complete / mark_unknown ----------------------------------------------------------------


def test_complete_needs_the_owning_token(backend: Backend) -> None:
    token = started(backend, key())
    before = backend.store.get(key())
    assert not backend.store.complete(
        key(), "not-the-token", response="{}", status=200, ttl_seconds=TTL
    )
    assert backend.store.get(key()) == before
    assert not backend.store.complete(
        key("missing"), token, response="{}", status=200, ttl_seconds=TTL
    )
    assert backend.store.get(key("missing")) is None


def test_complete_twice_keeps_the_first_answer(backend: Backend) -> None:
    token = started(backend, key())
    assert backend.store.complete(key(), token, response='{"n":1}', status=200, ttl_seconds=TTL)
    # A repeat by the same owner (e.g. a retried call whose reply was lost) is not an error,
    # but it never rewrites the stored answer.
    assert backend.store.complete(key(), token, response='{"n":2}', status=200, ttl_seconds=TTL)
    record = backend.store.get(key())
    assert record is not None and record.response == '{"n":1}'


def test_a_finished_record_cannot_change_state(backend: Backend) -> None:
    token = started(backend, key())
    assert backend.store.mark_unknown(
        key(), token, response='{"u":1}', status=502, ttl_seconds=TTL, upstream_request_id=None
    )
    assert not backend.store.complete(key(), token, response='{"c":1}', status=200, ttl_seconds=TTL)
    assert not backend.store.release(key(), token)
    record = backend.store.get(key())
    assert record is not None
    assert (record.state, record.response, record.status) == (State.UNKNOWN, '{"u":1}', 502)

    other = started(backend, key("b"))
    assert backend.store.complete(key("b"), other, response="{}", status=200, ttl_seconds=TTL)
    assert not backend.store.mark_unknown(
        key("b"), other, response="{}", status=502, ttl_seconds=TTL, upstream_request_id=None
    )
    done = backend.store.get(key("b"))
    assert done is not None and done.state is State.COMPLETED


def test_mark_unknown_stores_the_answer_and_upstream_id(backend: Backend) -> None:
    token = started(backend, key())
    body = '{"Code":"UpstreamConnectionLost","Message":"连接中断","RequestId":"R-9"}'
    assert backend.store.mark_unknown(
        key(), token, response=body, status=502, ttl_seconds=TTL, upstream_request_id="R-9"
    )
    record = backend.store.get(key())
    assert record is not None
    assert (record.state, record.response, record.status) == (State.UNKNOWN, body, 502)
    assert (record.upstream_request_id, record.token, record.fingerprint) == ("R-9", token, FP)


def test_upstream_request_id_is_optional(backend: Backend) -> None:
    token = started(backend, key())
    assert backend.store.complete(key(), token, response="{}", status=400, ttl_seconds=TTL)
    record = backend.store.get(key())
    assert record is not None and record.upstream_request_id is None and record.status == 400


RESPONSES = [
    '{"Code":"OK","Message":"OK","RequestId":"9297B722","SecretBindDTO":{"Extension":"130"}}',
    '{"Message":"北京 绑定成功 ✓ 😀","Nested":{"a":[1,2.50,"\\u0000"]}}',
    '{\n  "indent": true,\t"trailing": "space"   }\n',
    "",
    '{"lone":"\ud800"}',  # a lone surrogate, as json.dumps(..., ensure_ascii=False) may emit
    '{"big":"' + "界" * 50_000 + '"}',
]


@pytest.mark.parametrize(
    "body", RESPONSES, ids=["ascii", "unicode", "spacing", "empty", "surrogate", "big"]
)
def test_the_response_text_round_trips_exactly(backend: Backend, body: str) -> None:
    for finish in ("complete", "mark_unknown"):
        k = key(finish)
        token = started(backend, k)
        method = getattr(backend.store, finish)
        assert method(
            k, token, response=body, status=201, ttl_seconds=TTL, upstream_request_id="请求-1"
        )
        result = begin(backend, k)
        assert result.record is not None
        assert result.record.response == body
        assert result.record.upstream_request_id == "请求-1"
        got = backend.store.get(k)
        assert got is not None and got.response == body


# -- release / clear ---------------------------------------------------------------------


def test_release_forgets_the_key_for_its_owner_only(backend: Backend) -> None:
    token = started(backend, key())
    assert not backend.store.release(key(), "someone-else")
    assert backend.store.get(key()) is not None
    assert backend.store.release(key(), token)
    assert backend.store.get(key()) is None
    assert not backend.store.release(key(), token)
    started(backend, key())  # free for the next delivery


def test_release_after_a_take_over_restores_the_replaced_record(backend: Backend) -> None:
    # The new attempt reached nobody, but the earlier one may have made a binding: keep saying so.
    record = unknown_record(backend, key())
    result = begin(backend, key(), take_over=True)
    assert result.started and result.token
    assert backend.store.release(key(), result.token)
    assert backend.store.get(key()) == record
    assert begin(backend, key()).outcome is Outcome.UNKNOWN


def test_clear_forgets_any_record(backend: Backend) -> None:
    record = unknown_record(backend, key())
    assert backend.store.clear(key())
    assert backend.store.get(key()) is None
    assert not backend.store.clear(key())
    fresh = begin(backend, key())
    assert fresh.started and fresh.outcome is Outcome.STARTED and fresh.token != record.token


def test_keys_are_independent(backend: Backend) -> None:
    unknown_record(backend, key("a"))
    started(backend, key("b"))
    assert backend.store.clear(key("a"))
    record = backend.store.get(key("b"))
    assert record is not None and record.state is State.IN_PROGRESS


# -- expiry ------------------------------------------------------------------------------


def test_records_expire_after_their_ttl_and_finishing_sets_a_new_ttl(backend: Backend) -> None:
    short, kept = key("short"), key("kept")
    for k in (short, kept):
        assert backend.store.begin(
            k, FP, lease_seconds=SHORT, ttl_seconds=1, take_over_unknown=False
        ).started
    token = backend.store.get(kept)
    assert token is not None
    assert backend.store.complete(kept, token.token, response="{}", status=200, ttl_seconds=TTL)
    backend.wait(1.15)
    assert backend.store.get(short) is None
    assert not backend.store.clear(short)
    assert begin(backend, short).outcome is Outcome.STARTED
    record = backend.store.get(kept)
    assert record is not None and record.state is State.COMPLETED


# -- argument checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"lease_seconds": 30, "ttl_seconds": 10}, "at least lease_seconds"),
        ({"lease_seconds": 0, "ttl_seconds": 10}, "lease_seconds"),
        ({"lease_seconds": float("nan"), "ttl_seconds": 10}, "lease_seconds"),
        ({"lease_seconds": 1, "ttl_seconds": 0}, "ttl_seconds"),
        ({"lease_seconds": 1, "ttl_seconds": 1.5}, "ttl_seconds"),
    ],
)
def test_begin_rejects_bad_times(backend: Backend, kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        backend.store.begin(key(), FP, take_over_unknown=False, **kwargs)
    assert backend.store.get(key()) is None


def test_bad_arguments_are_rejected_before_touching_the_store(backend: Backend) -> None:
    with pytest.raises(ValueError, match="key"):
        backend.store.begin("", FP, lease_seconds=1, ttl_seconds=10, take_over_unknown=False)
    with pytest.raises(ValueError, match="fingerprint"):
        backend.store.begin(key(), "", lease_seconds=1, ttl_seconds=10, take_over_unknown=False)
    token = started(backend, key())
    with pytest.raises(ValueError, match="status"):
        backend.store.complete(key(), token, response="{}", status=1000, ttl_seconds=TTL)
    with pytest.raises(ValueError, match="response"):
        backend.store.complete(key(), token, response=b"{}", status=200, ttl_seconds=TTL)  # type: ignore[arg-type]
    record = backend.store.get(key())
    assert record is not None and record.state is State.IN_PROGRESS


# -- the outbox: an outcome's announcement, kept with its record ----------------------------

EVENT = '{"specversion":"1.0","id":"e-1","type":"axn.binding.created"}'


def completed_with_event(b: Backend, k: str, event: str | None = EVENT) -> None:
    token = started(b, k)
    assert b.store.complete(
        k, token, response='{"Code":"OK"}', status=200, ttl_seconds=TTL, event=event
    )


def test_complete_keeps_the_event_until_it_is_announced_everywhere(backend: Backend) -> None:
    completed_with_event(backend, key())
    record = backend.store.get(key())
    assert record is not None and (record.event, record.announced) == (EVENT, ())
    assert backend.store.announce(key(), ["https://b/hook", "file:///tmp/e.jsonl"])
    assert backend.store.announce(key(), ["https://b/hook"])  # again: nothing changes
    record = backend.store.get(key())
    assert record is not None and record.announced == ("file:///tmp/e.jsonl", "https://b/hook")
    replay = begin(backend, key())  # a retry replays the answer and sees what was announced
    assert replay.outcome is Outcome.COMPLETED and replay.record is not None
    assert (replay.record.event, replay.record.announced) == (EVENT, record.announced)


def test_only_a_completed_record_with_an_event_can_be_announced(backend: Backend) -> None:
    assert not backend.store.announce(key("none"), ["t"])
    started(backend, key("busy"))
    assert not backend.store.announce(key("busy"), ["t"])
    completed_with_event(backend, key("quiet"), event=None)
    assert not backend.store.announce(key("quiet"), ["t"])
    unknown_record(backend, key("unknown"))
    assert not backend.store.announce(key("unknown"), ["t"])
    with pytest.raises(ValueError):
        backend.store.announce(key("quiet"), ["two\nlines"])


def test_the_outbox_lists_keys_after_a_grace_period_oldest_first(backend: Backend) -> None:
    backend.store.outbox_remove(key("a"))  # removing what is not there is fine
    backend.store.outbox_add(key("a"))
    backend.wait(0.05)
    backend.store.outbox_add(key("b"))
    backend.store.outbox_add(key("a"))  # again: keeps its first time
    assert backend.store.outbox_due(older_than=3600, limit=10) == []
    backend.wait(0.05)
    assert backend.store.outbox_due(older_than=0, limit=10) == [key("a"), key("b")]
    assert backend.store.outbox_due(older_than=0, limit=1) == [key("a")]
    backend.store.outbox_remove(key("a"))
    assert backend.store.outbox_due(older_than=0, limit=10) == [key("b")]
    with pytest.raises(ValueError):
        backend.store.outbox_due(older_than=0, limit=0)


def test_a_begin_whose_reply_is_lost_gives_the_key_back(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store took the key, then its reply was lost (a connection cut, a restart): the begin
    fails (nothing is sent), and a retry must not meet a lease that no call stands behind."""
    from axn_bind.idempotency import StoreUnavailableError

    store = backend.store
    real = store._begin

    def taken_then_lost(*args, **kwargs):
        real(*args, **kwargs)
        raise StoreUnavailableError("the connection closed before the reply")

    monkeypatch.setattr(store, "_begin", taken_then_lost)
    k = store_key("ns", "order:lost-reply")
    with pytest.raises(StoreUnavailableError):
        begin(backend, k)
    monkeypatch.undo()
    assert store.get(k) is None
    assert begin(backend, k).outcome is Outcome.STARTED
