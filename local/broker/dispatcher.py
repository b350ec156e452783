"""The Trigger dispatcher: consume each Trigger's queue and deliver what passes its filter.

Each Trigger queue is consumed with manual acks. A message is acknowledged only once its outcome
is final: delivered (a CloudEvent in a 2xx response is published back to the Broker), or
dead-lettered — sent to the Trigger's ``deadLetterSink`` if it has one and, always, stored in
``<prefix>.<trigger>.dlq`` with the ``knativeerror*`` extensions. Anything else (emulator
stopping, RabbitMQ refusing a publish) returns it to the queue, to be redelivered.

Unlike eventing-rabbitmq's dispatcher, whose workers sleep through the retries of their event,
a failed attempt here frees its delivery thread and waits in the ``Timers`` heap, still unacked:
the Trigger's parallelism bounds concurrent HTTP attempts only, and the channel's prefetch is
the parallelism plus ``max_waiting`` events waiting for a retry (beyond that RabbitMQ holds the
rest back: flow control). So a few failing events never hold up the others of their Trigger.
On stop, waiting events are returned to the queue at once; a killed emulator leaves them unacked,
and RabbitMQ redelivers them.

All channels share one connection owned by the consumer thread; workers hand their acks back to
it with ``BlockingConnection.add_callback_threadsafe``, the one thread-safe call pika offers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, ConnectionWrongStateError
from pika.spec import Basic

from filepipe import metrics
from local.broker.amqp import RECONNECT_DELAY, Publisher, connect
from local.broker.delivery import Attempts, Done, Outcome, Response, Sender
from local.broker.envelope import Envelope, dead_letter, from_amqp, is_cloudevent, parse_http
from local.broker.errors import InvalidEvent, PublishError
from local.broker.timers import Timers
from local.broker.topology import Topology, TriggerRoute, declare

log = logging.getLogger(__name__)


class Message:
    """One consumed AMQP message; settled once (acked, or returned to its queue)."""

    def __init__(
        self,
        properties: pika.BasicProperties,
        body: bytes,
        settle: Callable[[bool], None],
        live: Callable[[], bool],
    ) -> None:
        self.properties = properties
        self.body = body
        self._settle = settle
        self._live = live
        self._lock = threading.Lock()
        self._settled = False

    def live(self) -> bool:
        """Whether the message can still be settled (its channel is open)."""
        return self._live() and not self._settled

    def ack(self) -> None:
        self._finish(True)

    def requeue(self) -> None:
        self._finish(False)

    def _finish(self, ack: bool) -> None:
        with self._lock:
            first, self._settled = not self._settled, True
        if first:
            self._settle(ack)


Handler = Callable[[Message], None]
"""Handles one message in a delivery thread; settles it then or later, exactly once."""


@dataclass(frozen=True)
class Subscription:
    queue: str
    prefetch: int
    slots: Executor
    """The delivery threads; ``handle`` runs in one of them."""
    handle: Handler


def blocking_subscription(
    queue: str, parallelism: int, handle: Callable[[pika.BasicProperties, bytes], bool]
) -> Subscription:
    """A subscription whose handler finishes within its thread: True acks, False requeues."""

    def settle(message: Message) -> None:
        if handle(message.properties, message.body):
            message.ack()
        else:
            message.requeue()

    slots = ThreadPoolExecutor(parallelism, thread_name_prefix=f"deliver-{queue}")
    return Subscription(queue, parallelism, slots, settle)


class TriggerHandler:
    """Delivers the messages of one Trigger queue (see the module docstring)."""

    def __init__(
        self,
        route: TriggerRoute,
        sender: Sender,
        publisher: Publisher,
        timers: Timers,
        *,
        max_waiting: int,
    ) -> None:
        self.route = route
        self._publisher = publisher
        self._timers = timers
        self._max_waiting = max_waiting
        parallelism = route.trigger.parallelism
        self._slots = ThreadPoolExecutor(parallelism, thread_name_prefix=f"deliver-{route.queue}")
        self._attempts = Attempts(sender, self._slots, timers)

    def subscription(self) -> Subscription:
        prefetch = self.route.trigger.parallelism + self._max_waiting
        return Subscription(self.route.queue, prefetch, self._slots, self)

    def __call__(self, message: Message) -> None:
        name = self.route.trigger.name
        try:
            envelope = from_amqp(message.properties, message.body)
        except InvalidEvent as exc:
            log.warning("trigger %s: dropped a message that is not a CloudEvent: %s", name, exc)
            message.ack()
            return
        if not self.route.trigger.matches(envelope.attributes):
            log.debug("trigger %s: filtered out %s (%s)", name, envelope.id, envelope.type)
            message.ack()
            return
        done = self._guard(message, partial(self._delivered, message, envelope))
        self._attempts.deliver(
            envelope, self.route.subscriber, self.route.delivery, done, message.live
        )

    def _delivered(self, message: Message, envelope: Envelope, outcome: Outcome) -> None:
        name = self.route.trigger.name
        if outcome.interrupted:
            log.info("trigger %s: %s left for redelivery (stopping)", name, envelope.id)
            message.requeue()
        elif outcome.delivered:
            self._publish_reply(outcome.response)
            log.info(
                "trigger %s: delivered %s (%s) to %s: HTTP %d after %d attempt(s)",
                *(name, envelope.id, envelope.type, self.route.subscriber),
                *(outcome.response.status, outcome.attempts),
            )
            message.ack()
        else:
            self._dead_letter(message, envelope, outcome)

    def _dead_letter(self, message: Message, envelope: Envelope, outcome: Outcome) -> None:
        dead = dead_letter(
            envelope,
            destination=self.route.subscriber,
            status=outcome.response.status,
            body=outcome.response.body,
        )
        if self.route.dead_letter_sink is None:
            self._keep_dead_letter(message, dead, outcome, "no dead-letter sink")
            return

        def sunk(sink: Outcome) -> None:
            if sink.interrupted:
                message.requeue()
                return
            if sink.delivered:
                self._publish_reply(sink.response)
            note = f"dead-letter sink {self.route.dead_letter_sink}: {sink.response.describe()}"
            self._keep_dead_letter(message, dead, outcome, note)

        self._attempts.deliver(
            dead,
            self.route.dead_letter_sink,
            self.route.delivery,
            self._guard(message, sunk),
            message.live,
        )

    def _keep_dead_letter(
        self, message: Message, dead: Envelope, outcome: Outcome, sink_note: str
    ) -> None:
        self._publisher.publish(dead, exchange="", routing_key=self.route.dlq, mandatory=True)
        metrics.get().dead_letters.labels("broker").inc()
        log.warning(
            "trigger %s: dead-lettered %s (%s) after %d attempt(s) to %s: %s; %s; kept in %s",
            *(self.route.trigger.name, dead.id, dead.type, outcome.attempts),
            *(self.route.subscriber, outcome.response.describe(), sink_note, self.route.dlq),
        )
        message.ack()

    def _guard(self, message: Message, done: Done) -> Done:
        """``done``, returning the message to the queue (after a pause, no hot loop) if RabbitMQ
        refuses a publish or anything else breaks."""

        def guarded(outcome: Outcome) -> None:
            try:
                done(outcome)
            except PublishError as exc:
                log.error("trigger %s: message requeued: %s", self.route.trigger.name, exc)
                self._requeue_later(message)
            except Exception:
                log.exception("trigger %s: handler crashed; requeued", self.route.trigger.name)
                self._requeue_later(message)

        return guarded

    def _requeue_later(self, message: Message) -> None:
        if not self._timers.schedule(RECONNECT_DELAY, message.requeue, message.requeue):
            message.requeue()

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
        timers: Timers,
        grace: float,
    ) -> None:
        self._url = amqp_url
        self._topology = topology
        self._subscriptions = subscriptions
        self._stop = stop
        self._timers = timers
        self._grace = grace
        self._unsettled: set[Message] = set()
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
        self._timers.stop()
        for subscription in self._subscriptions:
            subscription.slots.shutdown(wait=False, cancel_futures=True)

    def _consume(self, connection: pika.BlockingConnection) -> None:
        setup = connection.channel()
        declare(setup, self._topology)
        if setup.is_open:  # RabbitMQ closes it when an old Broker exchange is replaced
            setup.close()
        consumers = []
        for subscription in self._subscriptions:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=subscription.prefetch)
            callback = partial(self._on_message, connection, subscription)
            tag = channel.basic_consume(subscription.queue, on_message_callback=callback)
            consumers.append((channel, tag))
        log.info("consuming %s", ", ".join(sub.queue for sub in self._subscriptions))
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.25)
        for channel, tag in consumers:
            channel.basic_cancel(tag)
        self._drain(connection)

    def _drain(self, connection: pika.BlockingConnection) -> None:
        """On stop, return waiting messages to their queues, let in-flight deliveries finish (up
        to the grace period) and settle them."""
        self._timers.stop()
        deadline = time.monotonic() + self._grace
        while time.monotonic() < deadline:
            with self._lock:
                if not self._unsettled:
                    break
            connection.process_data_events(time_limit=0.1)
        connection.process_data_events(time_limit=0)

    def _on_message(
        self,
        connection: pika.BlockingConnection,
        subscription: Subscription,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        settle = partial(self._settle, connection, channel, method.delivery_tag, subscription.queue)
        message = Message(
            properties, body, lambda ack: settle(message, ack), lambda: channel.is_open
        )
        with self._lock:
            self._unsettled.add(message)
        subscription.slots.submit(self._handle, subscription, message)

    def _handle(self, subscription: Subscription, message: Message) -> None:
        try:
            subscription.handle(message)
        except Exception:
            log.exception("%s: handler crashed; message requeued", subscription.queue)
            message.requeue()

    def _settle(
        self,
        connection: pika.BlockingConnection,
        channel: BlockingChannel,
        tag: int,
        queue: str,
        message: Message,
        ack: bool,
    ) -> None:
        """Runs in any thread: schedule the ack (or requeue) on the consumer thread."""
        with self._lock:
            self._unsettled.discard(message)

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
