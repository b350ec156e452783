"""The Knative manifests: parsing, Trigger filters and the topology built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from local.broker.config import Settings
from local.broker.errors import ManifestError
from local.broker.manifests import DeliverySpec, Destination, Ref, Trigger, load, parse
from local.broker.topology import Sink, build

ROOT = Path(__file__).resolve().parents[2]
NOTIFY_TYPES = (
    "file.uploaded",
    "file.processed",
    "file.rejected",
    "file.failed",
    "file.quarantined",
    "file.cancelled",
    "file.deleted",
    "file.missing",
)


def documents(text: str) -> list[tuple[str, Any]]:
    return [("test.yaml", doc) for doc in yaml.safe_load_all(text)]


BROKER = "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n"


def trigger(spec: str, name: str = "t") -> str:
    return f"---\nkind: Trigger\nmetadata: {{name: {name}}}\nspec: {spec}\n"


def test_the_repository_manifests_describe_the_pipeline() -> None:
    manifests = load(ROOT / "knative" / "eventing")

    assert [b.name for b in manifests.brokers] == ["default"]
    by_name = {t.name: t for t in manifests.triggers}
    process = by_name["process-object-created"]
    assert process.filter == {"type": "dev.knative.rabbitmq.event"}
    assert process.subscriber == Destination(Ref("Service", "process", "serving.knative.dev/v1"))
    assert process.delivery == DeliverySpec(
        retry=5,
        backoff_policy="exponential",
        backoff_delay=1.0,
        dead_letter_sink=Destination(
            Ref("Service", "process", "serving.knative.dev/v1"), "/dead-letter"
        ),
    )
    # the real dispatcher's workers sleep through retries: room for files that keep failing
    assert process.parallelism == 16
    notify = [
        t
        for t in manifests.triggers
        if t.subscriber.ref == Ref("Service", "notify", "serving.knative.dev/v1")
    ]
    assert sorted(t.filter["type"] for t in notify) == sorted(NOTIFY_TYPES)
    assert all(
        t.delivery and t.delivery.retry == 5 and not t.delivery.dead_letter_sink for t in notify
    )

    [source] = manifests.rabbitmq_sources
    assert (source.name, source.exchange, source.queue) == (
        "minio-notifications",
        "minio-events",
        "minio-notifications",
    )
    assert source.sink.ref == Ref("Broker", "default", "eventing.knative.dev/v1")
    pings = {p.name: p for p in manifests.ping_sources}
    assert sorted(pings) == ["reconcile", "webhook-retries"]
    ping = pings["reconcile"]
    assert (ping.schedule, ping.content_type, ping.data) == (
        "* * * * *",
        "application/json",
        '{"task":"reconcile"}',
    )
    assert ping.sink.uri == "/reconcile"
    retries = pings["webhook-retries"]
    assert retries.sink == Destination(
        Ref("Service", "notify", "serving.knative.dev/v1"), "/webhook-retries"
    )


def test_topology_names_queues_and_resolves_services_with_their_uri() -> None:
    topology = build(load(ROOT / "knative" / "eventing"), Settings(prefix="p"))

    route = topology.trigger("process-object-created")
    assert (route.exchange, route.queue, route.dlq) == (
        "p.default",
        "p.process-object-created",
        "p.process-object-created.dlq",
    )
    assert route.subscriber == "http://127.0.0.1:8082"
    assert route.dead_letter_sink == "http://127.0.0.1:8082/dead-letter"
    assert topology.trigger("notify-file-failed").dead_letter_sink is None
    [source] = topology.sources
    assert (source.exchange, source.queue, source.sink) == (
        "minio-events",
        "p.source.minio-notifications",
        Sink(exchange="p.default"),
    )
    assert {p.source.name: p.sink for p in topology.pings} == {
        "reconcile": Sink(url="http://127.0.0.1:8082/reconcile"),
        "webhook-retries": Sink(url="http://127.0.0.1:8084/webhook-retries"),
    }


def test_source_exchange_can_be_overridden() -> None:
    settings = Settings(source_exchange="other")
    [source] = build(load(ROOT / "knative" / "eventing"), settings).sources
    assert source.exchange == "other"


@pytest.mark.parametrize(
    ("attributes", "matches"),
    [
        ({"type": "file.uploaded", "tenant": "a", "id": "1"}, True),
        ({"type": "file.uploaded", "tenant": "b"}, False),
        ({"type": "file.processed", "tenant": "a"}, False),
        ({"type": "file.uploaded"}, False),
    ],
)
def test_filters_match_attributes_and_extensions_exactly(
    attributes: dict[str, str], matches: bool
) -> None:
    t = Trigger(
        "t", "default", Destination(uri="http://x"), filter={"type": "file.uploaded", "tenant": "a"}
    )
    assert t.matches(attributes) is matches


def test_empty_filter_value_matches_any_value_of_a_present_attribute() -> None:
    t = Trigger("t", "default", Destination(uri="http://x"), filter={"subject": ""})
    assert t.matches({"subject": "anything"})
    assert not t.matches({"type": "x"})
    assert Trigger("t", "default", Destination(uri="http://x")).matches({"type": "x"})


def test_trigger_without_delivery_inherits_the_brokers() -> None:
    text = (
        "kind: Broker\nmetadata: {name: default}\n"
        "spec: {delivery: {retry: 3, backoffPolicy: linear, backoffDelay: PT2S, timeout: PT1S}}\n"
        + trigger("{broker: default, subscriber: {uri: 'http://x/y'}}")
    )
    route = build(parse(documents(text)), Settings()).trigger("t")
    assert route.delivery == DeliverySpec(
        retry=3, backoff_policy="linear", backoff_delay=2.0, timeout=1.0
    )
    assert route.subscriber == "http://x/y"
    assert route.trigger.parallelism == 1


def test_parallelism_comes_from_the_eventing_rabbitmq_annotation() -> None:
    text = BROKER + (
        "---\nkind: Trigger\nmetadata:\n  name: t\n  annotations:\n"
        "    rabbitmq.eventing.knative.dev/parallelism: '7'\n"
        "spec: {broker: default, subscriber: {uri: 'http://x'}}\n"
    )
    [t] = parse(documents(text)).triggers
    assert t.parallelism == 7


def test_skips_kinds_it_does_not_emulate() -> None:
    text = "kind: RabbitmqBrokerConfig\nmetadata: {name: c}\n---\n" + BROKER + "---\n"
    assert len(parse(documents(text)).brokers) == 1


@pytest.mark.parametrize(
    "spec",
    [
        "{broker: nope, subscriber: {uri: 'http://x'}}",
        "{broker: default}",
        "{broker: default, subscriber: {uri: 'http://x'}, delivery: {backoffPolicy: random}}",
        "{broker: default, subscriber: {uri: 'http://x'}, delivery: {retry: -1}}",
        "{broker: default, subscriber: {uri: 'http://x'}, delivery: {backoffDelay: 5s}}",
        "{broker: default, subscriber: {uri: 'http://x'}, filter: {attributes: {version: 1}}}",
    ],
)
def test_refuses_malformed_triggers(spec: str) -> None:
    with pytest.raises(ManifestError):
        parse(documents(BROKER + trigger(spec)))


def test_refuses_a_service_without_a_subscriber_url() -> None:
    text = BROKER + trigger("{broker: default, subscriber: {ref: {kind: Service, name: ghost}}}")
    with pytest.raises(ManifestError, match="FILEPIPE_SUBSCRIBERS"):
        build(parse(documents(text)), Settings())
