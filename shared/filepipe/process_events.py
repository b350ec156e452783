"""Routing of the CloudEvents the process function receives.

- ``dev.knative.rabbitmq.event`` (MinIO notification via RabbitmqSource): process the objects;
- the same with a ``knativeerrorcode`` extension (from the dead-letter sink): mark FAILED;
- ``dev.knative.sources.ping`` (PingSource): reconcile.
A malformed notification is logged and acknowledged: retrying cannot fix it.
"""

from __future__ import annotations

import base64
import binascii
import logging

from cloudevents.http import CloudEvent

from filepipe import logs, runtime
from filepipe.notifications import RABBITMQ_EVENT, InvalidNotification, parse_notification
from filepipe.processing import process_notification
from filepipe.reconcile import fail_dead_letter, reconcile

log = logging.getLogger(__name__)

PING_EVENT = "dev.knative.sources.ping"
ERROR_CODE = "knativeerrorcode"


def handle(event: CloudEvent) -> None:
    with logs.bound():
        _handle(event)


def _handle(event: CloudEvent) -> None:
    rt = runtime.current()
    event_type = event["type"]
    if event_type == PING_EVENT:
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
    dead_letter_reason = _dead_letter_reason(event)
    for record in records:
        if dead_letter_reason:
            fail_dead_letter(rt, record, dead_letter_reason)
        else:
            process_notification(rt, record)


def _dead_letter_reason(event: CloudEvent) -> str | None:
    attributes = event.get_attributes()
    if ERROR_CODE not in attributes:
        return None
    reason = f"processing failed after every retry (last HTTP status {attributes[ERROR_CODE]})"
    data = attributes.get("knativeerrordata")
    if data:
        try:
            detail = base64.b64decode(str(data), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            detail = str(data)
        reason += f": {detail.strip()[:300]}"
    return reason
