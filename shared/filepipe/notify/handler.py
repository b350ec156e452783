"""Routing of the CloudEvents the notify function receives.

- ``file.uploaded`` / ``file.processed`` / ``file.rejected`` / ``file.failed`` (Triggers
  ``notify-file-*``): published on Redis for the WebSocket gateway (``filepipe.realtime``,
  best-effort, never raises), then queued for the tenant's webhooks with their first attempts
  made at once (``filepipe.notify.webhooks``);
- ``dev.knative.sources.ping`` (PingSource ``webhook-retries``): retry due webhook deliveries.
Anything else is logged and acknowledged. A PostgreSQL failure raises, so the broker redelivers
the event; re-queuing it is idempotent.
"""

from __future__ import annotations

import logging

from cloudevents.http import CloudEvent

from filepipe import logs, runtime, telemetry
from filepipe.events import PING
from filepipe.notify import realtime
from filepipe.notify.webhooks import EVENT_TYPES, deliver_event, sweep

log = logging.getLogger(__name__)

PING_SWEEP_LIMIT = 1000
PING_SWEEP_BUDGET = 20.0
"""Seconds a ping's sweep may take (attempts then left wait for the next ping)."""


@logs.bound()
def handle(event: CloudEvent) -> None:
    """Route one CloudEvent (its log records share one scope)."""
    rt = runtime.current()
    event_type = event["type"]
    if event_type == PING:
        made = sweep(rt.pool, rt.settings, limit=PING_SWEEP_LIMIT, budget=PING_SWEEP_BUDGET)
        log.info("webhook retries swept", extra={"attempts": made})
        return
    if event_type not in EVENT_TYPES:
        log.warning("ignored event", extra={"type": event_type, "id": event["id"]})
        return
    data = event.get_data()
    if isinstance(data, dict):
        logs.bind(file_id=data.get("file_id"), tenant=data.get("tenant"))
    attributes = {"cloudevents.event_id": event["id"], "cloudevents.event_type": event_type}
    with telemetry.span_from(
        f"notify {event_type}", event.get("traceparent"), attributes=attributes
    ):
        realtime.publish(rt.redis, event)
        deliver_event(rt.pool, rt.settings, event)
