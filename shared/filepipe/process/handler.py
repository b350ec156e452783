"""Routing of the CloudEvents the process function receives.

- ``dev.knative.rabbitmq.event`` (MinIO notification via RabbitmqSource): verify the objects;
- the same with a ``knativeerrorcode`` extension (from the dead-letter sink): mark FAILED;
- ``dev.knative.sources.ping`` (PingSource): reconcile.
A malformed notification is logged and acknowledged: retrying cannot fix it.
"""

from __future__ import annotations

import logging

from cloudevents.http import CloudEvent

from filepipe import logs, runtime
from filepipe.events import PING
from filepipe.process.bucket_events import RABBITMQ_EVENT, InvalidNotification, parse_notification
from filepipe.process.dead_letters import dead_letter_reason, fail_dead_letter
from filepipe.process.reconcile import reconcile
from filepipe.process.verify import process_notification

log = logging.getLogger(__name__)


@logs.bound()
def handle(event: CloudEvent) -> None:
    """Route one CloudEvent (its log records share one scope)."""
    rt = runtime.current()
    event_type = event["type"]
    if event_type == PING:
        reconcile(rt)
        return
    if event_type != RABBITMQ_EVENT:
        log.warning("ignored event", extra={"type": event_type, "id": event["id"]})
        return
    try:
        records = parse_notification(event.get_data())
    except InvalidNotification as exc:
        log.error(
            "malformed notification acknowledged", extra={"id": event["id"], "error": str(exc)}
        )
        return
    reason = dead_letter_reason(event)
    for record in records:
        if reason:
            fail_dead_letter(rt, record, reason)
        else:
            process_notification(rt, record)
