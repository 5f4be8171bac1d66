"""What the libraries the function sends with may log: a URL, but never its query (a webhook URL
may carry ``?token=…``) or its ``user:password@``, with every logger at DEBUG (as the privacy
scan of every test sets it)."""

from __future__ import annotations

import base64
import logging

import pytest

from axn_bind.publish import open_target
from tests.conftest import post
from tests.publish.conftest import sample_event
from tools.receivers.webhook import WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"library-logs-secret-32-bytes-xx!").decode()
TOKEN = "hook-token-7d41c9e0b2"
EVENT = sample_event("LL-1")


def test_a_webhook_delivery_logs_its_request_line_without_the_query(privacy_scan, caplog):
    """urllib3 logs every request line at DEBUG: the path is kept, the query is cut, also when
    the target is used without the function having configured logging."""
    privacy_scan.secrets.add(TOKEN)
    with caplog.at_level(logging.DEBUG), WebhookReceiver(SECRET) as rx:
        open_target(f"{rx.url}?token={TOKEN}", webhook_secret=SECRET).send(EVENT, timeout=5)
    assert len(rx.events) == 1  # delivered, with the token (the receiver got it)
    assert TOKEN not in caplog.text
    requests = [r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool"]
    assert any('"POST /hooks/axn?… HTTP/1.1" 204' in line for line in requests), requests


def test_an_announcement_to_a_webhook_with_a_token_logs_no_token(env, emulator, caplog):
    """The function as deployed: AXN_PUBLISH_TO names the webhook with its token; the privacy
    scan counts a URL's token in the environment as a secret (tests/privacy.py)."""
    with WebhookReceiver(SECRET) as rx:
        env(AXN_PUBLISH_TO=f"{rx.url}?token={TOKEN}", AXN_WEBHOOK_SECRET=SECRET)
        with caplog.at_level(logging.DEBUG):
            status, _, _ = post(
                {"PhoneNoA": "13900000001", "TtlSeconds": 600, "OutOrderId": "LL-2"}
            )
    assert status == 200 and len(rx.events) == 1
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("name", "template", "args", "shown"),
    [
        ("urllib3.connectionpool", '%s://%s:%s "%s %s %s" %s %s',
         ("https", "hooks.example.com", 443, "POST", f"/hooks/axn?token={TOKEN}", "HTTP/1.1", 200, 0),
         'https://hooks.example.com:443 "POST /hooks/axn?… HTTP/1.1" 200 0'),
        ("urllib3.connectionpool", "Retry: %s", (f"/hooks/axn?token={TOKEN}",),
         "Retry: /hooks/axn?…"),
        ("urllib3.connectionpool", "Retry: %s", (f"/hooks/axn?token=a'(b){TOKEN}",),
         "Retry: /hooks/axn?…"),  # requests sends ' ( ) as they are
        ("urllib3.poolmanager", "Redirecting %s -> %s",
         (f"https://user:{TOKEN}@a.example.com/x?token={TOKEN}", f"https://b.example.com/y?sig={TOKEN}"),
         "Redirecting https://a.example.com/x?… -> https://b.example.com/y?…"),
        ("urllib3.util.retry", "Incremented Retry for (url='%s'): %r",
         (f"/hooks/axn?token={TOKEN}", "Retry(total=2)"),
         "Incremented Retry for (url='/hooks/axn?… 'Retry(total=2)'"),
        ("urllib3.connection", "Failed to parse headers (url=%s): %s",
         (f"https://hooks.example.com:443/hooks/axn?token={TOKEN}", "bad header"),
         "Failed to parse headers (url=https://hooks.example.com:443/hooks/axn?… bad header"),
    ],
)  # fmt: skip
def test_every_urllib3_line_that_holds_a_url_loses_its_query_and_credentials(
    name, template, args, shown, caplog
):
    """Each of urllib3's log calls that write a URL, as urllib3 makes it."""
    with caplog.at_level(logging.DEBUG):
        logging.getLogger(name).warning(template, *args)
    [record] = [r for r in caplog.records if r.name == name]
    assert record.getMessage() == shown
    assert TOKEN not in caplog.text


def test_the_privacy_scan_counts_a_url_token_or_password_in_the_environment_as_a_secret(
    monkeypatch,
):
    from tests.privacy import PrivacyScan

    monkeypatch.setenv(
        "AXN_PUBLISH_TO",
        f"https://hooks.example.com/a?id=7&token={TOKEN},amqps://bus:pass-word-1@mq.example.com/",
    )
    scan = PrivacyScan()
    scan.note_invocation(None)
    for text in (f"GET /a?token={TOKEN}", "login bus:pass-word-1", "GET /a?id=7"):
        scan.emit(
            logging.LogRecord(
                "urllib3.connectionpool", logging.DEBUG, __file__, 1, text, None, None
            )
        )
    assert [p.split(":")[0] for p in scan.problems()] == [
        "log line of urllib3.connectionpool holds a secret"
    ] * 2
