"""What the emulator builds from the manifests: RabbitMQ names, resolved URLs, declarations.

Mirrors eventing-rabbitmq's layout: one durable headers exchange per Broker
(``<prefix>.<broker>``), one durable queue per Trigger bound to it (``<prefix>.<trigger>``) with
the Trigger's exact-match filter as the binding's ``x-match: all`` arguments (the CloudEvent
attributes travel as message headers), so RabbitMQ stores in a Trigger's queue only the events it
wants, not every event in every queue (the dispatcher still checks the filter, e.g. a filter
that accepts any value); and a durable dead-letter queue per Trigger (``<prefix>.<trigger>.dlq``)
that keeps every dead letter for replay. A
RabbitmqSource gets a durable queue (``<prefix>.source.<name>``) bound to its durable fanout
exchange, declared here too so the emulator and MinIO can start in any order. Destinations
resolve as Knative resolves them: a Service ref to its URL (here from ``FILEPIPE_SUBSCRIBERS``)
with the ``uri`` path appended, a Broker ref to the Broker itself, a lone ``uri`` to itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker

from local.broker.config import Settings
from local.broker.errors import ManifestError
from local.broker.manifests import (
    DeliverySpec,
    Destination,
    Manifests,
    PingSource,
    RabbitmqSource,
    Trigger,
)

PRECONDITION_FAILED = 406
"""AMQP's reply code when a declaration contradicts what exists (e.g. another exchange type)."""


@dataclass(frozen=True)
class Sink:
    """A resolved destination: a Broker's exchange or an HTTP URL (exactly one is set)."""

    exchange: str | None = None
    url: str | None = None

    def __str__(self) -> str:
        return self.url or f"exchange {self.exchange}"


@dataclass(frozen=True)
class TriggerRoute:
    trigger: Trigger
    exchange: str
    """The exchange of the Trigger's Broker (replies are published there)."""
    queue: str
    dlq: str
    subscriber: str
    delivery: DeliverySpec
    dead_letter_sink: str | None


@dataclass(frozen=True)
class SourceRoute:
    source: RabbitmqSource
    exchange: str
    queue: str
    sink: Sink


@dataclass(frozen=True)
class PingRoute:
    source: PingSource
    sink: Sink


@dataclass(frozen=True)
class Topology:
    brokers: Mapping[tuple[str, str], str]
    """(namespace, Broker name) → exchange."""
    triggers: tuple[TriggerRoute, ...]
    sources: tuple[SourceRoute, ...]
    pings: tuple[PingRoute, ...]

    def broker_exchange(self, name: str, namespace: str | None = None) -> str | None:
        return _broker_exchange(self.brokers, name, namespace)

    def trigger(self, name: str) -> TriggerRoute:
        for route in self.triggers:
            if route.trigger.name == name:
                return route
        raise ManifestError(f"no Trigger named {name!r}")


def build(manifests: Manifests, settings: Settings) -> Topology:
    """Name every RabbitMQ object and resolve every destination; raises ``ManifestError``."""
    prefix = settings.prefix
    brokers = {(b.namespace, b.name): f"{prefix}.{b.name}" for b in manifests.brokers}

    def resolve(destination: Destination, where: str) -> Sink:
        return _resolve(destination, brokers, settings.subscribers, where)

    triggers = []
    for trigger in manifests.triggers:
        broker = manifests.broker(trigger.broker, trigger.namespace)
        assert broker is not None  # manifests.parse checked it
        delivery = trigger.delivery or broker.delivery or DeliverySpec()
        subscriber = _url(resolve(trigger.subscriber, f"Trigger {trigger.name}"), trigger.name)
        dls = delivery.dead_letter_sink
        triggers.append(
            TriggerRoute(
                trigger=trigger,
                exchange=brokers[(broker.namespace, broker.name)],
                queue=f"{prefix}.{trigger.name}",
                dlq=f"{prefix}.{trigger.name}.dlq",
                subscriber=subscriber,
                delivery=delivery,
                dead_letter_sink=None
                if dls is None
                else _url(resolve(dls, f"Trigger {trigger.name}"), trigger.name),
            )
        )
    sources = tuple(
        SourceRoute(
            source=source,
            exchange=settings.source_exchange or source.exchange,
            queue=f"{prefix}.source.{source.name}",
            sink=resolve(source.sink, f"RabbitmqSource {source.name}"),
        )
        for source in manifests.rabbitmq_sources
    )
    pings = tuple(
        PingRoute(ping, resolve(ping.sink, f"PingSource {ping.name}"))
        for ping in manifests.ping_sources
    )
    return Topology(brokers, tuple(triggers), sources, pings)


def declare(channel: BlockingChannel, topology: Topology) -> None:
    """Declare every exchange, queue and binding (idempotent; run on every (re)connect)."""
    for exchange in topology.brokers.values():
        channel = _headers_exchange(channel, exchange)
    for route in topology.triggers:
        channel.queue_declare(route.queue, durable=True)
        channel.queue_bind(route.queue, route.exchange, arguments=binding_arguments(route.trigger))
        channel.queue_declare(route.dlq, durable=True)
    for source in topology.sources:
        channel.exchange_declare(source.exchange, exchange_type="fanout", durable=True)
        channel.queue_declare(source.queue, durable=True)
        channel.queue_bind(source.queue, source.exchange)


def binding_arguments(trigger: Trigger) -> dict[str, str]:
    """The headers binding of ``trigger``'s queue: every attribute its filter fixes."""
    fixed = {name: wanted for name, wanted in trigger.filter.items() if wanted != ""}
    return {"x-match": "all", **fixed}


def _headers_exchange(channel: BlockingChannel, exchange: str) -> BlockingChannel:
    """Declare the Broker's headers exchange; one left by an older emulator as a fanout is
    deleted first (its queues and their messages stay; they are bound again). Returns the
    channel to go on with (RabbitMQ closes one whose declaration it refused)."""
    try:
        channel.exchange_declare(exchange, exchange_type="headers", durable=True)
        return channel
    except ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
    channel = channel.connection.channel()
    channel.exchange_delete(exchange)
    channel.exchange_declare(exchange, exchange_type="headers", durable=True)
    return channel


def _broker_exchange(
    brokers: Mapping[tuple[str, str], str], name: str, namespace: str | None
) -> str | None:
    for (broker_namespace, broker_name), exchange in brokers.items():
        if broker_name == name and namespace in (None, broker_namespace):
            return exchange
    return None


def _resolve(
    destination: Destination,
    brokers: Mapping[tuple[str, str], str],
    subscribers: Mapping[str, str],
    where: str,
) -> Sink:
    ref, uri = destination.ref, destination.uri
    if ref is None:
        assert uri is not None  # manifests.parse checked it
        return Sink(url=uri)
    if ref.kind == "Broker":
        exchange = _broker_exchange(brokers, ref.name, None)
        if exchange is None:
            raise ManifestError(f"{where}: no Broker {ref.name!r}")
        return Sink(exchange=exchange)
    if ref.kind == "Service":
        base = subscribers.get(ref.name)
        if base is None:
            raise ManifestError(
                f"{where}: no URL for Service {ref.name!r}; add {ref.name}=URL to "
                "FILEPIPE_SUBSCRIBERS"
            )
        return Sink(url=f"{base}/{uri.lstrip('/')}" if uri else base)
    raise ManifestError(f"{where}: cannot resolve a {ref.kind} reference")


def _url(sink: Sink, trigger: str) -> str:
    if sink.url is None:
        raise ManifestError(f"Trigger {trigger}: subscribers and dead-letter sinks must be URLs")
    return sink.url
