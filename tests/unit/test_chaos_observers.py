"""The chaos suite's webhook receivers and answer recording, with real HTTP on loopback."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import httpx

from chaos.observers import RecordingTransport, webhook_receiver


def deliver(url: str, webhook_id: str, *, age: float = 0.0, timeout: float = 5.0) -> int:
    sent = datetime.now(UTC) - timedelta(seconds=age)
    body = json.dumps({"id": "e", "time": sent.isoformat().replace("+00:00", "Z")})
    answer = httpx.post(url, content=body, headers={"webhook-id": webhook_id}, timeout=timeout)
    return answer.status_code


def test_a_webhook_id_again_after_a_2xx_is_a_duplicate() -> None:
    with webhook_receiver() as receiver:
        assert deliver(receiver.url, "msg-1") == 204
        assert deliver(receiver.url, "msg-2", age=30) == 204
        assert receiver.duplicates == 0
        assert deliver(receiver.url, "msg-1") == 204
        assert receiver.duplicates == 1
        ages = [d.age for d in receiver.deliveries]
        assert ages[1] is not None and 29 < ages[1] < 40


def trickled(url: str, webhook_id: str) -> bytes:
    """POST to a trickling receiver, read until its answer has trickled a byte, hang up."""
    target = httpx.URL(url)
    request = (
        f"POST {target.path} HTTP/1.1\r\nHost: {target.host}\r\nwebhook-id: {webhook_id}\r\n"
        "Content-Length: 2\r\n\r\n{}"
    ).encode()
    with socket.create_connection((target.host, target.port or 80), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while not received.endswith(b"z"):
            piece = sock.recv(1)
            assert piece, f"the receiver hung up after {received!r}"
            received += piece
    return received


def test_a_trickling_receiver_never_finishes_its_answer_and_a_retry_is_no_duplicate() -> None:
    with webhook_receiver(trickle=True) as receiver:
        first = trickled(receiver.url, "msg-1")
        assert first.startswith(b"HTTP/1.1 204") and b"\r\n\r\n" not in first
        trickled(receiver.url, "msg-1")
        assert receiver.duplicates == 0  # never answered: the sender may well try again
        receiver.heal()
        assert deliver(receiver.url, "msg-2") == 204
        assert [d.webhook_id for d in receiver.deliveries] == ["msg-1", "msg-1", "msg-2"]


def test_the_recording_transport_classes_every_answer() -> None:
    with webhook_receiver() as receiver:
        transport = RecordingTransport()
        with httpx.Client(transport=transport) as client:
            client.post(receiver.url, content=b"{}", headers={"webhook-id": "x"})
            client.get(receiver.url)  # http.server: 501 for an unsupported method
        assert transport.classes == ["ok", "5xx"]
