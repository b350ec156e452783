"""A private RabbitMQ queue bound to the S3 server's notification exchange."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika


class Inbox:
    def __init__(self, channel: Any, queue: str) -> None:
        self.channel = channel
        self.queue = queue

    def next(self, timeout: float = 10) -> tuple[Any, dict[str, Any]]:
        """The next notification's AMQP properties and JSON body; fails after ``timeout``."""
        method, properties, body = next(
            self.channel.consume(self.queue, inactivity_timeout=timeout)
        )
        assert method is not None, f"no notification within {timeout} s"
        self.channel.basic_ack(method.delivery_tag)
        return properties, json.loads(body)

    def empty(self) -> bool:
        self.channel.cancel()
        declared = self.channel.queue_declare(self.queue, passive=True)
        return bool(declared.method.message_count == 0)


@contextmanager
def inbox(amqp_url: str, exchange: str) -> Iterator[Inbox]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, exchange_type="fanout", durable=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, exchange)
        yield Inbox(channel, queue)
    finally:
        connection.close()
