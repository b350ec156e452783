"""A TCP proxy that can slow the server-to-client direction (to catch a worker mid-stream) and
can be cut (every connection dropped, new ones refused) to take a backing service away."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class ThrottlingProxy:
    """Forwards 127.0.0.1:<port> to ``target``; answers flow at ``bytes_per_second`` at most
    (``None``: as fast as they come)."""

    def __init__(self, target_port: int, bytes_per_second: int | None = None) -> None:
        self.target_port = target_port
        self.rate = bytes_per_second
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> ThrottlingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cut()

    def cut(self) -> None:
        """Drop every connection and refuse new ones, as a dead server would."""
        self._closed.set()
        with contextlib.suppress(OSError):  # wakes the accepting thread; close alone does not
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._closed.is_set():
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(upstream, client, self.rate), daemon=True
            ).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, rate: int | None) -> None:
        chunk = 64 * 1024 if rate is None else max(1024, rate // 20)
        try:
            while data := source.recv(chunk):
                started = time.monotonic()
                sink.sendall(data)
                if rate is not None:
                    time.sleep(max(0.0, len(data) / rate - (time.monotonic() - started)))
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
