"""The WebSocket gateway as a real process, against the test database and the real Redis.

One gateway serves the whole module (start-up is the expensive part); every test uses tenants
of its own, since Redis is shared with parallel test runs.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest
import redis
import requests
from cloudevents.http import CloudEvent
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from filepipe import auth
from filepipe.notify import realtime
from tests.support.processes import running
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.integration

QUEUE_SIZE = 4
MAX_PER_TENANT = 3
ALLOWED_ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def gateway(service_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **service_env,
        "FILEPIPE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "FILEPIPE_GATEWAY_QUEUE_SIZE": str(QUEUE_SIZE),
        "FILEPIPE_GATEWAY_MAX_CONNECTIONS_PER_TENANT": str(MAX_PER_TENANT),
        "FILEPIPE_ALLOWED_ORIGINS": f"{ALLOWED_ORIGIN},http://localhost:*",
    }
    args = ["-m", "filepipe.notify.gateway", "--host", "127.0.0.1", "--port", str(port)]
    with running(args, port=port, env=env) as proc:
        yield f"127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    client.close()


@pytest.fixture
def tenant_key(conn: psycopg.Connection[dict[str, Any]]) -> Any:
    """Make a fresh tenant and its API key: ``tenant, key = tenant_key()``."""

    def make() -> tuple[str, str]:
        tenant = f"gw-{uuid.uuid4().hex[:12]}"
        return tenant, auth.create_key(conn, tenant)

    return make


def event(tenant: str, file_id: uuid.UUID | None = None, **extra: Any) -> CloudEvent:
    file_id = file_id or uuid.uuid4()
    return CloudEvent(
        {
            "type": "file.processed",
            "source": "/filepipe/process",
            "subject": str(file_id),
            "id": str(uuid.uuid4()),
        },
        {"file_id": str(file_id), "tenant": tenant, "status": "PROCESSED", "version": 4, **extra},
    )


def receive(ws: ClientConnection) -> dict[str, Any]:
    message = ws.recv(timeout=10)
    assert isinstance(message, str), "events are text frames"
    return dict(json.loads(message))


def health(address: str) -> dict[str, Any]:
    return dict(requests.get(f"http://{address}/healthz", timeout=5).json())


def test_a_client_receives_its_tenants_events(
    gateway: tuple[str, Any], tenant_key: Any, redis_client: redis.Redis
) -> None:
    tenant, key = tenant_key()
    with connect(f"ws://{gateway[0]}/ws?token={key}") as ws:
        sent = event(tenant)
        realtime.publish(redis_client, sent)
        got = receive(ws)
    assert got["specversion"] == "1.0"
    assert got["id"] == sent["id"]
    assert got["type"] == "file.processed"
    assert got["data"]["tenant"] == tenant
    assert got["data"]["status"] == "PROCESSED"


def test_another_tenants_events_are_not_delivered(
    gateway: tuple[str, Any], tenant_key: Any, redis_client: redis.Redis
) -> None:
    mine, my_key = tenant_key()
    theirs, their_key = tenant_key()
    with (
        connect(f"ws://{gateway[0]}/ws?token={my_key}") as me,
        connect(f"ws://{gateway[0]}/ws?token={their_key}") as them,
    ):
        secret, marker = event(theirs), event(mine)
        realtime.publish(redis_client, secret)
        realtime.publish(redis_client, marker)
        assert receive(me)["id"] == marker["id"]  # the first thing I get is my own event
        assert receive(them)["id"] == secret["id"]


def test_file_id_filter_and_bearer_header(
    gateway: tuple[str, Any], tenant_key: Any, redis_client: redis.Redis
) -> None:
    tenant, key = tenant_key()
    wanted = uuid.uuid4()
    headers = {"Authorization": f"Bearer {key}"}
    with connect(f"ws://{gateway[0]}/ws?file_id={wanted}", additional_headers=headers) as ws:
        realtime.publish(redis_client, event(tenant))
        realtime.publish(redis_client, event(tenant, wanted, status="PROCESSED"))
        got = receive(ws)
    assert got["data"]["file_id"] == str(wanted)


@pytest.mark.parametrize(
    ("target", "headers", "status"),
    [
        ("/ws", {}, 401),
        ("/ws?token=fpk_" + "x" * 43, {}, 401),
        ("/ws?token=nonsense", {}, 401),
        ("/ws", {"Authorization": "Basic Zm9vOmJhcg=="}, 401),
        ("/ws?token={key}&file_id=not-a-uuid", {}, 400),
        ("/elsewhere?token={key}", {}, 404),
    ],
)
def test_refused_handshakes(
    gateway: tuple[str, Any],
    tenant_key: Any,
    target: str,
    headers: dict[str, str],
    status: int,
) -> None:
    _, key = tenant_key()
    uri = f"ws://{gateway[0]}{target.format(key=key)}"
    with pytest.raises(InvalidStatus) as refused:
        connect(uri, additional_headers=headers)
    response = refused.value.response
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(response.body)
    assert problem["status"] == status
    assert key not in response.body.decode()


def test_a_slow_client_is_closed_without_stalling_a_fast_one(
    gateway: tuple[str, Any], tenant_key: Any, redis_client: redis.Redis
) -> None:
    tenant, key = tenant_key()
    address = gateway[0]
    host, port = address.split(":")
    # The slow client never reads: a tiny receive buffer and a one-frame client queue make
    # its backlog reach the gateway's per-client queue after a few large events.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    padding = "x" * 64 * 1024
    with (
        connect(f"ws://{address}/ws?token={key}", sock=sock, max_queue=1) as slow,
        connect(f"ws://{address}/ws?token={key}") as fast,
    ):
        assert health(address)["connections"] >= 2
        evicted = False
        for n in range(400):
            sent = event(tenant, padding=padding)
            realtime.publish(redis_client, sent)
            assert receive(fast)["id"] == sent["id"]
            if n % 10 == 9 and health(address)["connections"] == 1:
                evicted = True
                break
        assert evicted, "the slow client was never disconnected"
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                slow.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        marker = event(tenant)
        realtime.publish(redis_client, marker)
        assert receive(fast)["id"] == marker["id"]


def raw_websocket(address: str, key: str) -> socket.socket:
    """A WebSocket opened by hand on a plain socket, so the test can drop it without a trace."""
    host, port = address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        (
            f"GET /ws?token={key} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        assert chunk, "the gateway closed the connection during the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101 "), response
    return sock


def test_a_vanished_client_is_cleaned_up(
    gateway: tuple[str, Any], tenant_key: Any, redis_client: redis.Redis
) -> None:
    tenant, key = tenant_key()
    address = gateway[0]
    with connect(f"ws://{address}/ws?token={key}") as survivor:
        gone = raw_websocket(address, key)
        assert health(address)["connections"] == 2
        # Reset the TCP connection: no close frame, no FIN.
        gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        gone.close()
        wait_until(lambda: health(address)["connections"] == 1, what="the gateway to notice")
        for _ in range(3):
            sent = event(tenant)
            realtime.publish(redis_client, sent)
            assert receive(survivor)["id"] == sent["id"]


def test_events_flow_again_after_the_redis_connection_drops(
    gateway: tuple[str, subprocess.Popen[bytes]], tenant_key: Any, redis_client: redis.Redis
) -> None:
    tenant, key = tenant_key()
    address, proc = gateway
    name = f"filepipe-gateway-{proc.pid}"

    def subscribed_id() -> int | None:
        for client in redis_client.client_list(_type="pubsub"):
            if client.get("name") == name and client.get("psub") == "1":
                return int(client["id"])
        return None

    before = wait_until(subscribed_id, what="the gateway's subscription")
    with connect(f"ws://{address}/ws?token={key}") as ws:
        redis_client.client_kill_filter(_id=str(before))
        wait_until(
            lambda: (now := subscribed_id()) is not None and now != before,
            what="the gateway to re-subscribe",
        )

        # redis-py may itself reconnect (and re-subscribe) once before the gateway's own
        # reconnection replaces that connection: what is published on it meanwhile is lost,
        # as pub/sub promises. What must hold is that events flow again.
        def delivered() -> bool:
            sent = event(tenant)
            realtime.publish(redis_client, sent)
            try:
                while (got := json.loads(ws.recv(timeout=0.5)))["id"] != sent["id"]:
                    assert got["data"]["tenant"] == tenant
            except TimeoutError:
                return False
            return True

        wait_until(delivered, what="events to flow again")
        sent = event(tenant)
        realtime.publish(redis_client, sent)
        assert receive(ws)["id"] == sent["id"]


def refusal(uri: str, **options: Any) -> tuple[int, dict[str, Any]]:
    """The status and problem+json body of a refused handshake."""
    with pytest.raises(InvalidStatus) as refused:
        connect(uri, **options)
    response = refused.value.response
    assert response.headers["Content-Type"] == "application/problem+json"
    return response.status_code, dict(json.loads(response.body))


def test_a_tenant_holds_at_most_its_cap_of_connections(
    gateway: tuple[str, Any], tenant_key: Any, redis_client: redis.Redis
) -> None:
    tenant, key = tenant_key()
    _, other_key = tenant_key()
    uri = f"ws://{gateway[0]}/ws?token={key}"
    with ExitStack() as stack:
        held = [stack.enter_context(connect(uri)) for _ in range(MAX_PER_TENANT)]
        status, problem = refusal(uri)
        assert (status, problem["status"]) == (429, 429)
        assert "close one" in problem["detail"]
        with connect(f"ws://{gateway[0]}/ws?token={other_key}"):
            pass  # another tenant is not held back
        held.pop().close()
        wait_until(lambda: _connects(uri), what="a freed place to be given again")
        sent = event(tenant)
        realtime.publish(redis_client, sent)
        assert all(receive(ws)["id"] == sent["id"] for ws in held)


def _connects(uri: str) -> bool:
    try:
        with connect(uri):
            return True
    except InvalidStatus as exc:
        assert exc.response.status_code == 429
        return False


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (ALLOWED_ORIGIN, 101),
        ("HTTPS://App.Example.COM", 101),
        ("http://localhost:8080", 101),
        ("http://localhost:5173", 101),
        (None, 101),
        ("https://evil.example.com", 403),
        ("https://app.example.com.evil.example", 403),
        ("http://app.example.com", 403),
        ("http://127.0.0.1:8080", 403),
        ("null", 403),
    ],
)
def test_browsers_may_connect_only_from_allowed_origins(
    gateway: tuple[str, Any], tenant_key: Any, origin: str | None, status: int
) -> None:
    _, key = tenant_key()
    uri = f"ws://{gateway[0]}/ws?token={key}"
    options: dict[str, Any] = {"origin": origin} if origin else {}
    if status == 101:
        with connect(uri, **options) as ws:
            assert ws.response is not None and ws.response.status_code == 101
        return
    got, problem = refusal(uri, **options)
    assert (got, problem["status"], problem["title"]) == (403, 403, "Forbidden")
    assert key not in json.dumps(problem)


def test_an_origin_is_checked_before_the_key(gateway: tuple[str, Any]) -> None:
    status, _ = refusal(f"ws://{gateway[0]}/ws", origin="https://evil.example.com")
    assert status == 403


def test_healthz(gateway: tuple[str, Any]) -> None:
    body = health(gateway[0])
    assert body["status"] == "ok"
    assert body["redis"] == "connected"


def test_shuts_down_on_sigterm(service_env: dict[str, str], tenant_key: Any) -> None:
    _, key = tenant_key()
    port = free_port()
    args = ["-m", "filepipe.notify.gateway", "--host", "127.0.0.1", "--port", str(port)]
    with (
        running(args, port=port, env=service_env) as proc,
        connect(f"ws://127.0.0.1:{port}/ws?token={key}") as ws,
    ):
        proc.terminate()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert proc.wait(10) == 0
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
