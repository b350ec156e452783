"""RabbitMQ plumbing: connections and publisher threads that wait for publisher confirms.

pika's ``BlockingConnection`` is not thread-safe, so each thread that talks to RabbitMQ owns its
own connection. Threads that need to publish (ingress requests, delivery workers, sources) hand
the message to the ``Publisher``'s threads and block until RabbitMQ confirms it
(https://www.rabbitmq.com/docs/confirms), which is how eventing-rabbitmq's ingress and
dispatcher publish: nothing is acknowledged upstream before the broker owns the message.

A blocking channel in confirm mode waits for each message's confirm before the next, so one
publishing thread is a queue of round trips (with the disk write of a persistent message each):
under load every ingress request and delivery waited for all those before it. Several threads,
each with its own connection, have that many publishes in flight; RabbitMQ confirms them
together.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, NackError, UnroutableError

from local.broker.envelope import Envelope
from local.broker.errors import PublishError

log = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0
"""Seconds between attempts to reach RabbitMQ."""
PUBLISHING_THREADS = 8
"""Publishes in flight at once (one connection each); measured with ``bench/pipeline_latency``."""


def connect(url: str) -> pika.BlockingConnection:
    """A new blocking connection to ``url`` (raises ``pika.exceptions.AMQPError``)."""
    parameters = pika.URLParameters(url)
    parameters.client_properties = {"connection_name": "filepipe-broker-emulator"}
    return pika.BlockingConnection(parameters)


@dataclass(frozen=True)
class _Request:
    envelope: Envelope
    exchange: str
    routing_key: str
    mandatory: bool
    result: Future[None]


class Publisher:
    """Publishes envelopes from any thread through ``threads`` connections, each owned by its
    own thread."""

    def __init__(
        self,
        amqp_url: str,
        *,
        confirm_timeout: float = 10.0,
        threads: int = PUBLISHING_THREADS,
    ) -> None:
        self._url = amqp_url
        self._timeout = confirm_timeout
        self._requests: queue.Queue[_Request] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"publisher-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def publish(
        self, envelope: Envelope, *, exchange: str, routing_key: str = "", mandatory: bool = False
    ) -> None:
        """Publish ``envelope`` persistently; return once confirmed, else raise ``PublishError``.

        ``mandatory`` makes an unroutable message an error (used when publishing to a queue).
        """
        request = _Request(envelope, exchange, routing_key, mandatory, Future())
        self._requests.put(request)
        try:
            request.result.result(timeout=self._timeout)
        except TimeoutError as exc:
            raise PublishError(f"no confirm from RabbitMQ within {self._timeout}s") from exc

    def _run(self) -> None:
        lane = _Lane(self._url)
        while not self._stop.is_set():
            try:
                request = self._requests.get(timeout=0.5)
            except queue.Empty:
                lane.keep_alive()
                continue
            lane.handle(request)
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                break
            request.result.set_exception(PublishError("the emulator is stopping"))
        lane.disconnect()


class _Lane:
    """One publishing thread's connection (opened on first use, reopened when lost)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def handle(self, request: _Request) -> None:
        """Publish one request, reconnecting once if the connection turns out to be gone."""
        for attempt in (1, 2):
            try:
                channel = self._channel_or_connect()
                channel.basic_publish(
                    request.exchange,
                    request.routing_key,
                    request.envelope.data,
                    request.envelope.amqp_properties(),
                    mandatory=request.mandatory,
                )
            except (UnroutableError, NackError) as exc:
                request.result.set_exception(PublishError(f"RabbitMQ refused the message: {exc}"))
                return
            except AMQPError as exc:
                self.disconnect()
                if attempt == 2:
                    request.result.set_exception(PublishError(f"cannot publish: {exc!r}"))
                    return
            else:
                request.result.set_result(None)
                return

    def _channel_or_connect(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self.disconnect()
            self._connection = connect(self._url)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def keep_alive(self) -> None:
        """Answer heartbeats while idle."""
        if self._connection is None or not self._connection.is_open:
            return
        try:
            self._connection.process_data_events(time_limit=0)
        except AMQPError as exc:
            log.warning("publisher connection lost: %r", exc)
            self.disconnect()

    def disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except AMQPError as exc:
                log.debug("closing the publisher connection failed: %r", exc)
