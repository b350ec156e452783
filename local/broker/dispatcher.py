"""The Trigger dispatcher: consume each Trigger's queue and deliver what passes its filter.

Like eventing-rabbitmq's dispatcher, each Trigger queue is consumed with manual acks and a
prefetch equal to the Trigger's parallelism, with that many deliveries in flight. A message is
acknowledged only once its outcome is final: delivered (a CloudEvent in a 2xx response is
published back to the Broker), or dead-lettered — sent to the Trigger's ``deadLetterSink`` if it
has one and, always, stored in ``<prefix>.<trigger>.dlq`` with the ``knativeerror*`` extensions.
Anything else (emulator stopping, RabbitMQ refusing a publish) returns it to the queue after a
short pause, to be redelivered.

All channels share one connection owned by the consumer thread; workers hand their acks back to
it with ``BlockingConnection.add_callback_threadsafe``, the one thread-safe call pika offers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, ConnectionWrongStateError
from pika.spec import Basic

from filepipe import metrics
from local.broker.amqp import RECONNECT_DELAY, Publisher, connect
from local.broker.delivery import Outcome, Response, Sender
from local.broker.envelope import Envelope, dead_letter, from_amqp, is_cloudevent, parse_http
from local.broker.errors import InvalidEvent, PublishError
from local.broker.topology import Topology, TriggerRoute, declare

log = logging.getLogger(__name__)

Handler = Callable[[pika.BasicProperties, bytes], bool]
"""Handles one message; True acknowledges it, False returns it to the queue."""


@dataclass(frozen=True)
class Subscription:
    queue: str
    parallelism: int
    handle: Handler


class TriggerHandler:
    """Delivers the messages of one Trigger queue (see the module docstring)."""

    def __init__(self, route: TriggerRoute, sender: Sender, publisher: Publisher) -> None:
        self.route = route
        self._sender = sender
        self._publisher = publisher

    def subscription(self) -> Subscription:
        return Subscription(self.route.queue, self.route.trigger.parallelism, self)

    def __call__(self, properties: pika.BasicProperties, body: bytes) -> bool:
        name = self.route.trigger.name
        try:
            envelope = from_amqp(properties, body)
        except InvalidEvent as exc:
            log.warning("trigger %s: dropped a message that is not a CloudEvent: %s", name, exc)
            return True
        if not self.route.trigger.matches(envelope.attributes):
            log.debug("trigger %s: filtered out %s (%s)", name, envelope.id, envelope.type)
            return True
        outcome = self._sender.send(envelope, self.route.subscriber, self.route.delivery)
        if outcome.interrupted:
            log.info("trigger %s: %s left for redelivery (stopping)", name, envelope.id)
            return False
        try:
            if outcome.delivered:
                self._publish_reply(outcome.response)
                log.info(
                    "trigger %s: delivered %s (%s) to %s: HTTP %d after %d attempt(s)",
                    *(name, envelope.id, envelope.type, self.route.subscriber),
                    *(outcome.response.status, outcome.attempts),
                )
                return True
            return self._dead_letter(envelope, outcome)
        except PublishError as exc:
            log.error("trigger %s: %s requeued: %s", name, envelope.id, exc)
            return False

    def _dead_letter(self, envelope: Envelope, outcome: Outcome) -> bool:
        dead = dead_letter(
            envelope,
            destination=self.route.subscriber,
            status=outcome.response.status,
            body=outcome.response.body,
        )
        sink_note = "no dead-letter sink"
        if self.route.dead_letter_sink is not None:
            sink = self._sender.send(dead, self.route.dead_letter_sink, self.route.delivery)
            if sink.interrupted:
                return False
            if sink.delivered:
                self._publish_reply(sink.response)
            sink_note = (
                f"dead-letter sink {self.route.dead_letter_sink}: {sink.response.describe()}"
            )
        self._publisher.publish(dead, exchange="", routing_key=self.route.dlq, mandatory=True)
        metrics.get().dead_letters.labels("broker").inc()
        log.warning(
            "trigger %s: dead-lettered %s (%s) after %d attempt(s) to %s: %s; %s; kept in %s",
            *(self.route.trigger.name, dead.id, dead.type, outcome.attempts),
            *(self.route.subscriber, outcome.response.describe(), sink_note, self.route.dlq),
        )
        return True

    def _publish_reply(self, response: Response) -> None:
        """Publish a CloudEvent the subscriber answered with back to the Broker."""
        if not is_cloudevent(response.headers):
            return
        try:
            reply = parse_http(response.headers, response.body)
        except InvalidEvent as exc:
            log.warning("trigger %s: ignored a malformed reply: %s", self.route.trigger.name, exc)
            return
        self._publisher.publish(reply, exchange=self.route.exchange)
        log.info(
            "trigger %s: published reply %s (%s)", self.route.trigger.name, reply.id, reply.type
        )


class Consumer:
    """Consumes every subscription's queue on one connection, in its own thread; reconnects."""

    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        subscriptions: Sequence[Subscription],
        *,
        stop: threading.Event,
        grace: float,
    ) -> None:
        self._url = amqp_url
        self._topology = topology
        self._subscriptions = subscriptions
        self._stop = stop
        self._grace = grace
        self._pools = [
            ThreadPoolExecutor(sub.parallelism, thread_name_prefix=f"deliver-{sub.queue}")
            for sub in subscriptions
        ]
        self._in_flight: set[Future[bool]] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="consumer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        """Wait for the thread to finish after ``stop`` was set."""
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connection = connect(self._url)
            except AMQPError as exc:
                log.warning("cannot reach RabbitMQ (%r); retrying", exc)
                self._stop.wait(RECONNECT_DELAY)
                continue
            try:
                self._consume(connection)
            except AMQPError as exc:
                log.warning("RabbitMQ connection lost (%r); reconnecting", exc)
                self._stop.wait(RECONNECT_DELAY)
            finally:
                if connection.is_open:
                    connection.close()
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)

    def _consume(self, connection: pika.BlockingConnection) -> None:
        setup = connection.channel()
        declare(setup, self._topology)
        setup.close()
        consumers = []
        for subscription, pool in zip(self._subscriptions, self._pools, strict=True):
            channel = connection.channel()
            channel.basic_qos(prefetch_count=subscription.parallelism)
            callback = partial(self._on_message, connection, subscription, pool)
            tag = channel.basic_consume(subscription.queue, on_message_callback=callback)
            consumers.append((channel, tag))
        log.info("consuming %s", ", ".join(sub.queue for sub in self._subscriptions))
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.25)
        for channel, tag in consumers:
            channel.basic_cancel(tag)
        self._drain(connection)

    def _drain(self, connection: pika.BlockingConnection) -> None:
        """On stop, let in-flight deliveries finish (up to the grace period) and settle them."""
        deadline = time.monotonic() + self._grace
        while time.monotonic() < deadline:
            with self._lock:
                if not self._in_flight:
                    break
            connection.process_data_events(time_limit=0.1)
        connection.process_data_events(time_limit=0)

    def _on_message(
        self,
        connection: pika.BlockingConnection,
        subscription: Subscription,
        pool: ThreadPoolExecutor,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        future = pool.submit(subscription.handle, properties, body)
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(
            partial(self._settle, connection, channel, method.delivery_tag, subscription.queue)
        )

    def _settle(
        self,
        connection: pika.BlockingConnection,
        channel: BlockingChannel,
        tag: int,
        queue: str,
        future: Future[bool],
    ) -> None:
        """Runs in the worker thread: schedule the ack (or requeue) on the consumer thread."""
        with self._lock:
            self._in_flight.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.error("%s: handler crashed; message requeued", queue, exc_info=error)
        ack = error is None and future.result()
        if not ack:
            self._stop.wait(RECONNECT_DELAY)  # no hot redelivery loop while something is broken

        def settle() -> None:
            if not channel.is_open:
                return
            if ack:
                channel.basic_ack(tag)
            else:
                channel.basic_nack(tag, requeue=True)

        try:
            connection.add_callback_threadsafe(settle)
        except ConnectionWrongStateError:
            log.info("%s: connection closed before settling; RabbitMQ will redeliver", queue)
