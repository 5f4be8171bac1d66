"""The AMQP target (ApsaraMQ for RabbitMQ) against the real RabbitMQ on 127.0.0.1:5672.

Each test declares an exchange and a queue of its own (unique names, deleted afterwards), reads
back what was published with a separate pika connection, and checks the properties. A loopback
TCP proxy in front of the broker supplies the faults a broker cannot be asked for: a connection
cut under the target, a connection that stops answering, a server that accepts and stays
silent. Without the broker these tests skip with how to start it, except under ``CI=true``,
where they fail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn
from urllib.parse import quote

import pika
import pytest

from axn_bind.errors import ConfigurationError, PublishError
from axn_bind.publish import amqp, open_target
from axn_bind.publish import event as ev
from axn_bind.publish.amqp import AmqpTarget, _close_reason, parse_url
from tests.conftest import post
from tests.privacy import MOBILE as PHONE  # a mobile number, never digits inside a hash
from tests.publish.conftest import Sleeps

HOST, PORT = "127.0.0.1", 5672
GUEST = "amqp://guest:guest@127.0.0.1"
KEY = "axn.binding"
# Room for a loaded machine (parallel test workers) above a deadline the target enforces.
SCHEDULING_SLACK = 1.0
# The shape of an ApsaraMQ static pair: Base64, with '/', '+' and '=' in it.
STATIC_USER = "MjphbXFwLWNuLXRlc3QwMDAwMDE6TFRBSTV0VGVzdEtleUlk"
STATIC_PASSWORD = "QjVGRkQzNzY0MjE3/Rjk+MTY5OTg4MzU2MjAwMA=="
EVENT = ev.created(
    source=ev.source_of("axn-bind", "cn-hangzhou"),
    when=1_900_000_000.0,
    pool_key="FC100000000000001",
    binding={"SecretNo": "17000000001", "Extension": "100", "SubsId": "1000000800000001"},
    request={"PhoneNoA": "13912345678", "OutOrderId": "DD-1", "Expiration": "2030-01-01 12:00:00"},
    upstream_request_id="R-1",
)
OTHER = ev.created(
    source=ev.source_of("axn-bind", "cn-hangzhou"),
    when=1_900_000_001.0,
    pool_key="FC100000000000001",
    binding={"SecretNo": "17000000002", "Extension": "101", "SubsId": "1000000800000002"},
    request={"PhoneNoA": "13912345679", "OutOrderId": "DD-2"},
    upstream_request_id="R-2",
)


def amqp_unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (under CI=true) because the test RabbitMQ cannot be used."""
    message = (
        f"RabbitMQ is not reachable at {HOST}:{PORT} as guest/guest ({reason}). Start it with: "
        "rabbitmq-server -detached  (Debian/Ubuntu: apt-get install rabbitmq-server; it listens "
        "on 127.0.0.1:5672 with guest/guest)."
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} CI=true: the RabbitMQ tests must run, not skip.", pytrace=False)
    pytest.skip(message)


class Broker:
    """A plain pika connection of the tests' own: declares, reads back, deletes."""

    def __init__(self) -> None:
        params = pika.ConnectionParameters(
            HOST,
            PORT,
            credentials=pika.PlainCredentials("guest", "guest"),
            socket_timeout=1,
            stack_timeout=2,
            connection_attempts=1,
        )
        try:
            self.conn = pika.BlockingConnection(params)
        except (pika.exceptions.AMQPError, OSError) as exc:
            amqp_unavailable(type(exc).__name__)
        self.channel = self.conn.channel()
        self.exchanges: list[str] = []
        self.queues: list[str] = []

    def exchange(self, *, bind: str | None = KEY, **queue_args: Any) -> tuple[str, str]:
        """A new direct exchange and (unless ``bind`` is None) a queue bound to it on ``bind``."""
        name = f"axn-test-{uuid.uuid4().hex[:12]}"
        self.channel.exchange_declare(name, "direct")
        self.exchanges.append(name)
        if bind is None:
            return name, ""
        # x-expires: should a run die before its clean-up, the broker drops the queue anyway.
        self.channel.queue_declare(name, arguments={"x-expires": 600_000, **queue_args})
        self.queues.append(name)
        self.channel.queue_bind(name, name, bind)
        return name, name

    def messages(self, queue: str) -> list[tuple[Any, Any, bytes]]:
        got = []
        while True:
            method, properties, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((method, properties, body))

    def close(self) -> None:
        for kind, names in (("queue", self.queues), ("exchange", self.exchanges)):
            for name in names:
                if self.channel.is_closed:  # a failed declaration closes the channel
                    self.channel = self.conn.channel()
                with contextlib.suppress(pika.exceptions.AMQPChannelError):
                    getattr(self.channel, f"{kind}_delete")(name)
        self.conn.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def targets() -> Iterator[list[AmqpTarget]]:
    """Targets made in a test are closed after it."""
    made: list[AmqpTarget] = []
    yield made
    for target in made:
        target.close()


def url(exchange: str, *, key: str = KEY, port: int = PORT, auth: str = "guest:guest") -> str:
    return f"amqp://{auth}@127.0.0.1:{port}/%2F?exchange={exchange}&routing_key={key}"


class Proxy:
    """A loopback TCP proxy to the broker that can cut, stall, block or never answer
    connections, and (given a server TLS context) terminate TLS in front of the plain broker."""

    def __init__(self, *, silent: bool = False, tls: ssl.SSLContext | None = None) -> None:
        self.silent = silent
        self.tls = tls
        self.accepted = 0
        self.handshake_failures = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._pairs: list[dict[str, Any]] = []
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.silent:
                self._held.append(client)  # accepted, never answered
                continue
            if self.tls is not None:
                try:
                    client.settimeout(2)
                    client = self.tls.wrap_socket(client, server_side=True)
                    client.settimeout(None)
                except (OSError, ssl.SSLError):
                    self.handshake_failures += 1
                    client.close()
                    continue
            upstream = socket.create_connection((HOST, PORT))
            pair = {"client": client, "upstream": upstream, "stalled": False, "held": False}
            self._pairs.append(pair)
            thread = threading.Thread(target=self._pump, args=(pair,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, pair: dict[str, Any]) -> None:
        client, upstream = pair["client"], pair["upstream"]
        try:
            while not self._stop.is_set():
                if pair["held"]:  # a blocked broker reads nothing more from the connection
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select([client, upstream], [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    while isinstance(sock, ssl.SSLSocket) and sock.pending():
                        data += sock.recv(sock.pending())
                    if not data:
                        return
                    if sock is client:
                        upstream.sendall(data)
                    elif not pair["stalled"]:
                        client.sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        """Drop every open connection at once, as a broker restart or a network fault would."""
        for pair in self._pairs:
            for sock in (pair["client"], pair["upstream"]):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stall(self) -> None:
        """The broker's answers on the connections open now no longer arrive (new ones do)."""
        for pair in self._pairs:
            pair["stalled"] = True

    def block(self) -> None:
        """Tell the (idle) connections open now that the broker blocks publishers, as RabbitMQ
        does under a memory or disk alarm, and from then on hold what they send (a blocked
        broker stops reading from them: a publish there is never confirmed)."""
        frame = pika.frame.Method(0, pika.spec.Connection.Blocked(reason="low on memory"))
        for pair in self._pairs:
            pair["held"] = True
            pair["client"].sendall(frame.marshal())

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self._sock.close()
        for sock in self._held:
            sock.close()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    p = Proxy()
    yield p
    p.close()


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "name", "vhost"),
    [
        (
            "amqp://u:p@127.0.0.1/%2F?exchange=orders&routing_key=axn.binding",
            "amqp://127.0.0.1:5672/%2F?exchange=orders&routing_key=axn.binding",
            "/",
        ),
        (
            "amqp://u:p@127.0.0.1:5672?exchange=orders",
            "amqp://127.0.0.1:5672/%2F?exchange=orders&routing_key=",
            "/",
        ),
        (
            "amqps://u:p@amqp-cn-test.cn-hangzhou.example.com/order-flow?exchange=axn&routing_key=k",
            "amqps://amqp-cn-test.cn-hangzhou.example.com:5671/order-flow?exchange=axn&routing_key=k",
            "order-flow",
        ),
        (
            "AMQPS://u:p@Broker.Example.com:6671/a%2Fb?routing_key=k%20x&exchange=e%2Fx",
            "amqps://broker.example.com:6671/a%2Fb?exchange=e%2Fx&routing_key=k%20x",
            "a/b",
        ),
        (
            "amqp://u:p@[::1]:5672/v?exchange=&routing_key=orders-queue",
            "amqp://[::1]:5672/v?exchange=&routing_key=orders-queue",
            "v",
        ),
    ],
)
def test_the_name_keeps_host_vhost_and_route_and_drops_the_credentials(given, name, vhost):
    target = AmqpTarget(given)
    assert target.name == name
    assert target.address.vhost == vhost
    assert "u:p" not in target.name


def test_an_apsaramq_static_pair_is_given_percent_encoded_and_read_back_exactly():
    given = (
        f"amqps://{quote(STATIC_USER, safe='')}:{quote(STATIC_PASSWORD, safe='')}"
        "@amqp-cn-test.cn-hangzhou.example.com/order-flow?exchange=axn&routing_key=created"
    )
    address = parse_url(given)
    assert (address.username, address.password) == (STATIC_USER, STATIC_PASSWORD)
    assert (address.port, address.vhost, address.exchange) == (5671, "order-flow", "axn")
    target = open_target(given)
    assert isinstance(target, AmqpTarget)
    assert STATIC_PASSWORD not in target.name and quote(STATIC_PASSWORD, safe="") not in target.name
    assert STATIC_PASSWORD not in repr(address)


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("amqp://127.0.0.1/%2F?exchange=x", "username and password"),
        ("amqp://guest@127.0.0.1/%2F?exchange=x", "username and password"),
        ("amqp://u:S3cret-PW@127.0.0.1/%2F", "must name its exchange"),
        ("amqp://u:S3cret-PW@127.0.0.1/%2F?exchange=", "needs routing_key"),
        ("amqp://u:S3cret-PW@127.0.0.1/a/b?exchange=x", "%2F"),
        ("amqp://u:S3cret-PW@127.0.0.1/v?exchange=x&exchange=y", "twice"),
        ("amqp://u:S3cret-PW@127.0.0.1/v?exchange=x&routingkey=k", "'routingkey'"),
        ("amqp://u:S3cret-PW@127.0.0.1/v?exchange=x#frag", "fragment"),
        ("amqp://u:S3cret-PW@127.0.0.1:99999/v?exchange=x", "cannot be read"),
        ("amqp://u:S3cret/PW@127.0.0.1/v?exchange=x", "percent-encode"),
        ("amqp://u:S3cret-PW@127.0.0.1/v?exchange=" + "x" * 256, "255 bytes"),
        ("amqp://u:S3cret-PW@/v?exchange=x", "must be amqp"),
    ],
)
def test_a_bad_url_says_what_to_fix_and_never_shows_the_password(given, says):
    with pytest.raises(ConfigurationError) as raised:
        AmqpTarget(given)
    message = raised.value.message
    assert message.startswith("AXN_PUBLISH_TO:")
    assert says in message
    assert "S3cret" not in message and "PW" not in message


@pytest.mark.parametrize(
    ("code", "text", "retryable"),
    [
        (530, "denied for too many requests, ReqId:5FB4C999314635F952FCBFF6", True),  # ApsaraMQ
        (530, "NOT_ALLOWED - vhost order-flow not found", False),
        (403, "ACCESS_REFUSED - write access to exchange 'x' refused", False),
        (404, "NOT_FOUND - no exchange 'x' in vhost '/'", False),
        (406, "PRECONDITION_FAILED - message size 200000000 is larger than max size", False),
        (320, "CONNECTION_FORCED - broker forced connection closure", True),
        (541, "INTERNAL_ERROR", True),
    ],
)
def test_which_broker_closes_are_retried(code, text, retryable):
    reason, retried = _close_reason(code, text)
    assert retried is retryable and str(code) in reason


# --- delivery to the real broker -------------------------------------------------------------


def test_an_event_arrives_with_its_id_type_and_content_type_persistent(broker, targets):
    exchange, queue = broker.exchange()
    target = open_target(url(exchange))
    targets.append(target)
    target.send(EVENT, timeout=5)
    [(method, props, body)] = broker.messages(queue)
    assert body.decode() == EVENT.text  # the body is the event's JSON text, exactly
    assert json.loads(body)["type"] == "axn.binding.created"
    assert (method.exchange, method.routing_key) == (exchange, KEY)
    assert props.message_id == EVENT.id
    assert props.type == EVENT.type == "axn.binding.created"
    assert props.content_type == "application/cloudevents+json"
    assert props.delivery_mode == 2  # persistent


def test_one_connection_serves_every_send(broker, proxy, targets):
    exchange, queue = broker.exchange()
    target = AmqpTarget(url(exchange, port=proxy.port))
    targets.append(target)
    for event in (EVENT, OTHER, EVENT):
        target.send(event, timeout=5)
    assert proxy.accepted == 1
    ids = [props.message_id for _, props, _ in broker.messages(queue)]
    assert ids == [EVENT.id, OTHER.id, EVENT.id]


def test_sends_from_several_threads_share_the_one_connection_in_turn(broker, proxy, targets):
    exchange, queue = broker.exchange()
    target = AmqpTarget(url(exchange, port=proxy.port))
    targets.append(target)
    events = [EVENT, OTHER] * 4
    errors: list[BaseException] = []

    def send(event: ev.Event) -> None:
        try:
            target.send(event, timeout=5)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(e,)) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == [] and proxy.accepted == 1
    ids = sorted(props.message_id for _, props, _ in broker.messages(queue))
    assert ids == sorted(e.id for e in events)


def test_the_default_exchange_routes_to_the_queue_named_by_the_routing_key(broker, targets):
    _, queue = broker.exchange()
    target = open_target(f"{GUEST}/%2F?exchange=&routing_key={queue}")
    targets.append(target)
    target.send(EVENT, timeout=5)
    [(method, props, _)] = broker.messages(queue)
    assert (method.exchange, method.routing_key, props.message_id) == ("", queue, EVENT.id)


def test_a_connection_cut_between_sends_is_opened_again(broker, proxy, targets):
    exchange, queue = broker.exchange()
    sleeps = Sleeps()
    target = AmqpTarget(url(exchange, port=proxy.port), sleep=sleeps)
    targets.append(target)
    target.send(EVENT, timeout=5)
    proxy.cut()
    target.send(OTHER, timeout=5)
    assert proxy.accepted == 2
    assert [props.message_id for _, props, _ in broker.messages(queue)] == [EVENT.id, OTHER.id]


def test_a_stalled_connection_gives_way_to_a_fresh_one_under_the_same_message_id(
    broker, proxy, targets
):
    exchange, queue = broker.exchange()
    sleeps = Sleeps()
    target = AmqpTarget(url(exchange, port=proxy.port), sleep=sleeps)
    targets.append(target)
    target.send(EVENT, timeout=5)
    proxy.stall()  # the broker gets the next message but its confirm never comes back
    started = time.monotonic()
    target.send(OTHER, timeout=3)
    # Delivered, so the stalled attempt gave up within its share of the 3 s (had it waited out
    # the whole timeout, no time would have been left for the fresh connection). The send's
    # timeout is a deadline the target enforces: checked here, with room for a loaded machine.
    assert time.monotonic() - started < 3 + SCHEDULING_SLACK
    assert proxy.accepted == 2 and len(sleeps.waits) == 1
    ids = [props.message_id for _, props, _ in broker.messages(queue)]
    # The unconfirmed copy may have arrived too: consumers de-duplicate on message_id.
    assert ids[0] == EVENT.id and set(ids[1:]) == {OTHER.id} and len(ids) in (2, 3)


def test_an_unroutable_event_is_a_failure_and_not_retried(broker, targets):
    exchange, _ = broker.exchange(bind=None)  # no queue is bound: the broker would drop it
    sleeps = Sleeps()
    target = AmqpTarget(url(exchange), sleep=sleeps)
    targets.append(target)
    with pytest.raises(PublishError) as raised:
        target.send(EVENT, timeout=5)
    assert not raised.value.retryable and "unroutable" in raised.value.message
    assert "312" in raised.value.message and sleeps.waits == []
    bound, queue = broker.exchange()  # the same target is usable afterwards
    retarget = AmqpTarget(url(bound))
    targets.append(retarget)
    retarget.send(EVENT, timeout=5)
    assert len(broker.messages(queue)) == 1


def test_a_missing_exchange_is_not_retried(broker, targets):
    sleeps = Sleeps()
    target = AmqpTarget(url(f"axn-test-missing-{uuid.uuid4().hex[:8]}"), sleep=sleeps)
    targets.append(target)
    with pytest.raises(PublishError) as raised:
        target.send(EVENT, timeout=5)
    assert not raised.value.retryable and "404" in raised.value.message
    assert sleeps.waits == []


def test_a_missing_vhost_is_not_retried(broker, targets):
    sleeps = Sleeps()
    target = AmqpTarget(f"{GUEST}/axn-no-such-vhost?exchange=x&routing_key=k", sleep=sleeps)
    targets.append(target)
    with pytest.raises(PublishError) as raised:
        target.send(EVENT, timeout=5)
    assert not raised.value.retryable and "axn-no-such-vhost" in raised.value.message
    assert sleeps.waits == []


def test_a_wrong_password_is_not_retried_and_never_shown(broker, targets, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pika")  # even pika's own debug lines
    sleeps = Sleeps()
    given = url("x", auth=f"guest:{quote(STATIC_PASSWORD, safe='')}")
    target = AmqpTarget(given, sleep=sleeps)
    targets.append(target)
    with pytest.raises(PublishError) as raised:
        target.send(EVENT, timeout=5)
    error = raised.value
    assert not error.retryable and "refused the login" in error.message
    assert sleeps.waits == []
    for text in (error.message, str(error), error.target, target.name, caplog.text):
        assert STATIC_PASSWORD not in text
        assert quote(STATIC_PASSWORD, safe="") not in text
        assert "QjVGRkQz" not in text  # no part of it either


def test_a_refused_connection_is_retried_with_backoff_then_reported_retryable(targets):
    sleeps = Sleeps()
    target = AmqpTarget(url("x", port=free_port()), attempts=3, backoff=0.2, sleep=sleeps)
    targets.append(target)
    with pytest.raises(PublishError) as raised:
        target.send(EVENT, timeout=5)
    assert raised.value.retryable
    assert "3 attempt(s)" in raised.value.message and "refused" in raised.value.message
    assert len(sleeps.waits) == 2
    assert 0.1 <= sleeps.waits[0] <= 0.2 and 0.2 <= sleeps.waits[1] <= 0.4  # doubling, jittered


def test_a_broker_that_never_answers_is_given_up_within_the_timeout(targets):
    silent = Proxy(silent=True)
    try:
        target = AmqpTarget(url("x", port=silent.port), sleep=Sleeps())
        targets.append(target)
        started = time.monotonic()
        with pytest.raises(PublishError) as raised:
            target.send(EVENT, timeout=1.5)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    # Given up, retryably, within the time: by our deadline ("timed out …") or by pika's own
    # connection timeout a moment before it ("the connection was lost …"), whichever comes first.
    # The timeout is a deadline the target enforces (without it, the wait would be pika's 5 s
    # connection timeout, CONNECT_TIMEOUT): the one wall-clock check, with room for a loaded
    # machine.
    message = raised.value.message
    assert raised.value.retryable
    assert "timed out" in message or "the connection was lost" in message, message
    assert elapsed < 1.5 + SCHEDULING_SLACK < amqp.CONNECT_TIMEOUT
    assert silent.accepted >= 1


def test_a_nacked_message_is_retried_then_reported_retryable(broker, targets):
    # A full queue that rejects publishes makes the broker nack every message routed to it.
    exchange, queue = broker.exchange(**{"x-max-length": 0, "x-overflow": "reject-publish"})
    sleeps = Sleeps()
    target = AmqpTarget(url(exchange), attempts=2, sleep=sleeps)
    targets.append(target)
    with pytest.raises(PublishError) as raised:
        target.send(EVENT, timeout=5)
    assert raised.value.retryable and "nacked" in raised.value.message
    assert "2 attempt(s)" in raised.value.message and len(sleeps.waits) == 1
    assert broker.messages(queue) == []


def test_a_connection_idle_too_long_is_replaced_before_use(broker, proxy, targets, monkeypatch):
    exchange, queue = broker.exchange()
    target = AmqpTarget(url(exchange, port=proxy.port), sleep=Sleeps())
    targets.append(target)
    target.send(EVENT, timeout=5)
    monkeypatch.setattr(amqp, "IDLE_LIMIT", 0.0)  # as if the instance had been frozen a while
    target.send(OTHER, timeout=5)
    assert proxy.accepted == 2 and len(broker.messages(queue)) == 2


def test_a_connection_the_broker_blocks_is_left_for_a_fresh_one(broker, proxy, targets):
    exchange, queue = broker.exchange()
    sleeps = Sleeps()
    target = AmqpTarget(url(exchange, port=proxy.port), sleep=sleeps)
    targets.append(target)
    target.send(EVENT, timeout=5)
    proxy.block()  # sent while the connection is idle; it crosses the loopback at once
    time.sleep(0.2)  # margin for a loaded machine: the notice must be in before the send
    target.send(OTHER, timeout=5)
    # The blocked connection was left before anything was published on it: no attempt failed
    # (one on the blocked connection would have waited for a confirm that never comes, then
    # retried), a fresh connection carried the event, and the broker got it once.
    assert sleeps.waits == [] and proxy.accepted == 2
    assert [props.message_id for _, props, _ in broker.messages(queue)] == [EVENT.id, OTHER.id]


@pytest.fixture
def certificate(tmp_path) -> tuple[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1 (openssl), and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"openssl could not make a test certificate ({type(exc).__name__})")
    return str(cert), str(key)


def tls_proxy(cert: str, key: str) -> Proxy:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return Proxy(tls=context)


def test_amqps_delivers_over_tls_to_a_certificate_it_trusts(
    broker, targets, certificate, monkeypatch
):
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # the test CA joins the trusted ones
    exchange, queue = broker.exchange()
    proxy = tls_proxy(cert, key)
    try:
        target = open_target(
            f"amqps://guest:guest@localhost:{proxy.port}/%2F?exchange={exchange}&routing_key={KEY}"
        )
        targets.append(target)
        target.send(EVENT, timeout=5)
        target.close()
    finally:
        proxy.close()
    assert proxy.handshake_failures == 0
    [(_, props, body)] = broker.messages(queue)
    assert props.message_id == EVENT.id and body.decode() == EVENT.text


def test_amqps_refuses_a_certificate_it_cannot_verify_and_does_not_retry(targets, certificate):
    cert, key = certificate
    proxy = tls_proxy(cert, key)
    sleeps = Sleeps()
    try:
        target = AmqpTarget(
            f"amqps://guest:guest@localhost:{proxy.port}/%2F?exchange=x&routing_key=k",
            sleep=sleeps,
        )
        targets.append(target)
        with pytest.raises(PublishError) as raised:
            target.send(EVENT, timeout=5)
    finally:
        proxy.close()
    assert not raised.value.retryable and "certificate" in raised.value.message
    assert sleeps.waits == [] and proxy.accepted == 1


# --- end to end through the handler ----------------------------------------------------------


def test_an_http_binding_is_announced_once_on_the_queue(env, emulator, broker):
    from axn_bind import app

    exchange, queue = broker.exchange()
    env(AXN_PUBLISH_TO=url(exchange), AXN_PUBLISH_TIMEOUT_MS="3000")
    try:
        order = {"PhoneNoA": "13900000171", "TtlSeconds": 3600, "OutOrderId": "AMQP-1"}
        status, _, body = post(order)
        assert status == 200 and "Announced" not in body
        status, headers, again = post(order)  # the client retries: replayed, not announced again
        assert headers["Idempotent-Replayed"] == "true" and again == body
    finally:
        service = app._service
        for target in service.announcer.targets if service and service.announcer else ():
            target.close()
    [(_, props, raw)] = broker.messages(queue)
    event = json.loads(raw)
    assert event["type"] == props.type == "axn.binding.created"
    assert props.message_id == event["id"]
    assert event["subject"] == "AMQP-1"
    assert event["data"]["SubsId"] == body["SecretBindDTO"]["SubsId"]
    assert event["data"]["PhoneNoA"] == "139****0171"
    for number in PHONE.findall(raw.decode()):
        assert number.startswith("17"), f"a customer's number was published: {number}"
    assert len(emulator.bindings()) == 1
