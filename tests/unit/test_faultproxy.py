"""The TCP fault proxy of the tests and the chaos suite, against a real echo server on loopback."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.faultproxy import FaultProxy, behind


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def talk(port: int, message: bytes = b"ping") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(message)
        return sock.recv(1024)


def test_forwards_until_cut_then_refuses_and_forwards_again_once_healed(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        assert talk(proxy.port) == b"ping"
        proxy.cut()
        assert proxy.is_cut
        assert talk(proxy.port) == b""  # accepted and closed at once: the peer is down
        proxy.heal()
        assert talk(proxy.port, b"again") == b"again"


def test_cut_closes_live_connections(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        with sock:
            sock.sendall(b"hello")
            assert sock.recv(1024) == b"hello"
            proxy.cut()
            try:
                ended = sock.recv(1024) == b""
            except ConnectionResetError:
                ended = True
            assert ended


def test_close_stops_listening(echo: int) -> None:
    proxy = FaultProxy("127.0.0.1", echo)
    proxy.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_a_stall_holds_bytes_and_new_connections_until_healed(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        live = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        with live:
            live.sendall(b"one")
            assert live.recv(1024) == b"one"
            proxy.stall()
            live.sendall(b"two")
            live.settimeout(0.5)
            with pytest.raises(TimeoutError):
                live.recv(1024)  # held, not lost
            proxy.heal()
            live.settimeout(5)
            assert live.recv(1024) == b"two"
        proxy.stall()
        late = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        with late:
            late.sendall(b"three")
            late.settimeout(0.5)
            with pytest.raises(TimeoutError):
                late.recv(1024)
            proxy.heal()
            late.settimeout(5)
            assert late.recv(1024) == b"three"


def test_a_throttled_proxy_answers_no_faster_than_its_rate(echo: int) -> None:
    message = b"x" * 40_000
    with (
        FaultProxy("127.0.0.1", echo, bytes_per_second=100_000) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock,
    ):
        started = time.monotonic()
        sock.sendall(message)
        echoed = b""
        while len(echoed) < len(message):
            echoed += sock.recv(65536)
        took = time.monotonic() - started
    assert echoed == message
    assert took >= 0.3  # 40 kB at 100 kB/s: 0.4 s, less the pause after the last chunk


def test_behind_points_a_url_at_the_proxy_keeping_its_credentials(echo: int) -> None:
    with FaultProxy("127.0.0.1", echo) as proxy:
        url = behind("postgresql://user:secret@db.example:5432/files?sslmode=disable", proxy)
    assert url == f"postgresql://user:secret@127.0.0.1:{proxy.port}/files?sslmode=disable"
