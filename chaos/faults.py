"""A TCP proxy that can be cut: the fault injected between the stack and PostgreSQL or RabbitMQ.

Every component of the chaos stack reaches PostgreSQL and RabbitMQ through a ``FaultProxy``, so
an outage is one call: ``cut()`` closes every live connection and refuses new ones (each is
accepted and closed at once, as a peer that is down but whose host answers); ``stall()`` is a
network partition instead: connections stay open but nothing goes through them, and new ones
hang before reaching the target; ``heal()`` lets everything through again (what a stall held
back is delivered then, as TCP would retransmit it). Same interface as
``tests/support/faultproxy.py`` (plus ``stall``); kept here so the harness depends on nothing
under ``tests/`` that another part is still writing.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

CHUNK = 64 * 1024


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._cut = False
        self._closed = False
        self._flowing = threading.Event()
        self._flowing.set()
        self._live: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Close every live connection and refuse new ones until ``heal()``."""
        with self._lock:
            self._cut = True
            live, self._live = self._live, set()
        for sock in live:
            _close(sock)
        self._flowing.set()  # what a stall held back finds its sockets closed

    def stall(self) -> None:
        """Hold every byte, both ways, and every new connection, until ``heal()``."""
        self._flowing.clear()

    def heal(self) -> None:
        with self._lock:
            self._cut = False
        self._flowing.set()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        self.cut()
        _close(self._listener)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if self._cut:
                _close(client)
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._flowing.wait()
        if self._cut:
            _close(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _close(client)  # the target itself is down: the client sees the same
            return
        upstream.settimeout(None)
        with self._lock:
            if self._cut:
                _close(client)
                _close(upstream)
                return
            self._live.update((client, upstream))
        threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
        self._pump(upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy ``source`` to ``sink`` until either ends; then close both."""
        try:
            while data := source.recv(CHUNK):
                self._flowing.wait()
                if self._cut:
                    break
                sink.sendall(data)
        except OSError:
            pass  # cut, or a peer went away: both ends are closed below
        with self._lock:
            self._live.difference_update((source, sink))
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected, or already shut
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
