"""Scripted faults, queued over the HTTP admin API."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable

import pytest
import requests

from tools.dypls_emulator import DEFAULT_POOL_KEY, Emulator, EmulatorAdmin, EmulatorAdminError
from tools.dypls_emulator.client import PreparedCall, Reply, SignedClient

BindFn = Callable[..., Reply]


def _send_with_requests(
    emulator: Emulator, call: PreparedCall, timeout: float = 5
) -> requests.Response:
    return requests.request(
        call.method,
        emulator.url + call.target(),
        headers=call.headers,
        data=call.body or None,
        timeout=timeout,
    )


def _bind_call(client: SignedClient, expiration: str, phone_a: str = "13900000001") -> PreparedCall:
    params = {"PoolKey": DEFAULT_POOL_KEY, "PhoneNoA": phone_a, "Expiration": expiration}
    return client.prepare_v3("BindAxnExtension", params)


def test_throttle_with_retry_after(admin: EmulatorAdmin, emulator: Emulator, bind: BindFn) -> None:
    admin.add_fault("throttle", retry_after=1.5)
    reply = bind()
    assert reply.status == 400
    assert reply.json()["Code"] == "Throttling.User"
    assert reply.json()["HostId"] == "dyplsapi.aliyuncs.com"
    assert reply.headers["x-acs-retry-after"] == "1500"
    assert emulator.bindings() == []
    assert bind().json()["Code"] == "OK"
    assert admin.faults() == []


def test_throttle_code_override_and_count(admin: EmulatorAdmin, bind: BindFn) -> None:
    admin.add_fault("throttle", count=2, code="Throttling.Api")
    codes = [bind(PhoneNoA=f"1390000000{i}").json()["Code"] for i in range(3)]
    assert codes == ["Throttling.Api", "Throttling.Api", "OK"]


def test_flow_limit(admin: EmulatorAdmin, emulator: Emulator, bind: BindFn) -> None:
    admin.add_fault("flow_limit")
    reply = bind()
    assert (reply.status, reply.json()["Code"]) == (200, "isv.FLOW_LIMIT")
    assert emulator.bindings() == []


@pytest.mark.parametrize(
    "code",
    [
        "isv.NO_AVAILABLE_NUMBER",
        "isv.OUT_OF_SERVICE",
        "isp.RAM_PERMISSION_DENY",
        "isv.ACCOUNT_ABNORMAL",
    ],
)
def test_business_code(admin: EmulatorAdmin, emulator: Emulator, bind: BindFn, code: str) -> None:
    admin.add_fault("business", code=code, message="scripted")
    reply = bind()
    assert reply.status == 200
    assert (reply.json()["Code"], reply.json()["Message"]) == (code, "scripted")
    assert emulator.bindings() == []


@pytest.mark.parametrize(
    ("status", "code"),
    [(403, "Forbidden.RAM"), (500, "InternalError"), (503, "ServiceUnavailable")],
)
def test_gateway(
    admin: EmulatorAdmin, emulator: Emulator, bind: BindFn, status: int, code: str
) -> None:
    admin.add_fault("gateway", status=status, code=code)
    reply = bind()
    assert (reply.status, reply.json()["Code"]) == (status, code)
    assert emulator.bindings() == []


@pytest.mark.parametrize("bind_first", [False, True])
def test_isp_error(
    admin: EmulatorAdmin, emulator: Emulator, bind: BindFn, bind_first: bool
) -> None:
    admin.add_fault("isp_error", bind=bind_first)
    reply = bind()
    assert (reply.status, reply.json()["Code"]) == (200, "isp.SYSTEM_ERROR")
    assert "SecretBindDTO" not in reply.json()
    assert len(emulator.bindings()) == (1 if bind_first else 0)
    assert emulator.requests()[-1]["binding_created"] is bind_first


def test_isp_error_code_override(admin: EmulatorAdmin, bind: BindFn) -> None:
    admin.add_fault("isp_error", code="isp.DAO_EXCEPTION")
    assert bind().json()["Code"] == "isp.DAO_EXCEPTION"


@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_http_5xx_with_binding(
    admin: EmulatorAdmin, emulator: Emulator, bind: BindFn, status: int, code: str
) -> None:
    admin.add_fault("http_5xx", status=status, bind=True)
    reply = bind()
    assert (reply.status, reply.json()["Code"]) == (status, code)
    [binding] = emulator.bindings()
    assert binding["status"] == "active"


def test_delay_causes_read_timeout_but_binds(
    admin: EmulatorAdmin, emulator: Emulator, expiration: str
) -> None:
    admin.add_fault("delay", seconds=0.6)
    client = SignedClient(emulator.url, timeout=0.2)
    with pytest.raises(TimeoutError):
        client.send(_bind_call(client, expiration))
    assert emulator.info()["in_flight"] == 1  # the late request is still being processed
    assert emulator.wait_idle(timeout=3)
    assert emulator.info()["in_flight"] == 0
    assert len(emulator.bindings()) == 1


def test_delayed_requests_run_concurrently(
    admin: EmulatorAdmin, emulator: Emulator, client: SignedClient, expiration: str
) -> None:
    # Each request is held for a while; served one at a time, never more than one would be in
    # flight. The delay only has to outlast the four requests' start.
    admin.add_fault("delay", count=4, seconds=1.0)
    calls = [_bind_call(client, expiration, f"1390000000{i}") for i in range(4)]
    codes: list[object] = []
    threads = [
        threading.Thread(target=lambda c=c: codes.append(client.send(c).json()["Code"]))
        for c in calls
    ]
    for thread in threads:
        thread.start()
    most = 0
    while any(thread.is_alive() for thread in threads) and most < 4:
        most = max(most, emulator.service.in_flight)
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    assert most == 4  # all four were being processed at once
    assert codes == ["OK"] * 4
    assert len({b["SecretNo"] + str(b["Extension"]) for b in emulator.bindings()}) == 4


def test_bind_then_drop(
    admin: EmulatorAdmin, emulator: Emulator, client: SignedClient, expiration: str
) -> None:
    admin.add_fault("bind_then_drop")
    with pytest.raises(requests.ConnectionError):
        _send_with_requests(emulator, _bind_call(client, expiration))
    [binding] = admin.bindings()
    assert binding["status"] == "active"
    entry = admin.requests()[-1]
    assert (entry["dropped"], entry["binding_created"], entry["http_status"]) == (True, True, None)


def test_drop_before(
    admin: EmulatorAdmin, emulator: Emulator, client: SignedClient, expiration: str
) -> None:
    admin.add_fault("drop_before")
    with pytest.raises(http.client.RemoteDisconnected):
        client.send(_bind_call(client, expiration))
    assert admin.bindings() == []
    assert client.send(_bind_call(client, expiration)).json()["Code"] == "OK"


@pytest.mark.parametrize(
    ("status", "body", "bind_first", "bindings"),
    [(200, "", True, 1), (202, '{"Code":"OK"}', True, 1), (200, "", False, 0)],
)
def test_raw_answers_exactly_what_it_is_given(
    admin: EmulatorAdmin,
    emulator: Emulator,
    bind: BindFn,
    status: int,
    body: str,
    bind_first: bool,
    bindings: int,
) -> None:
    admin.add_fault("raw", status=status, body=body, bind=bind_first)
    reply = bind()
    assert (reply.status, reply.body) == (status, body.encode())
    assert len(emulator.bindings()) == bindings


def test_drip_sends_the_answer_a_byte_at_a_time(
    admin: EmulatorAdmin, emulator: Emulator, client: SignedClient, expiration: str
) -> None:
    admin.add_fault("drip", interval=0.01)
    with socket.create_connection(("127.0.0.1", emulator.port)) as sock:
        call = _bind_call(client, expiration)
        head = [f"{call.method} {call.target()} HTTP/1.1", "Host: 127.0.0.1"]
        head += [f"{k}: {v}" for k, v in call.headers.items()]
        head.append(f"Content-Length: {len(call.body or b'')}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + (call.body or b""))
        reads = []
        data = b""
        while b"SubsId" not in data or not data.rstrip().endswith(b"}}"):
            chunk = sock.recv(65536)
            assert chunk
            reads.append(chunk)
            data += chunk
    assert len(reads) > 20  # the body came in many small pieces, not one write
    assert len(emulator.bindings()) == 1


def test_fault_action_filter(admin: EmulatorAdmin, client: SignedClient, bind: BindFn) -> None:
    admin.add_fault("business", action="QuerySubscriptionDetail", code="isv.SUBS_NOT_EXIST")
    dto = bind().json()["SecretBindDTO"]
    assert isinstance(dto, dict)
    params = {"PoolKey": DEFAULT_POOL_KEY, "SubsId": dto["SubsId"], "PhoneNoX": dto["SecretNo"]}
    assert client.v3("QuerySubscriptionDetail", params).json()["Code"] == "isv.SUBS_NOT_EXIST"
    assert client.v3("QuerySubscriptionDetail", params).json()["Code"] == "OK"


def test_fault_any_action(admin: EmulatorAdmin, client: SignedClient) -> None:
    admin.add_fault("gateway", action="*", status=503, code="ServiceUnavailable")
    params = {"PoolKey": DEFAULT_POOL_KEY, "SubsId": "1", "SecretNo": "17000000001"}
    assert client.v3("UnbindSubscription", params).status == 503


def test_fault_not_consumed_by_rejected_signature(
    admin: EmulatorAdmin, emulator: Emulator, bind: BindFn, expiration: str
) -> None:
    admin.add_fault("flow_limit")
    wrong = SignedClient(emulator.url, secret="wrong")
    assert wrong.send(_bind_call(wrong, expiration)).json()["Code"] == "SignatureDoesNotMatch"
    assert len(admin.faults()) == 1
    assert bind().json()["Code"] == "isv.FLOW_LIMIT"


def test_gateway_stage_fault_precedes_verification(
    admin: EmulatorAdmin, emulator: Emulator, expiration: str
) -> None:
    admin.add_fault("throttle", stage="gateway")
    wrong = SignedClient(emulator.url, secret="wrong")
    assert wrong.send(_bind_call(wrong, expiration)).json()["Code"] == "Throttling.User"
    assert admin.faults() == []


def test_fault_list_clear_and_validation(admin: EmulatorAdmin, bind: BindFn) -> None:
    admin.add_fault("throttle", count=3)
    admin.add_fault("delay", seconds=0.01)
    assert [f["kind"] for f in admin.faults()] == ["throttle", "delay"]
    admin.clear_faults()
    assert admin.faults() == []
    assert bind().json()["Code"] == "OK"
    for kind, options in [
        ("explode", {}),
        ("business", {}),
        ("delay", {"seconds": -1}),
        ("throttle", {"retry": 1}),
        ("isp_error", {"stage": "gateway"}),
    ]:
        with pytest.raises(EmulatorAdminError, match="400"):
            admin.add_fault(kind, **options)


def test_raw_admin_http(emulator: Emulator, bind: BindFn) -> None:
    url = emulator.url + "/_emulator/faults"
    batch = [{"kind": "throttle"}, {"kind": "flow_limit", "count": 2}]
    assert requests.post(url, json=batch, timeout=5).status_code == 200
    assert [f["kind"] for f in requests.get(url, timeout=5).json()["faults"]] == [
        "throttle",
        "flow_limit",
    ]
    assert requests.delete(url, timeout=5).json() == {"faults": []}
    assert requests.post(url, data=b"{not json", timeout=5).status_code == 400
    assert requests.get(emulator.url + "/_emulator/nothing", timeout=5).status_code == 404
    bind()
    assert requests.post(emulator.url + "/_emulator/reset", timeout=5).json() == {"reset": True}
    assert requests.get(emulator.url + "/_emulator/bindings", timeout=5).json() == {"bindings": []}
    assert requests.get(emulator.url + "/_emulator/requests", timeout=5).json() == {"requests": []}
    clock = requests.post(emulator.url + "/_emulator/clock", json={"offset_seconds": 60}, timeout=5)
    assert clock.json()["offset_seconds"] == 60


def test_reset_clears_nonces(admin: EmulatorAdmin, client: SignedClient, expiration: str) -> None:
    params = {"PoolKey": DEFAULT_POOL_KEY, "PhoneNoA": "13900000001", "Expiration": expiration}
    assert client.v3("BindAxnExtension", params, nonce="n-1").json()["Code"] == "OK"
    assert client.v3("BindAxnExtension", params, nonce="n-1").json()["Code"] == "SignatureNonceUsed"
    admin.reset()
    assert client.v3("BindAxnExtension", params, nonce="n-1").json()["Code"] == "OK"


def test_emulator_port_is_loopback(emulator: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=1):
        pass
    assert emulator.url == f"http://127.0.0.1:{emulator.port}"
