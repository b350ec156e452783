"""Replay dead letters: move them from ``<prefix>.<trigger>.dlq`` back to the Trigger's queue.

Each message loses its ``knativeerror*`` extensions and goes back to the Trigger's own queue
(not the Broker's exchange, so other Triggers do not see it twice). A message leaves the DLQ
only after RabbitMQ confirmed its copy in the Trigger queue. At most the messages present when
the replay starts are moved, so events that fail again are not replayed in a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pika.adapters.blocking_connection import BlockingChannel

from local.broker.amqp import connect
from local.broker.envelope import ERROR_EXTENSIONS, from_amqp
from local.broker.errors import InvalidEvent
from local.broker.topology import TriggerRoute

log = logging.getLogger(__name__)


def replay(amqp_url: str, routes: Iterable[TriggerRoute], limit: int | None = None) -> int:
    """Move up to ``limit`` dead letters (per Trigger) back; returns how many moved in all."""
    connection = connect(amqp_url)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        return sum(_replay_trigger(channel, route, limit) for route in routes)
    finally:
        connection.close()


def _replay_trigger(channel: BlockingChannel, route: TriggerRoute, limit: int | None) -> int:
    channel.queue_declare(route.queue, durable=True)
    waiting = channel.queue_declare(route.dlq, durable=True).method.message_count
    budget = waiting if limit is None else min(waiting, limit)
    moved = 0
    while moved < budget:
        method, properties, body = channel.basic_get(route.dlq, auto_ack=False)
        if method is None:
            break
        try:
            envelope = from_amqp(properties, body).without(ERROR_EXTENSIONS)
        except InvalidEvent as exc:
            log.warning("%s: left a message that is not a CloudEvent: %s", route.dlq, exc)
            channel.basic_nack(method.delivery_tag, requeue=True)
            break
        channel.basic_publish(
            "", route.queue, envelope.data, envelope.amqp_properties(), mandatory=True
        )
        channel.basic_ack(method.delivery_tag)
        moved += 1
    log.info("trigger %s: replayed %d dead letter(s) from %s", route.trigger.name, moved, route.dlq)
    return moved
