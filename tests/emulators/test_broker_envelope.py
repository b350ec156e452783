"""CloudEvents in and out of the emulator: HTTP modes, AMQP storage, dead letters, sources."""

from __future__ import annotations

import base64
import hashlib
import json

import pika
import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from local.broker.delivery import retriable
from local.broker.envelope import (
    Envelope,
    dead_letter,
    error_data,
    from_amqp,
    is_cloudevent,
    parse_http,
)
from local.broker.errors import InvalidEvent
from local.broker.manifests import Destination, PingSource, RabbitmqSource
from local.broker.sources import ping_event, rabbitmq_event

ATTRIBUTES = {
    "id": "e-1",
    "source": "/filepipe/process",
    "type": "file.processed",
    "subject": "f-1",
    "time": "2026-11-28T21:14:03Z",
    "datacontenttype": "application/json",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tenant": "a",
}


def test_binary_mode_keeps_attributes_and_the_exact_body() -> None:
    body = b'{"file_id":  "f-1"}'
    headers = {f"ce-{k}": v for k, v in ATTRIBUTES.items() if k != "datacontenttype"}
    envelope = parse_http(
        {**headers, "Content-Type": "application/json", "ce-specversion": "1.0"}, body
    )

    assert envelope.attributes == {**ATTRIBUTES, "specversion": "1.0"}
    assert envelope.data == body


def test_structured_mode_becomes_the_same_event_with_json_data() -> None:
    event = CloudEvent(ATTRIBUTES, {"file_id": "f-1", "size": 3, "ok": True})
    headers, body = to_structured(event)
    envelope = parse_http(headers, body)

    assert envelope.attributes == {**ATTRIBUTES, "specversion": "1.0"}
    assert json.loads(envelope.data) == {"file_id": "f-1", "size": 3, "ok": True}


def test_structured_text_and_base64_data_keep_their_bytes() -> None:
    text = CloudEvent({**ATTRIBUTES, "datacontenttype": "text/plain"}, "hello")
    assert parse_http(*to_structured(text)).data == b"hello"
    raw = {
        **ATTRIBUTES,
        "specversion": "1.0",
        "data_base64": base64.b64encode(b"\x00\xff").decode(),
    }
    structured = {"Content-Type": "application/cloudevents+json"}
    assert parse_http(structured, json.dumps(raw).encode()).data == b"\x00\xff"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b'{"hello": "world"}'),
        ({"Content-Type": "text/plain"}, b"hello"),
        ({"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s"}, b""),
        ({"ce-specversion": "1.0", "ce-type": "", "ce-source": "s", "ce-id": "1"}, b""),
        ({"ce-specversion": "9.9", "ce-type": "t", "ce-source": "s", "ce-id": "1"}, b""),
    ],
)
def test_refuses_what_is_not_a_cloudevent(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(InvalidEvent):
        parse_http(headers, body)


def test_http_binary_headers_carry_every_attribute_and_the_trace_context() -> None:
    envelope = Envelope({**ATTRIBUTES, "specversion": "1.0"}, b"{}")
    headers = envelope.http_headers()

    assert headers["Content-Type"] == "application/json"
    assert "ce-datacontenttype" not in headers
    assert headers["ce-tenant"] == "a"
    assert headers["traceparent"] == headers["ce-traceparent"] == ATTRIBUTES["traceparent"]
    assert parse_http(headers, envelope.data) == envelope


def test_header_values_beyond_printable_ascii_are_percent_encoded() -> None:
    envelope = Envelope({**ATTRIBUTES, "specversion": "1.0", "subject": "résumé 100%"}, b"")
    assert envelope.http_headers()["ce-subject"] == "r%C3%A9sum%C3%A9 100%25"
    assert envelope.with_attributes(subject="100%").http_headers()["ce-subject"] == "100%"


def test_amqp_storage_round_trips_and_is_persistent() -> None:
    envelope = Envelope({**ATTRIBUTES, "specversion": "1.0"}, b'{"a": 1}')
    properties = envelope.amqp_properties()

    assert (properties.message_id, properties.delivery_mode) == ("e-1", 2)
    assert properties.content_type == "application/json"
    assert from_amqp(properties, envelope.data) == envelope
    with pytest.raises(InvalidEvent):
        from_amqp(pika.BasicProperties(headers={"minio-bucket": "uploads"}), b"{}")


def test_dead_letters_carry_knative_error_extensions() -> None:
    envelope = Envelope({**ATTRIBUTES, "specversion": "1.0"}, b"{}")
    dead = dead_letter(envelope, destination="http://sub/x", status=503, body=b"down")

    assert dead.attributes["knativeerrordest"] == "http://sub/x"
    assert dead.attributes["knativeerrorcode"] == "503"
    assert base64.b64decode(dead.attributes["knativeerrordata"]) == b"down"
    assert dead.without(["knativeerrordest", "knativeerrorcode", "knativeerrordata"]) == envelope


def test_error_data_is_cut_to_1024_base64_characters() -> None:
    data = error_data(b"x" * 5000)
    assert len(data) == 1024
    assert base64.b64decode(data) == b"x" * 768
    assert error_data(b"") == ""


def test_only_cloudevent_responses_count_as_replies() -> None:
    headers, _ = to_binary(CloudEvent({"type": "t", "source": "s"}, None))
    assert is_cloudevent(headers)
    assert is_cloudevent({"Content-Type": "application/cloudevents+json"})
    assert not is_cloudevent({"Content-Type": "text/plain"})


@pytest.mark.parametrize("status", [0, 404, 408, 409, 429, 500, 503])
def test_retries_what_knative_retries(status: int) -> None:
    assert retriable(status)


@pytest.mark.parametrize("status", [302, 400, 401, 422])
def test_fails_other_statuses_at_once(status: int) -> None:
    assert not retriable(status)


SOURCE = RabbitmqSource("minio-notifications", "minio-events", "q", Destination(uri="http://x"))


def test_rabbitmq_source_event_takes_the_message_id_or_hashes_the_body() -> None:
    body = b'{"EventName": "s3:ObjectCreated:Put"}'
    with_id = rabbitmq_event(
        SOURCE,
        pika.BasicProperties(message_id="m-1", content_type="application/json", timestamp=0),
        body,
    )
    assert with_id.attributes["id"] == with_id.attributes["subject"] == "m-1"
    assert with_id.attributes["type"] == "dev.knative.rabbitmq.event"
    assert (
        with_id.attributes["source"]
        == "/apis/v1/namespaces/default/rabbitmqsources/minio-notifications#q"
    )
    assert with_id.attributes["datacontenttype"] == "application/json"
    assert with_id.data == body

    stamped = rabbitmq_event(SOURCE, pika.BasicProperties(timestamp=1700000000), body)
    assert stamped.id == hashlib.sha256(body).hexdigest()
    assert stamped.attributes["time"] == "2023-11-14T22:13:20Z"
    assert "datacontenttype" not in stamped.attributes


def test_ping_event_carries_the_sources_data() -> None:
    source = PingSource(
        "reconcile",
        "* * * * *",
        Destination(uri="http://x"),
        content_type="application/json",
        data='{"task":"reconcile"}',
    )
    first, second = ping_event(source), ping_event(source)

    assert first.type == "dev.knative.sources.ping"
    assert first.attributes["source"] == "/apis/v1/namespaces/default/pingsources/reconcile"
    assert first.attributes["datacontenttype"] == "application/json"
    assert first.data == b'{"task":"reconcile"}'
    assert first.id != second.id
