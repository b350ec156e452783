"""Real-time fan-out of file events over Redis pub/sub, for the WebSocket gateway.

Every event goes out as structured-mode CloudEvents JSON (CloudEvents 1.0 JSON format,
https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md) on the
channel of its tenant, ``filepipe:events:<tenant>``. Pub/sub is fire-and-forget: an event
published while nobody listens, or while Redis is down, is gone. Real time is best-effort;
webhooks and ``GET /files`` are the durable paths, so ``publish`` never raises.
"""

from __future__ import annotations

import logging

import redis
from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "filepipe:events:"
CHANNEL_PATTERN = CHANNEL_PREFIX + "*"
"""Matches every tenant's channel (tenant names can't hold glob characters: see auth.py)."""


def channel(tenant: str) -> str:
    """The pub/sub channel of ``tenant``'s events."""
    return CHANNEL_PREFIX + tenant


def tenant_of(channel_name: str | bytes) -> str | None:
    """The tenant whose channel ``channel_name`` is, or ``None`` for any other channel."""
    name = channel_name.decode() if isinstance(channel_name, bytes) else channel_name
    if not name.startswith(CHANNEL_PREFIX) or len(name) == len(CHANNEL_PREFIX):
        return None
    return name[len(CHANNEL_PREFIX) :]


def publish(client: redis.Redis, event: CloudEvent) -> None:
    """Publish ``event`` on its tenant's channel (``event.data["tenant"]``); never raises.

    An event without a tenant, one that can't be serialised, or a Redis failure is logged as a
    warning and dropped.
    """
    data = event.get_data()
    tenant = data.get("tenant") if isinstance(data, dict) else None
    event_id = event["id"]
    if not isinstance(tenant, str) or not tenant:
        log.warning("real-time event without a tenant dropped", extra={"event_id": event_id})
        return
    try:
        body = to_json(event)
    except (TypeError, ValueError) as exc:
        log.warning(
            "real-time event not serialisable, dropped",
            extra={"event_id": event_id, "error": str(exc)},
        )
        return
    try:
        client.publish(channel(tenant), body)
    except redis.RedisError as exc:
        log.warning(
            "real-time event not published (Redis unavailable)",
            extra={"event_id": event_id, "tenant": tenant, "error": str(exc)},
        )
