"""The event sources: RabbitmqSource (MinIO's notifications) and PingSource (the reconcile timer).

RabbitmqSource, as eventing-rabbitmq's adapter (``pkg/rabbit/message.go``) converts a message
that is not itself a CloudEvent: type ``dev.knative.rabbitmq.event``, source
``/apis/v1/namespaces/<ns>/rabbitmqsources/<name>#<queueName>``, id the AMQP message id,
subject = id, time the AMQP timestamp, datacontenttype the AMQP content type, data the body.
Where the adapter falls back to a random UUID for a message without an id, the emulator uses a
hash of the body, so a redelivered notification keeps its id. The message is acknowledged only
after its sink accepted the event (for a Broker sink: RabbitMQ confirmed it), else requeued.

PingSource (sources.knative.dev/v1) sends type ``dev.knative.sources.ping``, source
``/apis/v1/namespaces/<ns>/pingsources/<name>``, its ``data`` with its ``contentType``, on its
schedule; the emulator fires every interval (derived from the schedule or set explicitly).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from datetime import UTC, datetime

import pika

from local.broker.amqp import Publisher
from local.broker.delivery import Sender
from local.broker.envelope import Envelope
from local.broker.errors import PublishError
from local.broker.manifests import DeliverySpec, PingSource, RabbitmqSource
from local.broker.topology import PingRoute, Sink, SourceRoute

log = logging.getLogger(__name__)

RABBITMQ_EVENT_TYPE = "dev.knative.rabbitmq.event"
PING_EVENT_TYPE = "dev.knative.sources.ping"


def rabbitmq_event(
    source: RabbitmqSource, properties: pika.BasicProperties, body: bytes
) -> Envelope:
    """The CloudEvent a RabbitmqSource makes of a plain AMQP message."""
    event_id = properties.message_id or hashlib.sha256(body).hexdigest()
    sent = (
        datetime.fromtimestamp(properties.timestamp, UTC)
        if properties.timestamp
        else datetime.now(UTC)
    )
    attributes = {
        "specversion": "1.0",
        "id": event_id,
        "type": RABBITMQ_EVENT_TYPE,
        "source": source.event_source,
        "subject": event_id,
        "time": sent.isoformat().replace("+00:00", "Z"),
    }
    if properties.content_type:
        attributes["datacontenttype"] = properties.content_type
    return Envelope(attributes, body)


def ping_event(source: PingSource) -> Envelope:
    attributes = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": PING_EVENT_TYPE,
        "source": source.event_source,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    if source.content_type:
        attributes["datacontenttype"] = source.content_type
    return Envelope(attributes, source.data.encode())


class SinkSender:
    """Sends an envelope to a resolved sink: a Broker (confirmed publish) or a URL (HTTP)."""

    def __init__(self, publisher: Publisher, sender: Sender) -> None:
        self._publisher = publisher
        self._sender = sender

    def send(self, envelope: Envelope, sink: Sink, delivery: DeliverySpec | None) -> str | None:
        """None once the sink accepted ``envelope``, else why it did not."""
        if sink.exchange is not None:
            try:
                self._publisher.publish(envelope, exchange=sink.exchange)
            except PublishError as exc:
                return str(exc)
            return None
        assert sink.url is not None
        outcome = self._sender.send(envelope, sink.url, delivery or DeliverySpec())
        return None if outcome.delivered else outcome.response.describe()


class SourceHandler:
    """Turns the messages of a RabbitmqSource queue into events for its sink."""

    def __init__(self, route: SourceRoute, sink: SinkSender) -> None:
        self.route = route
        self._sink = sink

    def __call__(self, properties: pika.BasicProperties, body: bytes) -> bool:
        envelope = rabbitmq_event(self.route.source, properties, body)
        error = self._sink.send(envelope, self.route.sink, self.route.source.delivery)
        name = self.route.source.name
        if error is not None:
            log.warning(
                "source %s: %s not accepted by %s (%s); requeued",
                name,
                envelope.id,
                self.route.sink,
                error,
            )
            return False
        log.info("source %s: sent %s to %s", name, envelope.id, self.route.sink)
        return True


class PingTimer:
    """Fires a PingSource's event every ``interval`` seconds in its own thread."""

    def __init__(
        self, route: PingRoute, sink: SinkSender, *, interval: float, stop: threading.Event
    ) -> None:
        self.route = route
        self._sink = sink
        self._interval = interval
        self._stop = stop
        self._thread = threading.Thread(
            target=self._run, name=f"ping-{route.source.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            envelope = ping_event(self.route.source)
            error = self._sink.send(envelope, self.route.sink, None)
            name = self.route.source.name
            if error is None:
                log.info("ping %s: sent %s to %s", name, envelope.id, self.route.sink)
            else:
                log.warning(
                    "ping %s: %s not accepted by %s: %s", name, envelope.id, self.route.sink, error
                )
