"""Publishing bucket notifications to RabbitMQ the way MinIO's AMQP target does.

MinIO's AMQP target (https://github.com/minio/minio/blob/master/docs/bucket/notifications/README.md)
declares the exchange durable, publishes the event JSON with ``content_type`` application/json,
the headers ``minio-bucket`` and ``minio-event``, ``delivery_mode`` 2 (persistent) and
``mandatory``, and waits for the publisher confirm. Here the exchange is a fanout and the routing
key is empty.

pika is not thread-safe and the S3 server is threaded: each publish borrows a connection of its
own from a pool (opened when none is idle, kept for the next publish), so concurrent PUTs wait
for their confirms together instead of one after another (a confirm is a round trip and, for a
persistent message, a disk write). A dropped connection is replaced (once per publish); if
RabbitMQ still cannot take the notification, ``NotPublished`` is raised and the caller keeps it
(``local.s3_queue``, MinIO's queue_dir).
"""

from __future__ import annotations

import logging
import queue

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, UnroutableError

log = logging.getLogger(__name__)


class NotPublished(Exception):
    """RabbitMQ could not be reached or did not confirm the notification."""


class AmqpPublisher:
    """Publishes notifications to one fanout exchange over a pool of connections."""

    def __init__(self, amqp_url: str, exchange: str, *, timeout: float = 5.0) -> None:
        self.parameters = pika.URLParameters(amqp_url)
        self.parameters.socket_timeout = timeout
        self.parameters.blocked_connection_timeout = timeout
        self.exchange = exchange
        self._idle: queue.LifoQueue[_Confirming] = queue.LifoQueue()
        """Connections no publish is using (the most recently used first)."""

    def publish(self, body: bytes, *, bucket: str, key: str, event_name: str) -> None:
        """Publish and wait for the confirm; raise ``NotPublished`` if RabbitMQ cannot take it.

        An unroutable notification (no queue bound to the exchange) is logged and dropped, as
        RabbitMQ would drop it: retrying cannot route it.
        """
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            headers={"minio-bucket": bucket, "minio-event": event_name},
        )
        for reconnected in (False, True):
            connection = (
                _Confirming(self.parameters, self.exchange) if reconnected else self._borrow()
            )
            try:
                connection.channel().basic_publish(
                    self.exchange, "", body, properties, mandatory=True
                )
            except UnroutableError:
                self._idle.put(connection)
                log.warning(
                    "notification for %s/%s unroutable: no queue is bound to exchange %s",
                    *(bucket, key, self.exchange),
                )
                return
            except AMQPError as exc:
                connection.close()
                self.close()  # the idle connections most likely broke with this one
                if reconnected:
                    raise NotPublished(f"RabbitMQ unreachable: {exc!r}") from exc
            else:
                self._idle.put(connection)
                return

    def keep_alive(self) -> None:
        """Answer RabbitMQ's heartbeats on the idle connections; forget those that dropped."""
        for connection in self._take_idle():
            try:
                connection.serve()
            except AMQPError as exc:
                log.info("AMQP connection dropped (%r); another opens on the next publish", exc)
                connection.close()
            else:
                self._idle.put(connection)

    def close(self) -> None:
        for connection in self._take_idle():
            connection.close()

    def _borrow(self) -> _Confirming:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return _Confirming(self.parameters, self.exchange)

    def _take_idle(self) -> list[_Confirming]:
        taken = []
        while True:
            try:
                taken.append(self._idle.get_nowait())
            except queue.Empty:
                return taken


class _Confirming:
    """A connection and its channel in confirm mode, used by one thread at a time."""

    def __init__(self, parameters: pika.URLParameters, exchange: str) -> None:
        self._parameters = parameters
        self._exchange = exchange
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def channel(self) -> BlockingChannel:
        """The open channel (connecting and declaring the exchange first if needed)."""
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        self._connection = pika.BlockingConnection(self._parameters)
        channel = self._connection.channel()
        channel.exchange_declare(self._exchange, exchange_type="fanout", durable=True)
        channel.confirm_delivery()
        self._channel = channel
        return channel

    def serve(self) -> None:
        if self._connection is not None:
            self._connection.process_data_events(time_limit=0)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except AMQPError as exc:
                log.debug("closing a broken AMQP connection: %r", exc)
