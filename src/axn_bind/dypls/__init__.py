"""The Dyplsapi client: sign → send (:mod:`.transport`) → judge (:mod:`.classify`) → maybe send
again (:mod:`.retry`). The code table is :mod:`.codes`.

Retried, re-signed with a fresh nonce and timestamp each time: gateway throttling,
``isv.FLOW_LIMIT`` and failures before the request was sent. Never retried: anything after which
a binding may exist.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ..budget import Budget
from ..config import Credentials, Settings
from ..log import log
from ..signing import SignedRequest, masked_signed_text, new_nonce, sign_v1, sign_v3, utc_timestamp
from . import codes
from .classify import Verdict, classify
from .retry import RetryPolicy
from .transport import Transport

__all__ = ["DyplsClient", "RetryPolicy", "Transport", "Verdict"]


class DyplsClient:
    """One transport (one connection pool) per instance, reused across warm invocations."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint
        self.host = urlsplit(settings.endpoint).netloc
        self.transport = transport or Transport()
        self.sleep = sleep
        self.policy = policy or RetryPolicy(
            settings.max_attempts, settings.backoff_base, settings.backoff_max
        )

    def _sign(
        self, action: str, params: dict[str, str], creds: Credentials, when: str, nonce: str
    ) -> SignedRequest:
        """Parameters in a form body, never in the URL (see :mod:`axn_bind.signing`)."""
        if self.settings.signature_version == "v1":
            return sign_v1(
                method="POST",
                action=action,
                params=params,
                credentials=creds,
                timestamp=when,
                nonce=nonce,
                form=True,
            )
        return sign_v3(
            method="POST",
            host=self.host,
            action=action,
            params=params,
            credentials=creds,
            date=when,
            nonce=nonce,
            form=True,
        )

    def call(
        self, action: str, params: dict[str, str], creds: Credentials, budget: Budget
    ) -> Verdict:
        """Send ``action`` until a verdict is final; raises only DeadlineExceededError, and only
        before anything was sent."""
        budget.require_call()
        attempt = 0
        while True:
            attempt += 1
            when, nonce = utc_timestamp(), new_nonce()
            signed = self._sign(action, params, creds, when, nonce)
            started = budget.now()
            exchange = self.transport.send(
                self.endpoint + signed.target,
                signed.headers,
                signed.body,
                connect_timeout=self.settings.connect_timeout,
                read_timeout=self.settings.read_timeout,
                end=budget.exchange_end(),
            )
            # The attempt's own name, for matching against Dyplsapi's records when no RequestId
            # came back: the signature nonce and the signing time (as sent).
            verdict = classify(exchange)._replace(
                attempt=f"{nonce}@{when}",
                attempts=attempt,
                upstream_ms=round((budget.now() - started) * 1000),
            )
            log(  # a binding's figures are in its bind line; every other attempt is a warning
                "dypls_call",
                logging.DEBUG if verdict.bound else logging.WARNING,
                action=action,
                attempt=attempt,
                exchange=type(exchange).__name__,
                http_status=getattr(exchange, "status", None),
                code=verdict.code,
                upstream_request_id=verdict.request_id,
                attempt_id=verdict.attempt,
                upstream_ms=verdict.upstream_ms,
            )
            if not verdict.bound and codes.lookup(verdict.code) is codes.SIGNING:
                log(
                    "signature_rejected",
                    logging.DEBUG,
                    signature_version=self.settings.signature_version,
                    signed_text=masked_signed_text(signed, creds),
                )
            wait = self.policy.next_wait(attempt, verdict, budget)
            if wait is None:
                return verdict
            log(
                "dypls_retry",
                logging.WARNING,
                action=action,
                attempt=attempt,
                code=verdict.code,
                delay_ms=round(wait * 1000),
            )
            self.sleep(wait)

    def preconnect(self) -> None:
        """Connect to Dyplsapi ahead of the first call (an instance's initializer); a failure is
        logged and left to the first call to answer."""
        reason = self.transport.preconnect(self.endpoint + "/", self.settings.connect_timeout)
        if reason is not None:
            log("dypls_preconnect_failed", logging.WARNING, reason=reason)

    def close(self) -> None:
        self.transport.close()
