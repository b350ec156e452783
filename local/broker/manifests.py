"""The Knative Eventing manifests the emulator follows, parsed into plain values (no I/O but YAML).

Understood kinds: ``Broker`` and ``Trigger`` (eventing.knative.dev/v1), ``RabbitmqSource``
(sources.knative.dev/v1alpha1), ``PingSource`` (sources.knative.dev/v1); every other kind
(e.g. ``RabbitmqBrokerConfig``) is skipped. Semantics follow the Knative specs:
- a Trigger's ``filter.attributes`` are exact matches on CloudEvent attributes or extensions,
  all of which must match; an empty value matches any value of an attribute the event has;
- a Trigger without ``delivery`` inherits its Broker's;
- a Destination is ``ref`` and/or ``uri``; with both, ``uri`` is resolved against the ref's URL;
- ``rabbitmq.eventing.knative.dev/parallelism`` sets a Trigger's concurrent deliveries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from local.broker.durations import BackoffPolicy, parse_duration
from local.broker.errors import ManifestError

PARALLELISM_ANNOTATION = "rabbitmq.eventing.knative.dev/parallelism"
DEFAULT_NAMESPACE = "default"
DEFAULT_BACKOFF_DELAY = 0.2
"""Seconds; used when a DeliverySpec sets retries but no ``backoffDelay``."""


@dataclass(frozen=True)
class Ref:
    kind: str
    name: str
    api_version: str = ""


@dataclass(frozen=True)
class Destination:
    """A Knative ``duckv1.Destination``: a reference, a URI, or a URI relative to the reference."""

    ref: Ref | None = None
    uri: str | None = None


@dataclass(frozen=True)
class DeliverySpec:
    retry: int = 0
    backoff_policy: BackoffPolicy = "exponential"
    backoff_delay: float = DEFAULT_BACKOFF_DELAY
    dead_letter_sink: Destination | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class Broker:
    name: str
    namespace: str = DEFAULT_NAMESPACE
    delivery: DeliverySpec | None = None


@dataclass(frozen=True)
class Trigger:
    name: str
    broker: str
    subscriber: Destination
    namespace: str = DEFAULT_NAMESPACE
    filter: Mapping[str, str] = field(default_factory=dict)
    delivery: DeliverySpec | None = None
    parallelism: int = 1

    def matches(self, attributes: Mapping[str, str]) -> bool:
        """Whether an event with these attributes and extensions passes the filter."""
        return all(
            name in attributes and (wanted == "" or attributes[name] == wanted)
            for name, wanted in self.filter.items()
        )


@dataclass(frozen=True)
class RabbitmqSource:
    name: str
    exchange: str
    queue: str
    sink: Destination
    namespace: str = DEFAULT_NAMESPACE
    parallelism: int = 1
    delivery: DeliverySpec | None = None

    @property
    def event_source(self) -> str:
        """The CloudEvent ``source`` eventing-rabbitmq gives the events of this source."""
        return f"/apis/v1/namespaces/{self.namespace}/rabbitmqsources/{self.name}#{self.queue}"


@dataclass(frozen=True)
class PingSource:
    name: str
    schedule: str
    sink: Destination
    namespace: str = DEFAULT_NAMESPACE
    content_type: str | None = None
    data: str = ""

    @property
    def event_source(self) -> str:
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"


@dataclass(frozen=True)
class Manifests:
    brokers: tuple[Broker, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    rabbitmq_sources: tuple[RabbitmqSource, ...] = ()
    ping_sources: tuple[PingSource, ...] = ()

    def broker(self, name: str, namespace: str | None = None) -> Broker | None:
        for broker in self.brokers:
            if broker.name == name and namespace in (None, broker.namespace):
                return broker
        return None


def load(directory: Path) -> Manifests:
    """Parse every ``*.yaml``/``*.yml`` file in ``directory`` (multi-document files allowed)."""
    if not directory.is_dir():
        raise ManifestError(f"{directory} is not a directory")
    documents: list[tuple[str, Any]] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            documents.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            raise ManifestError(f"{path}: {exc}") from exc
    return parse(documents)


def parse(documents: Iterable[tuple[str, Any]]) -> Manifests:
    """Manifests from ``(origin, document)`` pairs; skips unknown kinds and empty documents."""
    brokers: list[Broker] = []
    triggers: list[Trigger] = []
    rabbitmq_sources: list[RabbitmqSource] = []
    ping_sources: list[PingSource] = []
    for origin, document in documents:
        if document is None:
            continue
        doc = _mapping(document, origin)
        kind = doc.get("kind")
        where = f"{origin}: {kind}/{_mapping(doc.get('metadata'), origin).get('name')}"
        if kind == "Broker":
            brokers.append(_broker(doc, where))
        elif kind == "Trigger":
            triggers.append(_trigger(doc, where))
        elif kind == "RabbitmqSource":
            rabbitmq_sources.append(_rabbitmq_source(doc, where))
        elif kind == "PingSource":
            ping_sources.append(_ping_source(doc, where))
    manifests = Manifests(
        tuple(brokers), tuple(triggers), tuple(rabbitmq_sources), tuple(ping_sources)
    )
    for trigger in triggers:
        if manifests.broker(trigger.broker, trigger.namespace) is None:
            raise ManifestError(f"Trigger {trigger.name}: no Broker {trigger.broker!r}")
    names = [trigger.name for trigger in triggers]
    if len(set(names)) != len(names):
        raise ManifestError(f"Trigger names must be unique, got {names}")
    return manifests


def _broker(doc: Mapping[str, Any], where: str) -> Broker:
    name, namespace = _identity(doc, where)
    spec = _mapping(doc.get("spec"), where)
    return Broker(name, namespace, _delivery(spec.get("delivery"), f"{where}: delivery"))


def _trigger(doc: Mapping[str, Any], where: str) -> Trigger:
    name, namespace = _identity(doc, where)
    spec = _mapping(doc.get("spec"), where)
    attributes = _mapping(_mapping(spec.get("filter"), where).get("attributes"), where)
    annotations = _mapping(_mapping(doc.get("metadata"), where).get("annotations"), where)
    return Trigger(
        name=name,
        namespace=namespace,
        broker=_text(spec.get("broker"), f"{where}: spec.broker"),
        filter={str(key): _filter_value(value, where) for key, value in attributes.items()},
        subscriber=_destination(spec.get("subscriber"), f"{where}: subscriber"),
        delivery=_delivery(spec.get("delivery"), f"{where}: delivery"),
        parallelism=_parallelism(annotations.get(PARALLELISM_ANNOTATION, 1), where),
    )


def _rabbitmq_source(doc: Mapping[str, Any], where: str) -> RabbitmqSource:
    name, namespace = _identity(doc, where)
    spec = _mapping(doc.get("spec"), where)
    config = _mapping(spec.get("rabbitmqResourcesConfig"), where)
    return RabbitmqSource(
        name=name,
        namespace=namespace,
        exchange=_text(config.get("exchangeName"), f"{where}: exchangeName"),
        queue=_text(config.get("queueName"), f"{where}: queueName"),
        parallelism=_parallelism(config.get("parallelism", 1), where),
        sink=_destination(spec.get("sink"), f"{where}: sink"),
        delivery=_delivery(spec.get("delivery"), f"{where}: delivery"),
    )


def _ping_source(doc: Mapping[str, Any], where: str) -> PingSource:
    name, namespace = _identity(doc, where)
    spec = _mapping(doc.get("spec"), where)
    content_type = spec.get("contentType")
    return PingSource(
        name=name,
        namespace=namespace,
        schedule=_text(spec.get("schedule"), f"{where}: schedule"),
        content_type=None if content_type is None else _text(content_type, where),
        data=str(spec.get("data", "")),
        sink=_destination(spec.get("sink"), f"{where}: sink"),
    )


def _identity(doc: Mapping[str, Any], where: str) -> tuple[str, str]:
    metadata = _mapping(doc.get("metadata"), where)
    name = _text(metadata.get("name"), f"{where}: metadata.name")
    return name, str(metadata.get("namespace") or DEFAULT_NAMESPACE)


def _delivery(value: Any, where: str) -> DeliverySpec | None:
    if value is None:
        return None
    spec = _mapping(value, where)
    retry = spec.get("retry", 0)
    if not isinstance(retry, int) or retry < 0:
        raise ManifestError(f"{where}: retry must be an integer >= 0")
    policy = spec.get("backoffPolicy", "exponential")
    if policy not in ("exponential", "linear"):
        raise ManifestError(f"{where}: backoffPolicy must be exponential or linear")
    delay = spec.get("backoffDelay")
    timeout = spec.get("timeout")
    dead_letter_sink = spec.get("deadLetterSink")
    return DeliverySpec(
        retry=retry,
        backoff_policy=cast(BackoffPolicy, policy),
        backoff_delay=DEFAULT_BACKOFF_DELAY if delay is None else parse_duration(str(delay)),
        dead_letter_sink=None
        if dead_letter_sink is None
        else _destination(dead_letter_sink, f"{where}: deadLetterSink"),
        timeout=None if timeout is None else parse_duration(str(timeout)),
    )


def _destination(value: Any, where: str) -> Destination:
    spec = _mapping(value, where)
    uri = spec.get("uri")
    ref = None
    if spec.get("ref") is not None:
        raw = _mapping(spec["ref"], where)
        ref = Ref(
            kind=_text(raw.get("kind"), f"{where}: ref.kind"),
            name=_text(raw.get("name"), f"{where}: ref.name"),
            api_version=str(raw.get("apiVersion", "")),
        )
    if ref is None and not uri:
        raise ManifestError(f"{where}: needs a ref or a uri")
    return Destination(ref, None if uri is None else _text(uri, f"{where}: uri"))


def _parallelism(value: Any, where: str) -> int:
    try:
        parallelism = int(value)
    except (TypeError, ValueError):
        parallelism = 0
    if not 1 <= parallelism <= 1000:
        raise ManifestError(f"{where}: parallelism must be an integer from 1 to 1000")
    return parallelism


def _filter_value(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where}: filter values must be strings, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: expected a non-empty string")
    return value
