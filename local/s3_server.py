"""Local S3: moto's S3 server, publishing MinIO-format notifications to RabbitMQ.

``python -m local.s3_server [--host 127.0.0.1] [--port 9000]`` serves moto's S3 API over HTTP
and, for every object created (PUT, POST form upload, copy, CompleteMultipartUpload), publishes
the JSON MinIO's AMQP target publishes: to a durable fanout exchange, persistent
(``delivery_mode`` 2), with publisher confirms, ``application/json`` and the ``minio-bucket`` and
``minio-event`` headers. The bucket is created at start.

Notifications are published after moto has stored the object and before the HTTP answer leaves
(see ``NotifyingApp``), so a client that got its 200 knows the notification is on RabbitMQ. If
RabbitMQ stays unreachable the notification is logged and dropped, as a MinIO without a queue
dir does: the reconcile job re-drives such files.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import pika
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3 import notifications as moto_notifications
from moto.s3.exceptions import BucketAlreadyExists
from moto.s3.models import s3_backends
from pika.exceptions import AMQPError, UnroutableError
from werkzeug.serving import make_server

from filepipe.config import Settings
from filepipe.logs import configure_logging
from local.minio_events import CreatedObject, notification

log = logging.getLogger("local.s3_server")

PORT = "FILEPIPE_S3_PORT"
PUBLISH_ATTEMPTS = 3


class NotificationPublisher:
    """Publishes to one exchange over one AMQP connection, shared by the server's threads."""

    def __init__(self, amqp_url: str, exchange: str) -> None:
        self.parameters = pika.URLParameters(amqp_url)
        self.exchange = exchange
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None

    def _open(self) -> Any:
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(self.parameters)
            self._channel = self._connection.channel()
            self._channel.exchange_declare(self.exchange, exchange_type="fanout", durable=True)
            self._channel.confirm_delivery()
        return self._channel

    def publish(self, body: dict[str, Any], *, bucket: str, event_name: str) -> None:
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            headers={"minio-bucket": bucket, "minio-event": event_name},
        )
        payload = json.dumps(body).encode()
        with self._lock:
            for attempt in range(1, PUBLISH_ATTEMPTS + 1):
                try:
                    self._open().basic_publish(
                        self.exchange, "", payload, properties, mandatory=True
                    )
                    return
                except UnroutableError:
                    log.warning("notification unroutable: no queue is bound to %s", self.exchange)
                    return
                except AMQPError as exc:
                    log.warning("publish attempt %d failed: %r", attempt, exc)
                    self.close()
            log.error("notification lost for %s (RabbitMQ unreachable)", body["Key"])

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.close()
            except AMQPError:
                log.debug("closing a broken AMQP connection", exc_info=True)
        self._connection, self._channel = None, None


class NotifyingApp:
    """WSGI wrapper: publishes the notifications of a request once moto has answered it.

    moto calls ``notifications.send_event`` from inside its write path, before it has set the
    object's final metadata (and, for CompleteMultipartUpload, after an internal Put). The hook
    only notes (bucket, key, event) per request; the last event of each object is published
    after the response is built, from the object as stored, before the client gets its answer.
    """

    def __init__(self, app: Any, publisher: NotificationPublisher, endpoint: str) -> None:
        self.app = app
        self.publisher = publisher
        self.endpoint = endpoint
        self._pending = threading.local()
        original = moto_notifications.send_event

        def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
            original(account_id, event_name, bucket, key)
            name = str(getattr(event_name, "value", event_name))
            if name.startswith("s3:ObjectCreated:") and hasattr(self._pending, "events"):
                self._pending.events[(account_id, bucket.name, key.name)] = name

        moto_notifications.send_event = send_event

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self._pending.events = {}
        try:
            response = self.app(environ, start_response)
            for (account_id, bucket, key), event_name in self._pending.events.items():
                self._publish(account_id, bucket, key, event_name)
            return response
        finally:
            del self._pending.events

    def _publish(self, account_id: str, bucket: str, key_name: str, event_name: str) -> None:
        key = s3_backends[account_id]["aws"].get_object(bucket, key_name)
        if key is None:
            return
        obj = CreatedObject(
            event_name=event_name,
            bucket=bucket,
            key=key_name,
            size=key.size,
            etag=key.etag,
            content_type=str(key.metadata.get("Content-Type", "application/octet-stream")),
            user_metadata={
                k: str(v) for k, v in key.metadata.items() if k.lower().startswith("x-amz-meta-")
            },
        )
        body = notification(
            obj, sequencer=f"{time.time_ns():X}", time=datetime.now(UTC), endpoint=self.endpoint
        )
        self.publisher.publish(body, bucket=bucket, event_name=event_name)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.s3_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get(PORT, "9000")))
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    endpoint = f"http://{args.host}:{args.port}"
    publisher = NotificationPublisher(settings.amqp_url, settings.s3_notify_exchange)
    _create_bucket(settings)
    app = NotifyingApp(DomainDispatcherApplication(create_backend_app), publisher, endpoint)
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    serving = threading.Thread(target=server.serve_forever, name="s3-http", daemon=True)
    serving.start()
    log.info(
        "S3 server on %s, bucket %s, notifications to exchange %s",
        endpoint,
        settings.s3_bucket,
        settings.s3_notify_exchange,
    )

    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    server.shutdown()
    publisher.close()


def _create_bucket(settings: Settings) -> None:
    """Create the bucket in moto's backend before the port opens (no request can race it)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    try:
        backend.create_bucket(settings.s3_bucket, settings.s3_region)
    except BucketAlreadyExists:
        log.debug("bucket %s exists", settings.s3_bucket)


if __name__ == "__main__":
    main()
