"""Bucket notifications the harness adds itself: copies of real ones, and stale ones.

- ``Duplicator`` re-publishes every notification the S3 server publishes a second time (as an
  at-least-once transport may): it reads them from a queue of its own bound to the S3 server's
  exchange and publishes each copy straight to the RabbitmqSource's queue (not the exchange,
  which would hand the copy back to it);
- ``publish_stale`` publishes, through ``local.s3_amqp`` as the S3 server does, MinIO's
  notification for objects that do not exist (a backlog left from before storage lost them).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping

import pika

from chaos.stack import ROOT
from local.broker.config import Settings as BrokerSettings
from local.broker.manifests import load
from local.broker.topology import build
from local.minio_events import CreatedObject, Origin, Request, encode, notification
from local.s3_amqp import AmqpPublisher

PUT = "s3:ObjectCreated:Put"


def source_queue(env: Mapping[str, str]) -> str:
    """The queue the broker emulator's RabbitmqSource reads S3 notifications from."""
    settings = BrokerSettings.from_env(env)
    topology = build(load(ROOT / "knative" / "eventing"), settings)
    exchange = env["FILEPIPE_S3_NOTIFY_EXCHANGE"]
    return next(source.queue for source in topology.sources if source.exchange == exchange)


class Duplicator:
    """Publishes a copy of every notification on ``exchange`` to ``queue`` (in a thread)."""

    def __init__(self, amqp_url: str, exchange: str, queue: str) -> None:
        self.amqp_url, self.exchange, self.queue = amqp_url, exchange, queue
        self.copied = 0
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="duplicator", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the duplicator did not bind its queue")

    def stop(self, timeout: float = 60.0) -> None:
        """Copy what is still queued, then stop."""
        self._stopping.set()
        self._thread.join(timeout)
        if self._error is not None:
            raise RuntimeError(f"the duplicator failed: {self._error!r}") from self._error

    def _run(self) -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            with connection:
                channel = connection.channel()
                channel.exchange_declare(self.exchange, exchange_type="fanout", durable=True)
                mine = channel.queue_declare("", exclusive=True).method.queue
                channel.queue_bind(mine, self.exchange)
                channel.confirm_delivery()
                self._ready.set()
                for method, properties, body in channel.consume(mine, inactivity_timeout=0.5):
                    if method is None:
                        if self._stopping.is_set():
                            return  # nothing came for half a second after stop()
                        continue
                    channel.basic_publish("", self.queue, body, properties)
                    channel.basic_ack(method.delivery_tag)
                    self.copied += 1
        except pika.exceptions.AMQPError as exc:
            self._error = exc


def publish_stale(
    amqp_url: str, exchange: str, endpoint: str, objects: Iterable[tuple[str, str]]
) -> int:
    """Publish a Put notification for each ``(bucket, key)`` (objects that do not exist)."""
    publisher = AmqpPublisher(amqp_url, exchange)
    origin = Origin(endpoint, str(uuid.uuid4()))
    count = 0
    try:
        for bucket, key in objects:
            created = CreatedObject(PUT, bucket, key, 1, "0" * 32, "text/plain")
            body = notification(created, Request(uuid.uuid4().hex), origin, nanos=time.time_ns())
            publisher.publish(encode(body), bucket=bucket, key=key, event_name=PUT)
            count += 1
    finally:
        publisher.close()
    return count
