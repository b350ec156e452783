"""The broker emulator as a real process against RabbitMQ, with real HTTP subscribers."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest
import requests
import yaml
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from tests.support.broker import amqp_channel, delete, queue_depth, replay
from tests.support.processes import running
from tests.support.receiver import Receiver, Reply, receiving
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.integration

SERVICES = ("process", "notify", "flaky", "doomed", "dls", "picky", "replier", "answers")
TRIGGERS = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
spec:
  delivery: {retry: 1, backoffPolicy: linear, backoffDelay: PT0.5S}
---
{trigger: proc, type: dev.knative.rabbitmq.event, service: process}
---
{trigger: notes, type: test.note, service: notify, tenant: a}
---
{trigger: flaky, type: test.flaky, service: flaky}
---
{trigger: doomed, type: test.doomed, service: doomed, dls: dls}
---
{trigger: rejected, type: test.reject, service: picky}
---
{trigger: asks, type: test.ask, service: replier}
---
{trigger: answers, type: test.answer, service: answers}
---
apiVersion: sources.knative.dev/v1alpha1
kind: RabbitmqSource
metadata: {name: minio-notifications}
spec:
  rabbitmqResourcesConfig: {exchangeName: overridden, queueName: minio-notifications}
  sink: {ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: reconcile}
spec:
  schedule: "* * * * *"
  contentType: application/json
  data: '{"task":"reconcile"}'
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: process}, uri: /reconcile}
"""
MINIO_NOTIFICATION = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "uploads/tenant-a/0b1c2d3e/report 2026.pdf",
    "Records": [
        {
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "bucket": {"name": "uploads"},
                "object": {"key": "tenant-a%2F0b1c2d3e%2Freport+2026.pdf", "size": 84452},
            },
        }
    ],
}


def trigger_yaml(
    trigger: str, type: str, service: str, dls: str | None = None, **filters: str
) -> str:
    """A Trigger with retry 2 (exponential, PT0.5S) and an optional dead-letter sink."""
    service_ref = "apiVersion: serving.knative.dev/v1, kind: Service"
    sink = f"deadLetterSink: {{ref: {{{service_ref}, name: {dls}}}, uri: /dead-letter}}, "
    attributes = ", ".join(f"{key}: {value}" for key, value in {"type": type, **filters}.items())
    return (
        f"apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {{name: {trigger}}}\n"
        f"spec:\n  broker: default\n  filter: {{attributes: {{{attributes}}}}}\n"
        f"  subscriber: {{ref: {{{service_ref}, name: {service}}}}}\n"
        f"  delivery: {{{sink if dls else ''}retry: 2, backoffPolicy: exponential, "
        "backoffDelay: PT0.5S}\n"
    )


def write_manifests(directory: Path, text: str) -> list[str]:
    """Write ``text`` (with ``{trigger: …}`` shorthands) as a manifest; return the Trigger names."""
    documents, triggers = [], []
    for document in text.split("\n---\n"):
        if document.strip().startswith("{trigger:"):
            spec = yaml.safe_load(document)
            triggers.append(spec["trigger"])
            document = trigger_yaml(**spec)
        documents.append(document)
    (directory / "eventing.yaml").write_text("\n---\n".join(documents))
    return triggers


@dataclass(frozen=True)
class Emulator:
    url: str
    prefix: str
    env: dict[str, str]
    receiver: Receiver
    source_exchange: str

    def post(self, headers: dict[str, str], body: bytes, path: str = "/") -> requests.Response:
        return requests.post(self.url + path, headers=headers, data=body, timeout=10)

    def post_event(self, event: CloudEvent) -> None:
        headers, body = to_binary(event)
        response = self.post(headers, body)
        assert response.status_code == 202, response.text

    def dlq(self, trigger: str) -> str:
        return f"{self.prefix}.{trigger}.dlq"


def emulator_env(directory: Path, receiver: Receiver, port: int, prefix: str) -> dict[str, str]:
    return {
        "FILEPIPE_BROKER_PORT": str(port),
        "FILEPIPE_KNATIVE_DIR": str(directory),
        "FILEPIPE_SUBSCRIBERS": ",".join(f"{s}={receiver.url}/{s}" for s in SERVICES),
        "FILEPIPE_BROKER_PREFIX": prefix,
        "FILEPIPE_S3_NOTIFY_EXCHANGE": f"{prefix}.minio",
        "FILEPIPE_PING_INTERVAL": "0.3",
        "FILEPIPE_BROKER_BACKOFF_SCALE": "0.02",
        "FILEPIPE_BROKER_DELIVERY_TIMEOUT": "5",
        "FILEPIPE_LOG_LEVEL": "INFO",
    }


def cleanup(prefix: str, triggers: list[str]) -> None:
    queues = [f"{prefix}.{t}{suffix}" for t in triggers for suffix in ("", ".dlq")]
    delete(
        [*queues, f"{prefix}.source.minio-notifications"],
        [f"{prefix}.default", f"{prefix}.minio"],
    )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    directory = tmp_path_factory.mktemp("knative")
    triggers = write_manifests(directory, TRIGGERS)
    prefix = f"test.{uuid.uuid4().hex[:8]}"
    port = free_port()
    with receiving() as receiver:
        env = emulator_env(directory, receiver, port, prefix)
        try:
            with running(["-m", "local.broker"], port=port, env=env):
                yield Emulator(f"http://127.0.0.1:{port}", prefix, env, receiver, f"{prefix}.minio")
        finally:
            cleanup(prefix, triggers)


def event(type: str, **attributes: str) -> CloudEvent:
    return CloudEvent(
        {
            "type": type,
            "source": "/filepipe/test",
            "id": str(uuid.uuid4()),
            "datacontenttype": "application/json",
            **attributes,
        },
        {"file_id": "f-1", "tenant": "a"},
    )


def test_binary_event_reaches_only_matching_triggers_with_attributes_intact(
    emulator: Emulator,
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    other_tenant = event("test.note", tenant="b")
    wanted = event("test.note", tenant="a", subject="f-1", traceparent=traceparent)
    emulator.post_event(other_tenant)
    headers, body = to_binary(wanted)
    assert emulator.post(headers, body, path="/default/default").status_code == 202

    # One FIFO queue (parallelism 1): once `wanted` arrives, `other_tenant` was filtered out.
    [got] = emulator.receiver.wait_for("/notify", id=wanted["id"])
    for name in ("id", "source", "type", "specversion", "subject", "time", "tenant"):
        assert got.ce(name) == wanted[name]
    assert got.ce("traceparent") == traceparent
    assert got.headers["traceparent"] == traceparent
    assert got.headers["content-type"] == "application/json"
    assert got.body == body
    assert emulator.receiver.requests("/notify", other_tenant["id"]) == []
    assert [r.path for r in emulator.receiver.all_requests() if r.ce("id") == wanted["id"]] == [
        "/notify"
    ]


def test_structured_event_is_delivered_in_binary_mode(emulator: Emulator) -> None:
    sent = event("test.flaky", tenant="z")
    headers, body = to_structured(sent)
    assert emulator.post(headers, body).status_code == 202

    [got] = emulator.receiver.wait_for("/flaky", id=sent["id"])
    assert (got.ce("id"), got.ce("type"), got.ce("tenant")) == (sent["id"], "test.flaky", "z")
    assert json.loads(got.body) == sent.data


def test_ingress_rejects_what_is_not_a_cloudevent(emulator: Emulator) -> None:
    bad = emulator.post({"Content-Type": "application/json"}, b'{"hello": "world"}')
    assert bad.status_code == 400
    assert bad.headers["Content-Type"] == "application/problem+json"
    assert bad.json()["status"] == 400
    headers, body = to_binary(event("test.note"))
    assert emulator.post(headers, body, path="/default/nope").status_code == 404
    assert requests.get(emulator.url + "/healthz", timeout=5).status_code == 200


def test_subscriber_failing_twice_gets_the_event_three_times(emulator: Emulator) -> None:
    emulator.receiver.plan("/flaky", 503, 503)
    sent = event("test.flaky")
    emulator.post_event(sent)

    assert len(emulator.receiver.wait_for("/flaky", 3, id=sent["id"])) == 3
    assert queue_depth(emulator.dlq("flaky")) == 0


def test_exhausted_retries_dead_letter_then_replay_delivers_again(emulator: Emulator) -> None:
    emulator.receiver.plan("/doomed", *(Reply(500, b"boom") for _ in range(3)))
    sent = event("test.doomed")
    emulator.post_event(sent)

    [dead] = emulator.receiver.wait_for("/dls/dead-letter", id=sent["id"])
    assert dead.ce("knativeerrorcode") == "500"
    assert dead.ce("knativeerrordest") == f"{emulator.receiver.url}/doomed"
    assert dead.ce("knativeerrordata") == base64.b64encode(b"boom").decode()
    assert len(emulator.receiver.requests("/doomed", sent["id"])) == 3
    wait_until(lambda: queue_depth(emulator.dlq("doomed")) == 1, what="the dead letter in the DLQ")

    assert replay(emulator.env, "doomed") == 1
    again = emulator.receiver.wait_for("/doomed", 4, id=sent["id"])[3]
    assert again.ce("knativeerrorcode") is None
    assert queue_depth(emulator.dlq("doomed")) == 0


def test_non_retriable_status_dead_letters_at_once_with_its_code(emulator: Emulator) -> None:
    emulator.receiver.plan("/picky", 422)
    sent = event("test.reject")
    emulator.post_event(sent)

    wait_until(lambda: queue_depth(emulator.dlq("rejected")) == 1, what="the dead letter")
    assert len(emulator.receiver.requests("/picky", sent["id"])) == 1
    with amqp_channel() as channel:
        method, properties, _ = channel.basic_get(emulator.dlq("rejected"), auto_ack=True)
    assert method is not None
    assert properties.headers["id"] == sent["id"]
    assert properties.headers["knativeerrorcode"] == "422"


def test_minio_notification_reaches_process_as_rabbitmq_event(emulator: Emulator) -> None:
    body = json.dumps(MINIO_NOTIFICATION).encode()
    with amqp_channel() as channel:
        channel.basic_publish(
            emulator.source_exchange,
            "",
            body,
            pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                headers={"minio-bucket": "uploads", "minio-event": "s3:ObjectCreated:Put"},
            ),
        )

    [got] = emulator.receiver.wait_for("/process", id=hashlib.sha256(body).hexdigest())
    assert got.ce("type") == "dev.knative.rabbitmq.event"
    assert got.ce("source") == (
        "/apis/v1/namespaces/default/rabbitmqsources/minio-notifications#minio-notifications"
    )
    assert got.ce("id") == got.ce("subject") == hashlib.sha256(body).hexdigest()
    assert got.headers["content-type"] == "application/json"
    assert got.body == body


def test_ping_source_fires_on_its_interval(emulator: Emulator) -> None:
    pings = emulator.receiver.wait_for("/process/reconcile", 2)
    assert {p.ce("type") for p in pings} == {"dev.knative.sources.ping"}
    assert pings[0].ce("source") == "/apis/v1/namespaces/default/pingsources/reconcile"
    assert json.loads(pings[0].body) == {"task": "reconcile"}
    assert pings[0].ce("id") != pings[1].ce("id")


def test_reply_event_is_published_back_to_the_broker(emulator: Emulator) -> None:
    answer = event("test.answer", subject="f-1")
    headers, body = to_binary(answer)
    emulator.receiver.plan("/replier", Reply(200, body, headers))
    emulator.post_event(event("test.ask"))

    [got] = emulator.receiver.wait_for("/answers", id=answer["id"])
    assert got.ce("subject") == "f-1"


def test_killed_emulator_redelivers_after_restart(tmp_path: Path) -> None:
    triggers = write_manifests(
        tmp_path,
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n"
        "---\n{trigger: slow, type: test.slow, service: notify}",
    )
    prefix = f"test.{uuid.uuid4().hex[:8]}"
    port = free_port()
    with receiving() as receiver:
        env = {**emulator_env(tmp_path, receiver, port, prefix), "FILEPIPE_PING_INTERVAL": "0"}
        release = threading.Event()
        receiver.plan("/notify", Reply(200, hold=release))
        sent = event("test.slow")
        try:
            with running(["-m", "local.broker"], port=port, env=env) as first:
                headers, body = to_binary(sent)
                requests.post(f"http://127.0.0.1:{port}/", headers=headers, data=body, timeout=5)
                receiver.wait_for("/notify")
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(10)
            release.set()
            with running(["-m", "local.broker"], port=port, env=env) as second:
                receiver.wait_for("/notify", 2, id=sent["id"])
            assert second.returncode == 0  # SIGTERM stops it cleanly
        finally:
            cleanup(prefix, triggers)
