"""The waiting rules the Dyplsapi client and the publish targets share: backoff and wait hints."""

from __future__ import annotations

from axn_bind.backoff import backoff, hint_seconds, retry_after


def test_the_wait_doubles_from_the_base_up_to_the_cap_jittered_between_half_and_all():
    highest = [backoff(n, 0.5, 3.0, rand=lambda low, high: high) for n in (1, 2, 3, 4, 5)]
    lowest = [backoff(n, 0.5, 3.0, rand=lambda low, high: low) for n in (1, 2, 3, 4, 5)]
    assert highest == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert lowest == [0.25, 0.5, 1.0, 1.5, 1.5]


def test_the_default_jitter_stays_within_the_bounds():
    for attempt in (1, 2, 3, 6):
        ceiling = min(2.0, 0.2 * 2 ** (attempt - 1))
        for _ in range(200):
            assert ceiling / 2 <= backoff(attempt, 0.2, 2.0) <= ceiling


def test_the_callers_share_it():
    from axn_bind.dypls import retry
    from axn_bind.publish import amqp, http

    assert retry.backoff is http.backoff is amqp.backoff is backoff


def test_a_wait_hint_is_whole_ascii_digits_in_seconds_or_milliseconds():
    assert hint_seconds("3") == 3.0 and hint_seconds(" 700 ", per_second=1000) == 0.7
    assert hint_seconds(None) is None and hint_seconds("") is None
    assert hint_seconds("1.5") is None and hint_seconds("-1") is None
    assert hint_seconds("\u00b2") is None  # a digit to str.isdigit, not a number


def test_retry_after_and_the_gateway_hint_read_numbers_alike():
    from axn_bind.dypls.classify import retry_after_seconds

    for value in ("0", "7", " 12 ", "1.5", "soon", "\u0663"):
        assert retry_after_seconds({"retry-after": value}) == retry_after(value, now=0)
