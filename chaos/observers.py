"""What the harness watches from the outside, as a client would.

- ``RecordingTransport``: the uploading client's httpx transport; it keeps the class of every
  answer (``report.answer_class``), so 5xx and clean 503s are counted where the user sees them;
- ``EventWatcher``: a WebSocket client of one tenant (``filepipe_client.events``, reconnecting
  after drops) that keeps every event id it receives;
- ``WebhookReceiver``: a webhook endpoint that answers 204 at once (``prompt``) or trickles its
  answer a byte a second until healed (``trickle``: a slow receiver), and keeps every
  ``webhook-id`` with when it came and how old its event was.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from chaos.report import answer_class, repeats
from filepipe_client import Config, FilepipeError, events


class RecordingTransport(httpx.BaseTransport):
    """httpx's transport, keeping the class of every answer."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self._classes: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        with self._lock:
            self._classes.append(answer_class(response.status_code, response.headers))
        return response

    def close(self) -> None:
        self._inner.close()

    @property
    def classes(self) -> list[str]:
        with self._lock:
            return list(self._classes)


class EventWatcher:
    """Receives ``config``'s tenant's events over the WebSocket in a thread, reconnecting."""

    RECONNECT_DELAY = 1.0

    def __init__(self, config: Config) -> None:
        self.config = config
        self._ids: list[str] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-watcher", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start and return once the first connection is open."""
        self._thread.start()
        if not self._opened.wait(timeout):
            raise RuntimeError(f"the WebSocket of {self.config.url} did not open in {timeout} s")

    def stop(self) -> None:
        """Stop reconnecting (the open connection ends with the stack)."""
        self._stopped.set()

    @property
    def ids(self) -> list[str]:
        with self._lock:
            return list(self._ids)

    @property
    def duplicates(self) -> int:
        return repeats(self.ids)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                for event in events(self.config, on_open=self._opened.set):
                    with self._lock:
                        self._ids.append(event.id)
                    if self._stopped.is_set():
                        return
            except FilepipeError:
                pass  # the gateway (or what it needs) is down: try again, as a client would
            self._stopped.wait(self.RECONNECT_DELAY)


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    received: float
    """Unix time it arrived."""
    age: float | None
    """Seconds between its event's ``time`` and its arrival (None if it had none)."""


class WebhookReceiver:
    """A webhook endpoint on a free port; ``trickle`` makes it a slow one until ``heal()``."""

    TRICKLE_INTERVAL = 1.0

    def __init__(self, *, trickle: bool = False) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._answered: set[str] = set()
        self._repeats = 0
        self._healed = threading.Event()
        if not trickle:
            self._healed.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def heal(self) -> None:
        """Answer promptly from now on (trickling answers finish too)."""
        self._healed.set()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def duplicates(self) -> int:
        """Deliveries of a ``webhook-id`` already answered 2xx."""
        with self._lock:
            return self._repeats

    def _received(self, webhook_id: str, body: bytes) -> None:
        now = time.time()
        with self._lock:
            self._deliveries.append(Delivery(webhook_id, now, _age(body, now)))
            if webhook_id in self._answered:
                self._repeats += 1

    def _answered_ok(self, webhook_id: str) -> None:
        with self._lock:
            self._answered.add(webhook_id)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                webhook_id = self.headers.get("webhook-id", "")
                receiver._received(webhook_id, body)
                try:
                    if not receiver._healed.is_set():
                        self._trickle()
                    else:
                        self.send_response(204)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    self.wfile.flush()
                except OSError:
                    return  # the sender gave up on us
                receiver._answered_ok(webhook_id)

            def _trickle(self) -> None:
                """A status line, then a header a byte a second until healed."""
                self.wfile.write(b"HTTP/1.1 204 No Content\r\nX-Trickle: ")
                while not receiver._healed.wait(receiver.TRICKLE_INTERVAL):
                    self.wfile.write(b"z")
                    self.wfile.flush()
                self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the harness reports what matters."""

        return Handler

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.heal()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def webhook_receiver(*, trickle: bool = False) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(trickle=trickle)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.close()


def _age(body: bytes, now: float) -> float | None:
    try:
        stamp = json.loads(body).get("time")
        return now - datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError, TypeError):
        return None
