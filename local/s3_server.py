"""Local S3: moto's S3 server that publishes MinIO's bucket notifications to RabbitMQ.

``python -m local.s3_server [--host 127.0.0.1] [--port 9000]`` (port also from
``FILEPIPE_S3_PORT``) serves moto's S3 API over HTTP, path-style and virtual-host style
(``Host: <bucket>.<domain>``), and publishes, for every object created, the JSON MinIO's AMQP
target publishes (``local.minio_events``, ``local.s3_amqp``; hooked in by ``local.s3_notifier``)
to the exchange ``FILEPIPE_S3_NOTIFY_EXCHANGE`` on ``FILEPIPE_AMQP_URL``. The bucket
``FILEPIPE_S3_BUCKET`` is created before the port opens. Stops cleanly on SIGTERM or SIGINT.

Only moto's S3 app is served (not its service dispatcher), so no request can be routed to another
moto service. Like moto, it checks no signatures, expiry or POST-policy conditions.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import uuid
from collections.abc import Sequence

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from moto.s3.exceptions import BucketAlreadyExists
from moto.s3.models import s3_backends
from werkzeug.serving import make_server

from filepipe.config import Settings
from filepipe.logs import configure_logging
from local.minio_events import Origin
from local.s3_amqp import AmqpPublisher
from local.s3_notifier import Clock, NotifyingApp

log = logging.getLogger("local.s3_server")

PORT = "FILEPIPE_S3_PORT"
KEEP_ALIVE_INTERVAL = 10.0
"""Seconds between services of the idle AMQP connection (RabbitMQ heartbeats are 60 s)."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.s3_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help=f"default: ${PORT}, else 9000")
    args = parser.parse_args(argv)
    port = args.port if args.port is not None else int(os.environ.get(PORT) or 9000)
    settings = Settings.from_env()
    configure_logging(settings.log_level, "s3")  # masks presigned URLs' signatures
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # its failures are logged here

    create_bucket(settings.s3_bucket, settings.s3_region)
    endpoint = f"http://{args.host}:{port}"
    publisher = AmqpPublisher(
        settings.amqp_url, settings.s3_notify_exchange, timeout=settings.publish_timeout
    )
    app = NotifyingApp(
        create_backend_app("s3"), publisher, Origin(endpoint, str(uuid.uuid4())), Clock()
    )
    server = make_server(args.host, port, app, threaded=True, request_handler=MotoRequestHandler)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, name="s3-http")
    serving.start()
    log.info(
        "S3 on %s, bucket %s, notifications to exchange %s",
        endpoint,
        settings.s3_bucket,
        settings.s3_notify_exchange,
    )
    while not stop.wait(KEEP_ALIVE_INTERVAL):
        publisher.keep_alive()
    log.info("stopping")
    server.shutdown()
    serving.join()
    server.server_close()
    publisher.close()


def create_bucket(name: str, region: str) -> None:
    """Create ``name`` in moto's backend (idempotent)."""
    try:
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].create_bucket(name, region)
    except BucketAlreadyExists:
        log.debug("bucket %s exists", name)


if __name__ == "__main__":
    main()
