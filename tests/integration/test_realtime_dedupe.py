"""Each event id reaches a WebSocket client once, however often notify receives it.

Real notify functions (two replicas) and real gateways (two) against the test database and the
real Redis; events are recorded in the outbox as the pipeline records them and POSTed to notify
as the broker does (binary mode). The guard's own rules run against a Redis server of the test's
own, where nothing else subscribes.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager

import pytest
import redis
import requests
from cloudevents.conversion import to_binary, to_json
from cloudevents.http import CloudEvent
from websockets.sync.client import ClientConnection, connect

from filepipe import auth
from filepipe.notify import realtime
from tests.support.processes import running, stop
from tests.support.waiting import free_port, port_open, wait_until
from tests.support.webhooks import Conn, file_event

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def stack(service_env: dict[str, str]) -> Iterator[dict[str, list[str]]]:
    """Two notify replicas (``notify`` URLs) and two gateways (``gateways`` WebSocket URLs)."""
    env = {**service_env, "FILEPIPE_REDIS_URL": REDIS_URL}
    notify = ["-m", "filepipe.server", "--target", "notify", "--source", "functions/notify/main.py"]
    gateway = ["-m", "filepipe.notify.gateway", "--host", "127.0.0.1"]
    ports = {"notify": [free_port(), free_port()], "gateways": [free_port(), free_port()]}
    with ExitStack() as processes:
        for kind, args in (("notify", notify), ("gateways", gateway)):
            for port in ports[kind]:
                processes.enter_context(running([*args, "--port", str(port)], port=port, env=env))
        yield {
            "notify": [f"http://127.0.0.1:{port}/" for port in ports["notify"]],
            "gateways": [f"ws://127.0.0.1:{port}/ws" for port in ports["gateways"]],
        }


@pytest.fixture
def tenant(conn: Conn) -> tuple[str, str]:
    name = f"rt-{uuid.uuid4().hex[:8]}"
    return name, auth.create_key(conn, name)


def deliver(notify_url: str, event: CloudEvent) -> None:
    """POST ``event`` to a notify replica as the broker does; it must acknowledge it."""
    headers, body = to_binary(event)
    answer = requests.post(notify_url, headers=headers, data=body, timeout=30)
    assert answer.status_code == 200, answer.text


def deliver_all(notify_url: str, events: list[CloudEvent]) -> None:
    for event in events:
        deliver(notify_url, event)


def ids_until(client: ClientConnection, marker: CloudEvent) -> list[str]:
    """The ids of the events the client receives, up to and including ``marker``."""
    ids: list[str] = []
    while not ids or ids[-1] != marker["id"]:
        ids.append(json.loads(client.recv(timeout=10))["id"])
    return ids


def listen(gateway_url: str, key: str) -> ClientConnection:
    return connect(f"{gateway_url}?token={key}")


def test_an_event_delivered_twice_reaches_the_client_once(
    stack: dict[str, list[str]], conn: Conn, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    uploaded = file_event(conn, name, "file.uploaded")
    processed = file_event(conn, name, "file.processed")
    marker = file_event(conn, name, "file.deleted")
    with listen(stack["gateways"][0], key) as client:
        for event in (uploaded, uploaded, processed, processed, uploaded, marker):
            deliver(stack["notify"][0], event)

        received = ids_until(client, marker)

    assert received == [uploaded["id"], processed["id"], marker["id"]]


def test_two_notify_replicas_send_an_event_once(
    stack: dict[str, list[str]], conn: Conn, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    events = [file_event(conn, name) for _ in range(5)]
    marker = file_event(conn, name, "file.deleted")
    with listen(stack["gateways"][0], key) as client:
        replicas = [
            threading.Thread(target=deliver_all, args=(url, events)) for url in stack["notify"]
        ]
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.join(30)
        deliver(stack["notify"][1], marker)

        received = ids_until(client, marker)

    assert sorted(received[:-1]) == sorted(e["id"] for e in events)
    assert len(received) == len(events) + 1


def test_a_client_that_reconnects_to_another_gateway_does_not_get_an_event_again(
    stack: dict[str, list[str]], conn: Conn, tenant: tuple[str, str]
) -> None:
    """The second gateway never saw the event: only the Redis guard can stop the re-publish."""
    name, key = tenant
    event, marker = file_event(conn, name), file_event(conn, name, "file.deleted")
    with listen(stack["gateways"][0], key) as first:
        deliver(stack["notify"][0], event)
        assert json.loads(first.recv(timeout=10))["id"] == event["id"]
    with listen(stack["gateways"][1], key) as again:
        deliver(stack["notify"][1], event)  # e.g. the outbox event published again
        deliver(stack["notify"][1], marker)

        assert ids_until(again, marker) == [marker["id"]]


def test_a_gateway_drops_a_repeat_the_redis_guard_let_through(
    stack: dict[str, list[str]], tenant: tuple[str, str]
) -> None:
    """Published twice straight onto the channel (as if the guard's marker had expired)."""
    name, key = tenant
    event = CloudEvent(
        {"type": "file.processed", "source": "/filepipe/process", "id": str(uuid.uuid4())},
        {"tenant": name, "file_id": str(uuid.uuid4()), "status": "PROCESSED", "version": 4},
    )
    marker = CloudEvent(
        {"type": "file.deleted", "source": "/filepipe/query", "id": str(uuid.uuid4())},
        {"tenant": name, "file_id": str(uuid.uuid4()), "status": "DELETED", "version": 5},
    )
    with redis.Redis.from_url(REDIS_URL) as client, listen(stack["gateways"][0], key) as ws:
        for sent in (event, event, marker):
            client.publish(realtime.channel(name), to_json(sent))

        assert ids_until(ws, marker) == [event["id"], marker["id"]]


# -- the guard's rules, on a Redis of the test's own -------------------------------------------


@contextmanager
def own_redis() -> Iterator[redis.Redis]:
    """A throw-away redis-server on a free port (no persistence), so no other subscriber hears
    what the test publishes."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: port_open(port), what="redis-server to listen")
        with redis.Redis(port=port, socket_timeout=5) as client:
            yield client
    finally:
        stop(server)


def sample_event() -> CloudEvent:
    return CloudEvent(
        {"type": "file.processed", "source": "/filepipe/process", "id": str(uuid.uuid4())},
        {"tenant": "acme", "file_id": str(uuid.uuid4()), "status": "PROCESSED", "version": 4},
    )


def test_an_event_nobody_heard_is_not_marked_and_goes_out_on_its_duplicate() -> None:
    event = sample_event()
    with own_redis() as client, closing(client.pubsub()) as listener:  # type: ignore[no-untyped-call]
        assert realtime.publish(client, event, ttl=60) is True  # no gateway subscribed yet
        assert client.exists(realtime.seen_key(event["id"])) == 0

        listener.psubscribe(realtime.CHANNEL_PATTERN)
        wait_until(lambda: listener.get_message(timeout=0.1), what="the subscription")
        assert realtime.publish(client, event, ttl=60) is True
        assert realtime.publish(client, event, ttl=60) is False

        heard = wait_until(lambda: listener.get_message(timeout=0.1), what="the event")
        assert json.loads(heard["data"])["id"] == event["id"]
        assert listener.get_message(timeout=0.5) is None, "the duplicate went out"
        assert 0 < client.pttl(realtime.seen_key(event["id"])) <= 60_000


def test_the_marker_expires_after_the_ttl() -> None:
    event = sample_event()
    with own_redis() as client, closing(client.pubsub()) as listener:  # type: ignore[no-untyped-call]
        listener.psubscribe(realtime.CHANNEL_PATTERN)
        wait_until(lambda: listener.get_message(timeout=0.1), what="the subscription")
        assert realtime.publish(client, event, ttl=0.2) is True
        wait_until(
            lambda: client.exists(realtime.seen_key(event["id"])) == 0, what="the marker to expire"
        )
        assert realtime.publish(client, event, ttl=0.2) is True
