"""Helpers for broker emulator tests: small RabbitMQ utilities (receivers: ``receiver.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pika

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@contextmanager
def amqp_channel(url: str = AMQP_URL) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        connection.close()


def queue_depth(queue: str, url: str = AMQP_URL) -> int:
    """Ready messages in ``queue`` (which must exist)."""
    with amqp_channel(url) as channel:
        return int(channel.queue_declare(queue, passive=True).method.message_count)


def delete(queues: Iterable[str], exchanges: Iterable[str], url: str = AMQP_URL) -> None:
    """Remove what a test declared in RabbitMQ."""
    with amqp_channel(url) as channel:
        for queue in queues:
            channel.queue_delete(queue)
        for exchange in exchanges:
            channel.exchange_delete(exchange)
