"""The gateway's fan-out of an event continues the event's trace (its ``traceparent``)."""

from __future__ import annotations

import json
from typing import Any, cast

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from filepipe import telemetry
from filepipe.config import Settings
from filepipe.notify import realtime
from filepipe.notify.gateway.hub import Subscriber
from filepipe.notify.gateway.server import Gateway

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def test_dispatch_span_is_a_child_of_the_events_traceparent() -> None:
    gateway = Gateway(Settings(), cast(Any, None))  # no handshake here: the pool is unused
    subscriber = Subscriber("acme", None, queue_size=1)
    gateway.hub.add(subscriber)
    event = {"specversion": "1.0", "id": "e-1", "traceparent": TRACEPARENT, "data": {}}
    exporter = InMemorySpanExporter()
    with telemetry.recording(exporter):
        for body in (json.dumps(event), "not json"):
            gateway._on_message(
                {"type": "pmessage", "channel": realtime.channel("acme"), "data": body.encode()}
            )
    traced, untraced = exporter.get_finished_spans()
    assert traced.name == "gateway dispatch" and traced.parent is not None
    assert format(traced.parent.trace_id, "032x") == TRACE_ID
    assert untraced.parent is None or format(untraced.parent.trace_id, "032x") != TRACE_ID
    assert subscriber.queue.qsize() == 1  # the second one overflowed the client
