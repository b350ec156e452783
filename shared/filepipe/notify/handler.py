"""Routing of the CloudEvents the notify function receives.

- ``file.*`` events (Triggers ``notify-file-*``): nothing in the event is trusted for identity
  or state. The event is looked up by its id in the outbox (``events``), where the function that
  made the change recorded it; one that is not there is forged or foreign and is dropped. What
  the outbox holds (tenant, file, data) is then published on Redis for the WebSocket gateway
  (``filepipe.notify.realtime``: once per event id, best-effort, never raises) and queued for
  that tenant's webhooks with their first attempts made at once (``filepipe.notify.webhooks``);
- ``dev.knative.sources.ping`` (PingSource ``webhook-retries``): retry due webhook deliveries.
Anything else is logged and acknowledged. A PostgreSQL failure raises, so the broker redelivers
the event; re-queuing it is idempotent.
"""

from __future__ import annotations

import logging

from cloudevents.http import CloudEvent

from filepipe import logs, runtime, telemetry
from filepipe.events import PING
from filepipe.files import outbox
from filepipe.notify import realtime
from filepipe.notify.webhooks import EVENT_TYPES, deliver_event, sweep

log = logging.getLogger(__name__)

PING_SWEEP_LIMIT = 1000
PING_SWEEP_BUDGET = 20.0
"""Seconds a ping's sweep may take (attempts then left wait for the next ping); at least one
attempt's deadline (``webhook_timeout``), or no attempt could start."""


@logs.bound()
def handle(event: CloudEvent) -> None:
    """Route one CloudEvent (its log records share one scope)."""
    rt = runtime.current()
    event_type = event["type"]
    if event_type == PING:
        budget = max(PING_SWEEP_BUDGET, rt.settings.webhook_timeout)
        made = sweep(rt.pool, rt.settings, limit=PING_SWEEP_LIMIT, budget=budget)
        log.info("webhook retries swept", extra={"attempts": made})
        return
    if event_type not in EVENT_TYPES:
        log.warning("ignored event", extra={"type": event_type, "id": event["id"]})
        return
    with rt.pool.connection() as conn:
        recorded = outbox.load(conn, [event["id"]])
    if not recorded or recorded[0].type != event_type:
        log.warning(
            "event not in the outbox: dropped", extra={"type": event_type, "id": event["id"]}
        )
        return
    trusted = recorded[0]
    logs.bind(file_id=trusted.file_id, tenant=trusted.tenant)
    attributes = {"cloudevents.event_id": trusted.id, "cloudevents.event_type": trusted.type}
    with telemetry.span_from(f"notify {trusted.type}", trusted.traceparent, attributes=attributes):
        cloud_event = trusted.to_cloudevent()
        realtime.publish(rt.redis, cloud_event, ttl=rt.settings.realtime_dedupe_ttl)
        deliver_event(rt.pool, rt.settings, cloud_event)
