"""The local S3 keeps notifications RabbitMQ cannot take in its queue directory, as MinIO does.

The real S3 server process reaches RabbitMQ through a ``FaultProxy`` that is cut during the
outage and healed after; the notifications arrive in order, in MinIO's format, even
across a SIGKILL of the S3 server while they wait.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from filepipe.config import Settings
from filepipe.storage import create_s3_client
from tests.support.broker import amqp_channel, delete, queue_depth
from tests.support.faultproxy import FaultProxy
from tests.support.processes import running
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.integration

RABBITMQ = ("127.0.0.1", 5672)


def drain(queue: str) -> list[tuple[Any, bytes]]:
    """Take every message of ``queue``: (properties, body), in order."""
    taken: list[tuple[Any, bytes]] = []
    with amqp_channel() as channel:
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((properties, body))


def test_notifications_wait_on_disk_and_arrive_in_order_once_rabbitmq_is_back(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    exchange, queue = f"test.{uuid.uuid4().hex[:8]}.minio", f"test.{uuid.uuid4().hex[:8]}"
    with amqp_channel() as channel:
        channel.exchange_declare(exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, exchange)
    rabbitmq = FaultProxy(*RABBITMQ)
    rabbitmq.cut()
    port = free_port()
    env = {
        **s3_env,
        "FILEPIPE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}/%2F",
        "FILEPIPE_S3_NOTIFY_EXCHANGE": exchange,
        "FILEPIPE_S3_QUEUE_DIR": str(tmp_path / "queue"),
    }
    client = create_s3_client(
        Settings.from_env({**env, "FILEPIPE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    )
    waiting = tmp_path / "queue" / exchange
    keys = [f"queued/{n}-{uuid.uuid4().hex[:6]}.txt" for n in range(3)]
    args = ["-m", "local.s3_server", "--port", str(port)]
    try:
        with running(args, port=port, env=env) as first:
            for key in keys:
                client.put_object(
                    Bucket="uploads", Key=key, Body=b"hello", ContentType="text/plain"
                )
            assert len(list(waiting.glob("*.json"))) == 3  # on disk before each 200
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)

        rabbitmq.heal()
        with running(args, port=port, env=env):
            wait_until(lambda: queue_depth(queue) == 3, timeout=30, what="the queued notifications")
            wait_until(lambda: not list(waiting.glob("*.json")), what="the queue dir emptied")
            client.put_object(Bucket="uploads", Key="queued/after.txt", Body=b"x")
            wait_until(lambda: queue_depth(queue) == 4, what="a new notification, sent at once")

        messages = drain(queue)
        assert [json.loads(body)["Key"] for _, body in messages] == [
            f"uploads/{key}" for key in [*keys, "queued/after.txt"]
        ]
        properties, body = messages[0]
        assert properties.content_type == "application/json"
        assert properties.delivery_mode == 2
        assert properties.headers == {
            "minio-bucket": "uploads",
            "minio-event": "s3:ObjectCreated:Put",
        }
        notification = json.loads(body)
        assert notification["EventName"] == "s3:ObjectCreated:Put"
        [record] = notification["Records"]
        assert record["s3"]["bucket"]["name"] == "uploads"
        assert record["s3"]["object"]["key"] == keys[0].replace("/", "%2F")
        assert record["s3"]["object"]["size"] == 5
        assert record["s3"]["object"]["contentType"] == "text/plain"
    finally:
        rabbitmq.close()
        delete([queue], [exchange])
