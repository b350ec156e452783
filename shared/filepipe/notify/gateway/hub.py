"""In-process fan-out of one tenant's events to that tenant's WebSocket clients.

The gateway reads every tenant's channel through one Redis pattern subscription and hands each
event to ``Hub.dispatch``, which must never wait: it offers the event to each matching client's
bounded queue and returns. A client whose queue is full (it reads slower than events arrive) is
dropped from the hub and flagged ``overflowed``; its connection handler then closes it with 1013
(try again later). Closing, rather than silently dropping old events, tells the client it missed
some: it reconnects and catches up with ``GET /files``.

A client connected with an upload token gets only the events of files made with that token:
those whose data carries its ``upload_token_id`` (written from the ``files`` row into the outbox,
never from anything a client sent).

Each event id reaches a client once. Notify publishes each id once (``filepipe.notify.realtime``,
guarded in Redis, which also covers gateway restarts and several gateways); as a second line
the hub remembers the last ``RECENT_IDS`` ids it handed out and drops a repeat, which catches a
duplicate the Redis guard let through (its marker expired, or Redis lost it) as long as it comes
within that many events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from filepipe import metrics

log = logging.getLogger(__name__)

RECENT_IDS = 10_000
"""Event ids a gateway remembers to drop repeats (about 1 MB)."""


@dataclass(eq=False)
class Subscriber:
    """One WebSocket client: its tenant, optional file filter and the events waiting for it."""

    tenant: str
    file_id: str | None
    queue_size: int
    queue: asyncio.Queue[str] = field(init=False, repr=False)
    overflowed: asyncio.Event = field(init=False, repr=False, default_factory=asyncio.Event)
    is_gone: Callable[[], bool] = field(default=lambda: False, repr=False)
    """True once the connection is closed; lets the hub drop a client whose handler never ran."""
    key_id: str | None = None
    """The id of the API key the client authenticated with."""
    ended: asyncio.Event = field(init=False, repr=False, default_factory=asyncio.Event)
    """Set when the client's key was revoked or expired: its connection must close."""
    end_reason: str = field(init=False, default="")
    upload_token_id: str | None = None
    """The id of the upload token the client connected with: only its files' events."""

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_size)

    def end(self, reason: str) -> None:
        """The client's key stopped working: deliver nothing more, close with ``reason``."""
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()

    def offer(self, message: str) -> bool:
        """Queue ``message`` without waiting; False (and ``overflowed`` set) if it is full."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed.set()
            return False
        return True


class RecentIds:
    """The last ``size`` ids seen, oldest forgotten first."""

    def __init__(self, size: int = RECENT_IDS) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def first_time(self, event_id: str) -> bool:
        """True (and ``event_id`` remembered) unless it is among the last ``size`` ids."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


class Hub:
    """Subscribers by tenant; ``dispatch`` hands an event to each of the tenant's subscribers,
    once per event id."""

    def __init__(self, recent: RecentIds | None = None) -> None:
        self._tenants: dict[str, set[Subscriber]] = {}
        self._recent = RecentIds() if recent is None else recent

    def __len__(self) -> int:
        return sum(len(subscribers) for subscribers in self._tenants.values())

    def add(self, subscriber: Subscriber) -> None:
        subscribers = self._tenants.setdefault(subscriber.tenant, set())
        if subscriber not in subscribers:
            subscribers.add(subscriber)
            metrics.get().websocket_connections.inc()

    def discard(self, subscriber: Subscriber) -> None:
        subscribers = self._tenants.get(subscriber.tenant)
        if subscribers is None or subscriber not in subscribers:
            return
        subscribers.discard(subscriber)
        metrics.get().websocket_connections.dec()
        if not subscribers:
            del self._tenants[subscriber.tenant]

    def dispatch(self, tenant: str, message: str) -> int:
        """Offer ``message`` (a structured CloudEvent) to ``tenant``'s subscribers; how many got it.

        An event id handed out lately is not handed out again. Never blocks and never raises for
        one bad client: a full queue drops that client.
        """
        subscribers = self._tenants.get(tenant)
        if not subscribers:
            return 0
        event = _json_object(message)
        event_id = event.get("id")
        if isinstance(event_id, str) and not self._recent.first_time(event_id):
            log.info("repeated real-time event dropped", extra={"event_id": event_id})
            return 0
        file_id, token_id = file_id_of(event), _upload_token_id(event)
        delivered = 0
        for subscriber in list(subscribers):
            if subscriber.is_gone() or subscriber.ended.is_set():
                self.discard(subscriber)
                continue
            if subscriber.file_id is not None and subscriber.file_id != file_id:
                continue
            if subscriber.upload_token_id is not None and subscriber.upload_token_id != token_id:
                continue
            if subscriber.offer(message):
                delivered += 1
            else:
                log.warning(
                    "WebSocket client too slow, disconnecting it",
                    extra={"tenant": tenant, "queue_size": subscriber.queue_size},
                )
                self.discard(subscriber)
        return delivered


def file_id_of(event: dict[str, Any]) -> str | None:
    """The file id of a structured CloudEvent (``data.file_id``, else ``subject``), normalised."""
    data = event.get("data")
    candidate = data.get("file_id") if isinstance(data, dict) else None
    return _uuid(event.get("subject") if candidate is None else candidate)


def _upload_token_id(event: dict[str, Any]) -> str | None:
    """The ``data.upload_token_id`` of a structured CloudEvent, normalised (``None``: none)."""
    data = event.get("data")
    return _uuid(data.get("upload_token_id")) if isinstance(data, dict) else None


def _json_object(message: str) -> dict[str, Any]:
    try:
        event: Any = json.loads(message)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def _uuid(candidate: Any) -> str | None:
    if not isinstance(candidate, str):
        return None
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return None
