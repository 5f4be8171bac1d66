"""Helpers shared by the announcement targets' tests."""

from __future__ import annotations

from typing import Any


class Sleeps:
    """A target's ``sleep``: records each wait between attempts instead of waiting, so that a
    test reads the backoff (and a retry costs no time)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def sample_event(order_id: str = "DD-1", account: str | None = None) -> Any:
    """An ``axn.binding.created`` event as the function makes it, for a target to deliver."""
    from axn_bind.publish import event as ev

    return ev.created(
        source=ev.source_of("axn-bind", "cn-hangzhou", account),
        when=1_900_000_000.0,
        pool_key="FC100000000000001",
        binding={"SecretNo": "17000000001", "Extension": "100", "SubsId": "1000000800000001"},
        request={"PhoneNoA": "13912345678", "OutOrderId": order_id},
        upstream_request_id="R-1",
    )
