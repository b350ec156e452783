"""A TCP proxy in front of a real service that tests and the chaos harness can cut, stall, slow
and heal, to take the service away and bring it back without touching it (the services are
shared with other sessions).

``cut()`` closes every live connection and refuses new ones (each is accepted and closed at
once, as a peer that is down but whose host answers); ``stall()`` is a network partition
instead: connections stay open but nothing goes through them, and new ones hang before reaching
the target; ``heal()`` lets everything through again (what a stall held back is delivered then,
as TCP would retransmit it). Connections dropped by ``cut()`` stay dropped: a client must notice
and reconnect. With ``bytes_per_second`` the server-to-client direction flows no faster than
that, to catch a reader mid-stream.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

CHUNK = 64 * 1024


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` until cut; answers at
    ``bytes_per_second`` at most (``None``: as fast as they come)."""

    def __init__(
        self, target_host: str, target_port: int, *, bytes_per_second: int | None = None
    ) -> None:
        self.target = (target_host, target_port)
        self.rate = bytes_per_second
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
        with contextlib.suppress(OSError):  # wakes the accepting thread; close alone does not
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

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
        threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
        self._pump(upstream, client, self.rate)

    def _pump(self, source: socket.socket, sink: socket.socket, rate: int | None) -> None:
        """Copy ``source`` to ``sink`` (at ``rate`` bytes/s at most) until either ends; then
        close both."""
        chunk = CHUNK if rate is None else max(1024, rate // 20)
        try:
            while data := source.recv(chunk):
                self._flowing.wait()
                if self._cut:
                    break
                started = time.monotonic()
                sink.sendall(data)
                if rate is not None:
                    time.sleep(max(0.0, len(data) / rate - (time.monotonic() - started)))
        except OSError:
            pass  # cut, or a peer went away: both ends are closed below
        with self._lock:
            self._live.difference_update((source, sink))
        _close(source)
        _close(sink)


def behind(url: str, proxy: FaultProxy) -> str:
    """``url`` with its host and port replaced by the proxy's (user and password kept)."""
    parts = urlsplit(url)
    secret = f":{parts.password}" if parts.password else ""
    user = f"{parts.username}{secret}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected, or already shut
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
