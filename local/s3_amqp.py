"""Publishing bucket notifications to RabbitMQ the way MinIO's AMQP target does.

MinIO's AMQP target (https://github.com/minio/minio/blob/master/docs/bucket/notifications/README.md)
declares the exchange durable, publishes the event JSON with ``content_type`` application/json,
the headers ``minio-bucket`` and ``minio-event``, ``delivery_mode`` 2 (persistent) and
``mandatory``, and waits for the publisher confirm. Here the exchange is a fanout and the routing
key is empty.

pika is not thread-safe and the S3 server is threaded: one connection is shared under a lock
(publishes are serialised, which a local server can afford). A dropped connection is reopened on
the next publish (once per publish); if RabbitMQ still cannot take the notification,
``NotPublished`` is raised and the caller keeps it (``local.s3_queue``, MinIO's queue_dir).
"""

from __future__ import annotations

import logging
import threading

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, UnroutableError

log = logging.getLogger(__name__)


class NotPublished(Exception):
    """RabbitMQ could not be reached or did not confirm the notification."""


class AmqpPublisher:
    """Publishes notifications to one fanout exchange over one shared connection."""

    def __init__(self, amqp_url: str, exchange: str, *, timeout: float = 5.0) -> None:
        self.parameters = pika.URLParameters(amqp_url)
        self.parameters.socket_timeout = timeout
        self.parameters.blocked_connection_timeout = timeout
        self.exchange = exchange
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

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
        with self._lock:
            for reconnected in (False, True):
                try:
                    self._ready_channel().basic_publish(
                        self.exchange, "", body, properties, mandatory=True
                    )
                    return
                except UnroutableError:
                    log.warning(
                        "notification for %s/%s unroutable: no queue is bound to exchange %s",
                        *(bucket, key, self.exchange),
                    )
                    return
                except AMQPError as exc:
                    self._drop()
                    if reconnected:
                        raise NotPublished(f"RabbitMQ unreachable: {exc!r}") from exc

    def keep_alive(self) -> None:
        """Answer RabbitMQ's heartbeats while idle; forget the connection if it dropped."""
        with self._lock:
            if self._connection is None:
                return
            try:
                self._connection.process_data_events(time_limit=0)
            except AMQPError as exc:
                log.info("AMQP connection dropped (%r); it reopens on the next publish", exc)
                self._drop()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _ready_channel(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop()
        self._connection = pika.BlockingConnection(self.parameters)
        channel = self._connection.channel()
        channel.exchange_declare(self.exchange, exchange_type="fanout", durable=True)
        channel.confirm_delivery()
        self._channel = channel
        return channel

    def _drop(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except AMQPError as exc:
                log.debug("closing a broken AMQP connection: %r", exc)
