"""Every URL setting is read once, the way the library that connects reads it, or refused.

``http://100.100.100.200\\@127.0.0.1:9/`` names 127.0.0.1 to urllib.parse and 100.100.100.200
(Alibaba Cloud's metadata service) to urllib3, which requests connects with. These tests give
every URL setting and every kind of target the spellings on which parsers part ways, check that
each is refused naming the setting and never quoting the secret in it, that the URLs people
really use still work, and, with real listeners on two loopback addresses, that nothing connects
to a host the check did not name.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit

import pytest
from urllib3.util import parse_url

from axn_bind.config import Settings
from axn_bind.errors import ConfigurationError
from axn_bind.idempotency import open_store
from axn_bind.publish import open_target
from axn_bind.publish.amqp import AmqpTarget
from axn_bind.publish.webhook import WebhookTarget
from axn_bind.urls import is_loopback, split
from tests.conftest import post
from tests.publish.conftest import sample_event
from tests.rawserver import http_answer, read_request
from tests.redisproc import MEMORY_ONLY
from tools.dypls_emulator import Emulator
from tools.receivers.webhook import WebhookReceiver

SECRET = "Hunter2-url-secret"  # a password or token inside a URL: never in a message
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
EVENT = sample_event()
REGION = {"FC_REGION": "cn-hangzhou", "FC_ACCOUNT_ID": "1234567890123456"}

# The part between scheme:// and the path, spelled so that parsers disagree, or could: each
# names 127.0.0.1 (or localhost) to one reading and, to another, some other host.
HOSTILE = {
    "backslash-at": "100.100.100.200:9\\@127.0.0.1:9",
    "backslash-at-with-password": f"u:{SECRET}\\@100.100.100.200:9\\@127.0.0.1:9",
    "tab-inside": "127.0.0.1\t.evil.example:9",
    "newline-inside": "127.0.0.1\n.evil.example:9",
    "carriage-return-inside": "127.0.0.1\r\n.evil.example:9",
    "space-inside": "127.0.0.1 .evil.example:9",
    "del-inside": "127.0.0.1\x7f.evil.example:9",
    "percent-2e-in-host": "127%2e0%2e0%2e1:9",
    "percent-40-in-host": "evil.example%40127.0.0.1:9",
    "two-at": f"u:{SECRET}@evil.example@127.0.0.1:9",
    "at-after-the-path-starts": "127.0.0.1:9/x@100.100.100.200",
    "at-in-the-query": "127.0.0.1:9?x@100.100.100.200",
    "at-in-the-fragment": "127.0.0.1:9#@100.100.100.200",
    "unicode-host": "ｌocalhost:9",
    "idn-host": "bücher.evil.example:9",
    "fullwidth-dots": "127．0．0．1:9",
    "ideographic-dots": "127。0。0。1:9",
    "fullwidth-port": "127.0.0.1:９",
    "ipv6-zone": "[::1%25lo]:9",
    "ipv6-trailing-text": "[::1]evil.example:9",
    "ipv6-unclosed": "[::1:9",
    "ipv6-not-an-address": "[v1.evil]:9",
    "userinfo-colon-and-at": f"user:{SECRET}:x@y@127.0.0.1:9",
    "userinfo-slash": f"user:{SECRET[:6]}/{SECRET[6:]}@127.0.0.1:9",
    "port-zero": "127.0.0.1:0",
}


def _webhook(scheme: str) -> Callable[[str], object]:
    return lambda a: open_target(
        f"{scheme}://{a}/hooks?token={SECRET}", webhook_secret=WEBHOOK_SECRET
    )


def _endpoint_option(target: str, *, encoded: bool) -> Callable[[str], object]:
    def opened(a: str) -> object:
        value = f"http://{a}"
        option = quote(value, safe="") if encoded else value
        return open_target(f"{target}?endpoint={option}")

    return opened


# setting or kind -> (what the refusal starts with, how the URL is opened)
OPENERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "DYPLS_ENDPOINT": (
        "DYPLS_ENDPOINT",
        lambda a: Settings.from_env({"DYPLS_ENDPOINT": f"http://{a}"}),
    ),
    "AXN_IDEMPOTENCY_URL": ("AXN_IDEMPOTENCY_URL", lambda a: open_store(f"redis://{a}/0")),
    "webhook-http": ("AXN_PUBLISH_TO:", _webhook("http")),
    "webhook-https": ("AXN_PUBLISH_TO:", _webhook("https")),
    "webhook-direct": (
        "AXN_PUBLISH_TO:",
        lambda a: WebhookTarget(f"http://{a}/hooks?token={SECRET}", WEBHOOK_SECRET),
    ),
    "amqp": ("AXN_PUBLISH_TO:", lambda a: open_target(f"amqp://{a}/order-flow?exchange=x")),
    "amqps": ("AXN_PUBLISH_TO:", lambda a: open_target(f"amqps://{a}/order-flow?exchange=x")),
    "file": ("AXN_PUBLISH_TO:", lambda a: open_target(f"file://{a}/tmp/axn-events.jsonl")),
    "eventbridge-host": ("AXN_PUBLISH_TO:", lambda a: open_target(f"eventbridge://{a}")),
    "mns-host": ("AXN_PUBLISH_TO:", lambda a: open_target(f"mns://{a}/orders")),
    "fc-host": ("AXN_PUBLISH_TO:", lambda a: open_target(f"fc://{a}")),
    "fc2-host": ("AXN_PUBLISH_TO:", lambda a: open_target(f"fc2://{a}/f")),
    "eventbridge-endpoint": (
        "AXN_PUBLISH_TO:",
        _endpoint_option("eventbridge://orders", encoded=False),
    ),
    "eventbridge-endpoint-encoded": (
        "AXN_PUBLISH_TO:",
        _endpoint_option("eventbridge://orders", encoded=True),
    ),
    "mns-endpoint": ("AXN_PUBLISH_TO:", _endpoint_option("mns://queue/orders", encoded=False)),
    "mns-endpoint-encoded": (
        "AXN_PUBLISH_TO:",
        _endpoint_option("mns://queue/orders", encoded=True),
    ),
    "fc-endpoint": ("AXN_PUBLISH_TO:", _endpoint_option("fc://notify", encoded=False)),
    "fc-endpoint-encoded": ("AXN_PUBLISH_TO:", _endpoint_option("fc://notify", encoded=True)),
    "fc2-endpoint": ("AXN_PUBLISH_TO:", _endpoint_option("fc2://svc/notify", encoded=False)),
    "fc2-endpoint-encoded": (
        "AXN_PUBLISH_TO:",
        _endpoint_option("fc2://svc/notify", encoded=True),
    ),
}


# Written unencoded into ?endpoint=, "127%2e0%2e0%2e1" reaches the option as "127.0.0.1": the
# query's own encoding, decoded once, and then a plain loopback host (encoded, it is refused).
CASES = [
    (spelling, opener)
    for spelling in HOSTILE
    for opener in OPENERS
    if not (spelling == "percent-2e-in-host" and opener.endswith("-endpoint"))
]


@pytest.mark.parametrize(("spelling", "opener"), CASES)
def test_every_hostile_spelling_is_refused_by_every_url_setting(spelling, opener, monkeypatch):
    for name, value in REGION.items():  # so that no target stops at a missing region first
        monkeypatch.setenv(name, value)
    authority = HOSTILE[spelling]
    starts, open_url = OPENERS[opener]
    with pytest.raises(ConfigurationError) as raised:
        open_url(authority)
    message = raised.value.message
    assert message.startswith(starts), message
    if opener.endswith("-encoded"):  # past the target URL's check, the option's own
        assert "?endpoint=" in message, message
    # Nothing of the secret, nor the host the check would not have named, nor the value.
    for part in (SECRET, SECRET[:6], SECRET[6:], "evil", "100.100.100.200", authority):
        assert part not in message, (part, message)


def _ipv6_listener() -> tuple[socket.socket, list[bytes]]:
    """One HTTP answer (204) on [::1], recording the request it got."""
    server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            got.append(read_request(conn))
            conn.sendall(http_answer(b"", "204 No Content", close=True))

    threading.Thread(target=serve, daemon=True).start()
    return server, got


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        ("https://dyplsapi.aliyuncs.com", "https://dyplsapi.aliyuncs.com"),
        ("https://dyplsapi.aliyuncs.com/", "https://dyplsapi.aliyuncs.com"),
        ("https://dyplsapi-vpc.cn-hangzhou.aliyuncs.com:443", "https://dyplsapi-vpc.cn-hangzhou.aliyuncs.com:443"),
        ("http://127.0.0.1:18021", "http://127.0.0.1:18021"),
        ("HTTP://LocalHost:18021/", "http://localhost:18021"),
        ("http://[::1]:18021", "http://[::1]:18021"),
        ("http://[0:0:0:0:0:0:0:1]:18021", "http://[0:0:0:0:0:0:0:1]:18021"),
    ],
)  # fmt: skip
def test_legitimate_dyplsapi_endpoints_are_kept_as_read(given, endpoint):
    assert Settings.from_env({"DYPLS_ENDPOINT": given}).endpoint == endpoint


def test_a_webhook_with_a_token_and_credentials_is_sent_to_the_url_it_was_checked_as():
    with WebhookReceiver(WEBHOOK_SECRET) as rx:
        given = rx.url.replace("http://", "http://user:p%40ss@") + f"?token={SECRET}"
        target = open_target(given, webhook_secret=WEBHOOK_SECRET)
        # rebuilt from its checked parts: the credentials travel as Basic authorization
        assert target.url == rx.url + f"?token={SECRET}"
        assert target.name == rx.url  # no credentials, no query
        target.send(EVENT, timeout=5)
    assert [d["verified"] for d in rx.deliveries] == [True]
    [headers] = rx.headers
    assert headers["authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()


def test_a_webhook_with_a_query_and_no_path_is_sent_to_its_host():
    with WebhookReceiver(WEBHOOK_SECRET) as rx:
        origin = rx.url.removesuffix("/hooks/axn")
        target = open_target(f"{origin}?token={SECRET}", webhook_secret=WEBHOOK_SECRET)
        target.send(EVENT, timeout=5)
    assert [(d["verified"], d["path"]) for d in rx.deliveries] == [(True, f"/?token={SECRET}")]


def test_a_webhook_on_the_ipv6_loopback_is_delivered_there():
    server, got = _ipv6_listener()
    with server:
        port = server.getsockname()[1]
        target = open_target(f"http://[::1]:{port}/hooks", webhook_secret=WEBHOOK_SECRET)
        assert target.name == f"http://[::1]:{port}/hooks"
        target.send(EVENT, timeout=5)
    [request] = got
    assert request.startswith(b"POST /hooks HTTP/1.1\r\n")
    assert f"host: [::1]:{port}".encode() in request.lower()


def test_a_redis_password_with_percent_encoded_characters_logs_in(redis_processes):
    password = f"{SECRET}@:/?#%"  # every character a URL needs encoded
    server = redis_processes.start("--requirepass", password, *MEMORY_ONLY)
    store = open_store(f"redis://:{quote(password, safe='')}@127.0.0.1:{server.port}/0")
    try:
        store.ping()  # type: ignore[attr-defined]
    finally:
        store.close()


def test_an_amqp_url_with_a_vhost_and_an_encoded_password_is_read_whole():
    target = open_target(
        f"amqps://{quote('2:amqp-cn-x:LTAI', safe='')}:{quote(SECRET + '/+=', safe='')}"
        "@amqp-cn-x.cn-hangzhou.aliyuncs.com/order-flow?exchange=axn&routing_key=created"
    )
    assert isinstance(target, AmqpTarget)
    address = target.address
    assert (address.host, address.port, address.vhost) == (
        "amqp-cn-x.cn-hangzhou.aliyuncs.com", 5671, "order-flow",
    )  # fmt: skip
    assert (address.username, address.password) == ("2:amqp-cn-x:LTAI", SECRET + "/+=")
    assert SECRET not in target.name


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("eventbridge://orders?endpoint=http://127.0.0.1:9", "http://127.0.0.1:9/openapi/putEvents"),
        ("eventbridge://orders?endpoint=http://[::1]:9", "http://[::1]:9/openapi/putEvents"),
        ("mns://queue/orders?endpoint=https://1234.mns.cn-hangzhou-internal.aliyuncs.com",
         "https://1234.mns.cn-hangzhou-internal.aliyuncs.com/queues/orders/messages"),
        ("fc://notify?endpoint=http://localhost:9", "http://localhost:9/2023-03-30/functions/notify/invocations"),
        ("fc://notify", "https://1234567890123456.cn-hangzhou.fc.aliyuncs.com/2023-03-30/functions/notify/invocations"),
    ],
)  # fmt: skip
def test_legitimate_endpoints_of_signed_targets_are_kept_as_read(given, url, monkeypatch):
    for name, value in REGION.items():
        monkeypatch.setenv(name, value)
    assert open_target(given).url == url


def test_legitimate_idempotency_urls_still_open():
    store = open_store(
        f"rediss://:{quote('acct:' + SECRET, safe='')}@r-bp1.redis.rds.aliyuncs.com:6380/0"
        "?ssl_ca_certs=/code/certs/ApsaraDB-CA-Chain.pem"
    )
    assert store.where == "r-bp1.redis.rds.aliyuncs.com:6380"  # type: ignore[attr-defined]
    kwargs = store._client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
    assert kwargs["password"] == "acct:" + SECRET
    assert open_store("memory://").__class__.__name__ == "MemoryStore"


ACCEPTED = [
    "https://hooks.example.com/axn?token=t0k3n&x=%40",
    "https://user:p%40ss@hooks.example.com:8443/a/b",
    "http://[::1]:9/x",
    "redis://:p%2Fss%40word@r-bp1.redis.rds.aliyuncs.com:6379/3",
    "amqps://u%3D:p%2F%2B@amqp.example.com:5671/%2F?exchange=x",
    "fc2://svc/fn?qualifier=LATEST&endpoint=http://127.0.0.1:9",
    "file:///tmp/axn%20events.jsonl",
]


@pytest.mark.parametrize("given", ACCEPTED)
def test_what_split_accepts_both_parsers_read_as_one_place_and_so_does_its_rebuilt_text(given):
    url = split(given, "AXN_PUBLISH_TO")
    for text in (given, url.text()):
        theirs, ours = parse_url(text), urlsplit(text)
        assert (theirs.host or "").strip("[]").lower() == url.host == (ours.hostname or "")
        assert theirs.port == url.port == ours.port


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.9.8.7", True),
     ("::1", True), ("[::1]", True), ("0:0:0:0:0:0:0:1", True),
     ("localhost.", False), ("localhost.example.com", False), ("0x7f000001", False),
     ("2130706433", False), ("127.1", False), ("::ffff:127.0.0.1", False), ("100.100.100.200", False)],
)  # fmt: skip
def test_loopback_is_localhost_or_a_loopback_ip_literal(host, loopback):
    assert is_loopback(host) is loopback


def test_the_settings_repr_never_names_a_host_the_check_would_not():
    settings = Settings.from_env(
        {
            "AXN_PUBLISH_TO": "http://100.100.100.200:9\\@127.0.0.1:9/hooks, https://hooks.example.com/x"
        }
    )
    shown = repr(settings)
    assert "127.0.0.1" not in shown and "100.100.100.200" not in shown
    assert "https://hooks.example.com" in shown


# --- real connections: two listeners on one port, at two loopback addresses -------------------


@contextmanager
def two_receivers() -> Iterator[tuple[WebhookReceiver, WebhookReceiver]]:
    """A webhook receiver on 127.0.0.1:P and another on 127.0.0.2:P (Linux routes all of 127/8
    to the loopback interface)."""
    for _ in range(20):
        named = WebhookReceiver(WEBHOOK_SECRET)
        port = named.server.server_address[1]
        try:
            other = WebhookReceiver(WEBHOOK_SECRET, host="127.0.0.2", port=port)
        except OSError:  # the port is taken on 127.0.0.2: try another
            named.server.server_close()
            continue
        with named, other:
            yield named, other
        return
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2")


def test_a_webhook_never_connects_to_a_host_its_check_did_not_name():
    with two_receivers() as (named, other):
        port = named.server.server_address[1]
        url = f"http://127.0.0.2:{port}\\@127.0.0.1:{port}/hooks/axn"
        try:
            target = open_target(url, webhook_secret=WEBHOOK_SECRET)
        except ConfigurationError as error:
            refusal = error.message
        else:  # accepted: then it must go exactly where its name says
            refusal = None
            target.send(EVENT, timeout=5)
            assert not other.deliveries, (
                f"the event went to 127.0.0.2, while the target is named {target.name}"
            )
    assert refusal is not None and refusal.startswith("AXN_PUBLISH_TO:"), refusal
    assert "backslash" in refusal and "127.0.0.2" not in refusal
    assert not named.deliveries and not other.deliveries


def test_dyplsapi_is_never_called_on_a_host_its_check_did_not_name(env, emulator):
    port = emulator.port
    with Emulator(host="127.0.0.2", port=port) as other:
        env(DYPLS_ENDPOINT=f"http://127.0.0.2:{port}\\@127.0.0.1:{port}")
        status, _, body = post({"PhoneNoA": "13900000000", "TtlSeconds": 600})
        reached = other.requests()
    assert not reached, "the signed request went to 127.0.0.2, which the check never saw"
    # requests' adapter reads this origin with urllib.parse (127.0.0.1), urllib3 reads it as
    # 127.0.0.2: neither is called, the setting is refused.
    assert not emulator.requests(), "an endpoint two parsers read as two hosts was called"
    assert status == 500 and "DYPLS_ENDPOINT" in body["Message"], body
    assert "127.0.0.2" not in body["Message"]


def test_a_read_url_never_shows_its_password_or_token():
    url = split(f"https://user:{SECRET}@hooks.example.com/x/{SECRET}?token={SECRET}", "X")
    assert repr(url) == "Url(https://hooks.example.com)"
    assert SECRET not in str(url) and SECRET not in url.origin
