"""The Broker ingress: accept CloudEvents over HTTP and store them in the Broker's exchange.

Like Knative's broker ingress it takes ``POST /`` (the default Broker) and
``POST /<namespace>/<broker>``, in binary or structured content mode, and answers 202 Accepted
only once RabbitMQ has confirmed the persistent message. A request that is not a CloudEvent
gets 400, an unknown Broker 404, a RabbitMQ failure 503, each with a short
``application/problem+json`` body (RFC 9457). ``GET /healthz`` answers 200.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.broker.amqp import Publisher
from local.broker.envelope import parse_http
from local.broker.errors import InvalidEvent, PublishError
from local.broker.topology import Topology

log = logging.getLogger(__name__)

DEFAULT_BROKER = "default"
MAX_BODY_BYTES = 10 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: IngressServer

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(HTTPStatus.OK, b'{"status":"ok"}', "application/json")
        else:
            self._problem(HTTPStatus.NOT_FOUND, "Not Found", f"no resource at {self.path}")

    def do_POST(self) -> None:
        exchange = self._exchange()
        if exchange is None:
            self._problem(HTTPStatus.NOT_FOUND, "Not Found", f"no Broker at {self.path}")
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._problem(HTTPStatus.LENGTH_REQUIRED, "Length Required", "send Content-Length")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._problem(HTTPStatus.BAD_REQUEST, "Bad Request", "invalid Content-Length")
            return
        if length > MAX_BODY_BYTES:
            self._problem(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Too Large", "event too large")
            return
        body = self.rfile.read(length)
        try:
            envelope = parse_http(dict(self.headers.items()), body)
        except InvalidEvent as exc:
            self._problem(HTTPStatus.BAD_REQUEST, "Not a CloudEvent", str(exc))
            return
        try:
            self.server.publisher.publish(envelope, exchange=exchange)
        except PublishError as exc:
            log.error("ingress: could not store %s (%s): %s", envelope.id, envelope.type, exc)
            self._problem(HTTPStatus.SERVICE_UNAVAILABLE, "Broker Unavailable", str(exc))
            return
        log.info(
            "ingress: accepted %s (%s) from %s",
            envelope.id,
            envelope.type,
            envelope.attributes["source"],
        )
        self._answer(HTTPStatus.ACCEPTED, b"", None)

    def do_PUT(self) -> None:
        self._problem(HTTPStatus.METHOD_NOT_ALLOWED, "Method Not Allowed", "use POST")

    do_DELETE = do_PATCH = do_PUT

    def _exchange(self) -> str | None:
        parts = [part for part in self.path.split("?", 1)[0].split("/") if part]
        if not parts:
            return self.server.topology.broker_exchange(DEFAULT_BROKER)
        if len(parts) == 2:
            return self.server.topology.broker_exchange(parts[1], parts[0])
        return None

    def _problem(self, status: HTTPStatus, title: str, detail: str) -> None:
        problem = {"type": "about:blank", "title": title, "status": int(status), "detail": detail}
        self.close_connection = True  # the request body may be unread
        self._answer(status, json.dumps(problem).encode(), "application/problem+json")

    def _answer(self, status: HTTPStatus, body: bytes, content_type: str | None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "POST")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ingress: %s %s", self.address_string(), format % args)


class IngressServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], topology: Topology, publisher: Publisher) -> None:
        super().__init__(address, _Handler)
        self.topology = topology
        self.publisher = publisher
        self._thread = threading.Thread(target=self.serve_forever, name="ingress", daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a broken request (e.g. a client resetting its connection) as one record, not
        the traceback ``socketserver`` prints on stderr."""
        log.warning("ingress: request from %s broke", client_address[0], exc_info=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self._thread.join()
        self.server_close()
