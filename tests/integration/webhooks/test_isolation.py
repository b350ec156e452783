"""Webhook isolation: one deadline per attempt, the sweep's budget checked before each attempt,
and a slow endpoint holding only its own slots while other endpoints' deliveries go on.

The slow receiver is a real TCP server in a thread that reads the request and then answers one
byte every quarter of a second, far longer than the attempt's deadline (and never so slowly
that a per-read timeout would fire)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from filepipe import auth, runtime
from filepipe.notify.webhooks.delivery import enqueue, sweep
from tests.support.receiver import Receiver
from tests.support.webhooks import Conn, deliveries, file_event, message, register, send

pytestmark = pytest.mark.integration

TIMEOUT = 3.0
"""The attempts' deadline in these tests (``FILEPIPE_WEBHOOK_TIMEOUT``)."""
PROMPT = 1.0
"""What "promptly" means here: well under the slow endpoint's delay (``TIMEOUT``)."""


class Trickler:
    """Reads each request, then sends ``HTTP/1.1 200 OK`` and headers one byte per
    ``interval``, for ``lasting`` seconds at most; counts the connections open at once."""

    def __init__(self, interval: float = 0.25, lasting: float = 30.0) -> None:
        self.interval, self.lasting = interval, lasting
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.open = self.most_open = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/slow"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with self._lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        answer = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"." * 10_000
        ends = time.monotonic() + self.lasting
        try:
            with connection:
                connection.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                for byte in answer:
                    if time.monotonic() > ends or self._stop.wait(self.interval):
                        return
                    connection.sendall(bytes([byte]))
        except OSError:
            return  # the client hung up: what the deadline is for
        finally:
            with self._lock:
                self.open -= 1


@pytest.fixture
def env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("FILEPIPE_WEBHOOK_TIMEOUT", f"{TIMEOUT:g}")
    runtime.reset()
    return {**env, "FILEPIPE_WEBHOOK_TIMEOUT": f"{TIMEOUT:g}"}


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    server = Trickler()
    yield server
    server.close()


def other_tenant(conn: Conn) -> tuple[str, str]:
    name = f"wh-{uuid.uuid4().hex[:8]}"
    return name, auth.create_key(conn, name)


def test_a_trickling_receiver_is_cut_at_the_deadline(
    api: FlaskClient, notify: FlaskClient, conn: Conn, trickler: Trickler, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, trickler.url)
    event = file_event(conn, name)

    started = time.monotonic()
    send(notify, event)
    took = time.monotonic() - started

    [attempt] = deliveries(api, key, hook["id"])
    assert (attempt["status_code"], attempt["error"]) == (None, f"timed out after {TIMEOUT:g} s")
    assert TIMEOUT * 1000 <= attempt["duration_ms"] < (TIMEOUT + 1) * 1000
    assert took < TIMEOUT + 2
    assert message(conn, hook["id"], event["id"])["state"] == "pending"  # retried later


def test_a_slow_endpoint_does_not_hold_up_another_endpoint_of_the_same_event(
    api: FlaskClient,
    notify: FlaskClient,
    conn: Conn,
    trickler: Trickler,
    receiver: Receiver,
    tenant: tuple[str, str],
) -> None:
    name, key = tenant
    slow = register(api, key, trickler.url)
    register(api, key, receiver.url + "/fast")
    event = file_event(conn, name)
    enqueue(runtime.current().pool, event)  # as notify does first, so that the slow one is
    conn.execute(  # first in line (one at a time, it would hold the fast one up)
        "UPDATE webhook_messages SET next_attempt_at = now() - interval '1 second'"
        " WHERE endpoint_id = %s",
        (slow["id"],),
    )
    sending = threading.Thread(target=send, args=(notify, event))

    started = time.monotonic()
    sending.start()
    receiver.wait_for("/fast", timeout=TIMEOUT + 5)
    arrived = time.monotonic() - started
    sending.join(TIMEOUT + 5)

    assert arrived < PROMPT, f"the fast endpoint waited {arrived:.2f} s"
    assert receiver.requests("/fast")[0].headers["webhook-id"] == event["id"]


def test_a_sweep_delivers_to_other_tenants_while_a_slow_endpoint_holds_its_slots(
    api: FlaskClient, conn: Conn, trickler: Trickler, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    """Three due messages of a slow endpoint come first, then one of another tenant's endpoint.
    The slow endpoint gets its two slots (``webhook_endpoint_concurrency``), its third message
    is skipped, the other tenant's is delivered at once; and with a budget of 4 s and attempts
    of up to 3 s, nothing starts after the first second."""
    slow_name, slow_key = tenant
    fast_name, fast_key = other_tenant(conn)
    slow = register(api, slow_key, trickler.url)
    register(api, fast_key, receiver.url + "/fast")
    rt = runtime.current()
    slow_events = [file_event(conn, slow_name) for _ in range(3)]
    fast_event = file_event(conn, fast_name)
    for event in [*slow_events, fast_event]:  # queued, not attempted: the sweep's work
        enqueue(rt.pool, event)
    made: list[int] = []
    sweeping = threading.Thread(
        target=lambda: made.append(sweep(rt.pool, rt.settings, limit=100, budget=TIMEOUT + 1))
    )

    started = time.monotonic()
    sweeping.start()
    receiver.wait_for("/fast", timeout=TIMEOUT + 5)
    arrived = time.monotonic() - started
    sweeping.join(2 * TIMEOUT + 5)
    took = time.monotonic() - started

    assert arrived < PROMPT, f"the other tenant's delivery waited {arrived:.2f} s"
    assert receiver.requests("/fast")[0].headers["webhook-id"] == fast_event["id"]
    assert trickler.most_open == 2
    assert made and made[0] >= 3  # and any due retries other tests left
    assert TIMEOUT <= took <= TIMEOUT + 1
    states = [message(conn, slow["id"], e["id"]) for e in slow_events]
    assert sorted(m["attempts"] for m in states) == [0, 1, 1]
    attempts = deliveries(api, slow_key, slow["id"])
    assert [a["error"] for a in attempts] == [f"timed out after {TIMEOUT:g} s"] * 2


def test_a_sweep_whose_budget_is_shorter_than_an_attempt_starts_none(
    api: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    register(api, key, receiver.url + "/never")
    rt = runtime.current()
    enqueue(rt.pool, file_event(conn, name))

    assert sweep(rt.pool, rt.settings, limit=100, budget=TIMEOUT / 2) == 0
    assert receiver.all_requests() == []
