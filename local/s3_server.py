"""Local S3: moto's S3 server that publishes MinIO's bucket notifications to RabbitMQ.

``python -m local.s3_server [--host 127.0.0.1] [--port 9000]`` (port also from
``FILEPIPE_S3_PORT``) serves moto's S3 API over HTTP, path-style and virtual-host style
(``Host: <bucket>.<domain>``), and publishes, for every object created, the JSON MinIO's AMQP
target publishes (``local.minio_events``, ``local.s3_amqp``; hooked in by ``local.s3_notifier``)
to the exchange ``FILEPIPE_S3_NOTIFY_EXCHANGE`` on ``FILEPIPE_AMQP_URL``. The bucket
``FILEPIPE_S3_BUCKET`` is created before the port opens. Stops cleanly on SIGTERM or SIGINT.

Only moto's S3 app is served (not its service dispatcher), so no request can be routed to another
moto service. Before moto stores anything, ``local.s3_guard`` checks what MinIO checks: SigV4
signatures (presigned URLs, ``Authorization`` headers, POST policies) with the key pair
``FILEPIPE_S3_ACCESS_KEY_ID`` / ``FILEPIPE_S3_SECRET_ACCESS_KEY`` (MinIO's default root user
``minioadmin`` / ``minioadmin`` when unset) in region ``FILEPIPE_S3_REGION``, expiry, body
length and digests, and ``If-None-Match: *``; refusals are S3 XML errors with MinIO's codes.
Browsers on the origins of ``FILEPIPE_ALLOWED_ORIGINS`` get CORS (``local.s3_cors``).
Multipart completion and GetObject run in bounded memory (``local.s3_large_objects``), so objects
of many GiB go through.

A notification RabbitMQ cannot take is kept in a queue directory and resent once RabbitMQ is
back, as MinIO's ``queue_dir`` (``local.s3_queue``): ``--queue-dir`` or ``FILEPIPE_S3_QUEUE_DIR``
(default ``.local/s3/queue``), one subdirectory per exchange. Objects are kept on disk
(``local.s3_store``) in ``--data-dir`` or ``FILEPIPE_S3_DATA_DIR`` (default ``.local/s3/data``)
and loaded back at start-up, so they survive a restart.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.s3.exceptions import BucketAlreadyExists, MissingBucket
from moto.s3.models import FakeKey, s3_backends
from werkzeug.serving import make_server

from filepipe.config import Settings
from filepipe.logs import configure_logging
from filepipe.origins import AllowedOrigins
from local import json_output, s3_large_objects, s3_store
from local.minio_events import Origin
from local.s3_amqp import AmqpPublisher
from local.s3_auth import Authenticator
from local.s3_cors import CorsApp
from local.s3_guard import GuardApp
from local.s3_notifier import Clock, NotifyingApp
from local.s3_queue import QueuedPublisher
from local.s3_store import ObjectStore

log = logging.getLogger("local.s3_server")

PORT = "FILEPIPE_S3_PORT"
QUEUE_DIR = "FILEPIPE_S3_QUEUE_DIR"
DEFAULT_QUEUE_DIR = Path(".local/s3/queue")
DATA_DIR = "FILEPIPE_S3_DATA_DIR"
DEFAULT_DATA_DIR = Path(".local/s3/data")
MINIO_ROOT_USER = "minioadmin"
MINIO_ROOT_PASSWORD = "minioadmin"  # noqa: S105 (MinIO's documented default)
KEEP_ALIVE_INTERVAL = 10.0
"""Seconds between services of the idle AMQP connection (RabbitMQ heartbeats are 60 s)."""
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.s3_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help=f"default: ${PORT}, else 9000")
    parser.add_argument(
        "--queue-dir",
        type=Path,
        default=None,
        help=f"default: ${QUEUE_DIR}, else {DEFAULT_QUEUE_DIR}",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"default: ${DATA_DIR}, else {DEFAULT_DATA_DIR}"
    )
    args = parser.parse_args(argv)
    # Blocked before any thread starts, so every thread inherits the mask and the signals wait
    # for the main thread's sigtimedwait below: a handler would only run once the main thread
    # woke, up to KEEP_ALIVE_INTERVAL late, when the kernel handed the signal to another thread.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    configure_logging("INFO", "s3")  # masks presigned URLs' signatures
    json_output.capture("s3")
    port = args.port if args.port is not None else int(os.environ.get(PORT) or 9000)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # its failures are logged here

    store = ObjectStore(args.data_dir or Path(os.environ.get(DATA_DIR) or DEFAULT_DATA_DIR))
    s3_store.install(store)
    create_bucket(settings.s3_bucket, settings.s3_region)
    loaded = store.load(_backend(), settings.s3_region)
    endpoint = f"http://{args.host}:{port}"
    amqp = AmqpPublisher(
        settings.amqp_url, settings.s3_notify_exchange, timeout=settings.publish_timeout
    )
    queue_dir = args.queue_dir or Path(os.environ.get(QUEUE_DIR) or DEFAULT_QUEUE_DIR)
    publisher = QueuedPublisher(amqp, queue_dir / settings.s3_notify_exchange)
    access_key, secret = credentials(settings)
    guard = GuardApp(
        s3_large_objects.create_app(),
        Authenticator({access_key: secret}, settings.s3_region),
        object_exists,
    )
    cors = CorsApp(guard, AllowedOrigins(settings.allowed_origins), region=settings.s3_region)
    app = NotifyingApp(cors, publisher, Origin(endpoint, str(uuid.uuid4())), Clock(), store)
    server = make_server(args.host, port, app, threaded=True, request_handler=MotoRequestHandler)

    serving = threading.Thread(target=server.serve_forever, name="s3-http")
    publisher.start()
    serving.start()
    log.info(
        "S3 on %s, bucket %s, access key %s, %d object(s) in %s, notifications to exchange %s "
        "(queue %s, %d waiting)",
        *(endpoint, settings.s3_bucket, access_key, loaded, store.directory),
        *(settings.s3_notify_exchange, queue_dir, len(publisher.backlog())),
    )
    while signal.sigtimedwait(STOP_SIGNALS, KEEP_ALIVE_INTERVAL) is None:
        amqp.keep_alive()
    log.info("stopping")
    server.shutdown()
    serving.join()
    server.server_close()
    publisher.stop()
    amqp.close()


def credentials(settings: Settings) -> tuple[str, str]:
    """The one key pair requests must be signed with: the functions' own, else MinIO's default."""
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        return settings.s3_access_key_id, settings.s3_secret_access_key
    log.warning("no FILEPIPE_S3_ACCESS_KEY_ID/SECRET set: accepting MinIO's default root user")
    return MINIO_ROOT_USER, MINIO_ROOT_PASSWORD


def create_bucket(name: str, region: str) -> None:
    """Create ``name`` in moto's backend (idempotent)."""
    try:
        _backend().create_bucket(name, region)
    except BucketAlreadyExists:
        log.debug("bucket %s exists", name)


def object_exists(bucket: str, key: str) -> bool:
    """Whether ``key`` holds an object (not a delete marker) in moto's ``bucket``."""
    try:
        found = _backend().get_bucket(bucket).keys.get(key)
    except MissingBucket:
        return False
    return isinstance(found, FakeKey)


def _backend() -> Any:
    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


if __name__ == "__main__":
    main()
