"""A real HTTP server in a thread that records what it receives (an event or webhook sink)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Recorded:
    """One request the receiver got; header names are lower-case."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    """When it arrived (``time.monotonic()``)."""

    def ce(self, name: str) -> str | None:
        return self.headers.get(f"ce-{name}")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None
    """If set, the answer waits (up to 10 s) until the event is set."""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (e.g. a killed emulator) are part of the tests."""


class Receiver:
    """A real HTTP server in a thread that records requests and answers as planned per path."""

    def __init__(self, port: int = 0) -> None:
        """Listen on ``port`` (any free one by default)."""
        self._lock = threading.Lock()
        self._records: list[Recorded] = []
        self._plans: dict[str, list[Reply]] = {}
        self._rules: dict[str, Callable[[Recorded], Reply | None]] = {}
        self._server = _QuietServer(("127.0.0.1", port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def plan(self, path: str, *replies: Reply | int) -> None:
        """Answer the next requests to ``path`` with these replies (then 200)."""
        with self._lock:
            self._plans.setdefault(path, []).extend(
                reply if isinstance(reply, Reply) else Reply(reply) for reply in replies
            )

    def answer(self, path: str, rule: Callable[[Recorded], Reply | None]) -> None:
        """Answer requests to ``path`` with ``rule(request)`` when it gives a reply (before any
        plan), e.g. to fail some events of a Trigger and not others."""
        with self._lock:
            self._rules[path] = rule

    def requests(self, path: str, id: str | None = None) -> list[Recorded]:
        """Requests to ``path`` so far (only those of event ``id`` if given)."""
        with self._lock:
            return [
                record
                for record in self._records
                if record.path == path and id in (None, record.ce("id"))
            ]

    def all_requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._records)

    def wait_for(
        self, path: str, count: int = 1, *, id: str | None = None, timeout: float = 10.0
    ) -> list[Recorded]:
        """Wait until ``path`` got ``count`` requests (of event ``id`` if given); return them."""

        def enough() -> list[Recorded] | None:
            found = self.requests(path, id)
            return found if len(found) >= count else None

        return wait_until(enough, timeout=timeout, what=f"{count} request(s) to {path}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _next_reply(self, record: Recorded) -> Reply:
        path = record.path
        with self._lock:
            rule = self._rules.get(path)
        reply = rule(record) if rule is not None else None
        if reply is not None:
            return reply
        with self._lock:
            planned = self._plans.get(path)
            return planned.pop(0) if planned else Reply()

    def _record(self, record: Recorded) -> None:
        with self._lock:
            self._records.append(record)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {key.lower(): value for key, value in self.headers.items()}
                record = Recorded(self.path, headers, body)
                receiver._record(record)
                reply = receiver._next_reply(record)
                if reply.hold is not None:
                    reply.hold.wait(10)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def receiving(port: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(port)
    try:
        yield receiver
    finally:
        receiver.close()
