"""Real-time fan-out of file events over Redis pub/sub, for the WebSocket gateway, once per id.

Every event goes out as structured-mode CloudEvents JSON (CloudEvents 1.0 JSON format,
https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md) on the
channel of its tenant, ``filepipe:events:<tenant>``. Pub/sub is fire-and-forget: an event
published while nobody listens, or while Redis is down, is gone. Real time is best-effort;
webhooks and ``GET /files`` are the durable paths, so ``publish`` never raises.

Exactly once per event id. Notifications are at-least-once (a broker redelivery, two notify
replicas, an outbox event published again, a replayed dead letter that re-publishes a settled
file's events), and the event id is stable across all of them. So ``publish`` runs one Lua
script, atomic in Redis: if ``filepipe:realtime:seen:<event id>`` exists, nothing is sent;
otherwise the event is published and, if at least one gateway was subscribed to receive it, the
marker is set for ``realtime_dedupe_ttl`` seconds. Marking only what a gateway received is the
order that loses nothing: an event nobody heard (every gateway reconnecting) can still go out on
a later duplicate, and since marker and publish happen in one script no crash of notify can
separate them. What remains possible: an event published twice more than the TTL apart, or
after Redis lost its keys (a restart without persistence), reaches a client connected through
both twice; the gateway's own memory of recent ids (``gateway.hub``) stops those for a client
that stays on one gateway.
"""

from __future__ import annotations

import logging
from typing import cast

import redis
from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent

from filepipe.config import Settings

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "filepipe:events:"
CHANNEL_PATTERN = CHANNEL_PREFIX + "*"
"""Matches every tenant's channel (tenant names can't hold glob characters: see auth.py)."""
SEEN_PREFIX = "filepipe:realtime:seen:"
"""Prefix of the markers of event ids already published (one key per id, with a TTL)."""

_PUBLISH_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return -1
end
local receivers = redis.call('PUBLISH', KEYS[2], ARGV[1])
if receivers > 0 then
    redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
end
return receivers
"""
"""KEYS: the event's marker, its channel; ARGV: the message, the marker's TTL in ms. Returns
-1 for an id already published, else how many subscriptions received it."""
DUPLICATE = -1


def channel(tenant: str) -> str:
    """The pub/sub channel of ``tenant``'s events."""
    return CHANNEL_PREFIX + tenant


def seen_key(event_id: str) -> str:
    """The Redis key marking ``event_id`` as published."""
    return SEEN_PREFIX + event_id


def tenant_of(channel_name: str | bytes) -> str | None:
    """The tenant whose channel ``channel_name`` is, or ``None`` for any other channel."""
    name = channel_name.decode() if isinstance(channel_name, bytes) else channel_name
    if not name.startswith(CHANNEL_PREFIX) or len(name) == len(CHANNEL_PREFIX):
        return None
    return name[len(CHANNEL_PREFIX) :]


def publish(
    client: redis.Redis, event: CloudEvent, *, ttl: float = Settings.realtime_dedupe_ttl
) -> bool:
    """Publish ``event`` on its tenant's channel (``event.data["tenant"]``) unless its id was
    published in the last ``ttl`` seconds; True if it went out now. Never raises.

    An event without a tenant, one that can't be serialised, or a Redis failure is logged as a
    warning and dropped; a duplicate is logged at debug level.
    """
    data = event.get_data()
    tenant = data.get("tenant") if isinstance(data, dict) else None
    event_id = event["id"]
    if not isinstance(tenant, str) or not tenant:
        log.warning("real-time event without a tenant dropped", extra={"event_id": event_id})
        return False
    try:
        body = to_json(event)
    except (TypeError, ValueError) as exc:
        log.warning(
            "real-time event not serialisable, dropped",
            extra={"event_id": event_id, "error": str(exc)},
        )
        return False
    try:
        # EVAL, not EVALSHA: one round trip and one span even on a Redis that just restarted.
        keys_and_args = (seen_key(event_id), channel(tenant), body, round(ttl * 1000))
        receivers = cast(int, client.eval(_PUBLISH_ONCE, 2, *keys_and_args))
    except redis.RedisError as exc:
        log.warning(
            "real-time event not published (Redis unavailable)",
            extra={"event_id": event_id, "tenant": tenant, "error": str(exc)},
        )
        return False
    if receivers == DUPLICATE:
        log.debug("real-time event already published", extra={"event_id": event_id})
        return False
    return True
