"""CloudEvents 1.0 for file state changes: stable ids, the outbox, binary-mode publishing.

An event is written to the ``events`` table in the transaction that makes the change it reports
(the transactional outbox), then POSTed to ``K_SINK`` in binary content mode after commit. Its id
is derived from file id, version and type, so a re-emitted event keeps its id and consumers
dedupe on it. Spec: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from psycopg import Connection
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from filepipe import metrics
from filepipe.errors import DependencyError

log = logging.getLogger(__name__)

_EVENT_ID_NAMESPACE = uuid.UUID("5b0f3c8e-6d0a-4f4e-9a43-2f3a3f1c7e11")

FILE_CREATED = "file.created"
FILE_UPLOADED = "file.uploaded"
FILE_PROCESSED = "file.processed"
FILE_REJECTED = "file.rejected"
FILE_FAILED = "file.failed"


class PublishError(DependencyError):
    """The broker ingress did not accept an event."""


def event_id(file_id: uuid.UUID | str, version: int, event_type: str) -> str:
    """The stable id of the ``event_type`` event of ``file_id`` at ``version``."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{event_type}:{file_id}:{version}"))


@dataclass(frozen=True)
class OutboxEvent:
    id: str
    type: str
    source: str
    subject: str
    tenant: str
    file_id: uuid.UUID | None
    data: Mapping[str, Any]
    time: datetime
    traceparent: str | None = None

    def to_cloudevent(self) -> CloudEvent:
        attributes = {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
        }
        if self.traceparent:
            attributes["traceparent"] = self.traceparent
        return CloudEvent(attributes, dict(self.data))


def file_event(
    event_type: str,
    *,
    source: str,
    file: Mapping[str, Any],
    time: datetime,
    traceparent: str | None = None,
    **extra: Any,
) -> OutboxEvent:
    """The event of type ``event_type`` for a ``files`` row, as of its current version."""
    data: dict[str, Any] = {
        "file_id": str(file["id"]),
        "tenant": file["tenant"],
        "status": file["status"],
        "version": file["version"],
        "filename": file["filename"],
        "bucket": file["bucket"],
        "key": file["key"],
        **extra,
    }
    return OutboxEvent(
        id=event_id(file["id"], file["version"], event_type),
        type=event_type,
        source=source,
        subject=str(file["id"]),
        tenant=file["tenant"],
        file_id=file["id"],
        data=data,
        time=time,
        traceparent=traceparent,
    )


def record(conn: Connection[Any], event: OutboxEvent) -> None:
    """Add ``event`` to the outbox inside the caller's transaction (a no-op if already there)."""
    conn.execute(
        """
        INSERT INTO events (id, type, source, subject, tenant, file_id, data, traceparent,
                            created_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (id) DO NOTHING
        """,
        (
            event.id,
            event.type,
            event.source,
            event.subject,
            event.tenant,
            event.file_id,
            Jsonb(dict(event.data)),
            event.traceparent,
            event.time,
        ),
    )


class Publisher:
    """POSTs CloudEvents in binary mode to the broker ingress (``K_SINK``)."""

    def __init__(
        self, sink: str, *, timeout: float = 5.0, session: requests.Session | None = None
    ) -> None:
        self.sink = sink
        self.timeout = timeout
        self.session = session or requests.Session()

    def publish(self, event: OutboxEvent) -> None:
        headers, body = to_binary(event.to_cloudevent())
        try:
            response = self.session.post(
                self.sink, headers=headers, data=body, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise PublishError(f"cannot reach the broker at {self.sink}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise PublishError(f"the broker refused event {event.id}: HTTP {response.status_code}")


def load(conn: Connection[Any], event_ids: Iterable[str]) -> list[OutboxEvent]:
    rows = conn.execute(
        """
        SELECT id, type, source, subject, tenant, file_id, data, traceparent, created_at
        FROM events WHERE id = ANY(%s) ORDER BY created_at, id
        """,
        (list(event_ids),),
    ).fetchall()
    return [
        OutboxEvent(
            id=row["id"],
            type=row["type"],
            source=row["source"],
            subject=row["subject"],
            tenant=row["tenant"],
            file_id=row["file_id"],
            data=row["data"],
            time=row["created_at"],
            traceparent=row["traceparent"],
        )
        for row in rows
    ]


def publish_recorded(
    pool: ConnectionPool[Any], publisher: Publisher | None, event_ids: Iterable[str]
) -> int:
    """Publish outbox events (after their transaction committed); returns how many went out.

    A failure is logged and stored on the row, never raised (not even when PostgreSQL fails
    after the commit): the event stays unpublished and the reconcile job publishes it later.
    """
    ids = list(event_ids)
    if not ids:
        return 0
    if publisher is None:
        log.warning("K_SINK is not set: events stay in the outbox", extra={"event_ids": ids})
        return 0
    try:
        with pool.connection() as conn:
            events = load(conn, ids)
    except psycopg.Error as exc:
        log.warning("outbox unreadable; reconcile publishes later", extra={"error": str(exc)})
        return 0
    published = 0
    for event in events:
        try:
            publisher.publish(event)
        except PublishError as exc:
            log.warning("event not published", extra={"event_id": event.id, "error": str(exc)})
            metrics.get().event_publish_failures.labels(event.type).inc()
            _mark(pool, event.id, error=str(exc))
            continue
        metrics.get().events_published.labels(event.type).inc()
        _mark(pool, event.id, error=None)
        published += 1
    return published


def _mark(pool: ConnectionPool[Any], event_id_: str, *, error: str | None) -> None:
    """Record the outcome; if PostgreSQL fails, a published event is merely published again."""
    try:
        with pool.connection() as conn:
            if error is None:
                conn.execute(
                    "UPDATE events SET published_at = now(), attempts = attempts + 1,"
                    " last_error = NULL WHERE id = %s AND published_at IS NULL",
                    (event_id_,),
                )
            else:
                conn.execute(
                    "UPDATE events SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                    (error[:500], event_id_),
                )
    except psycopg.Error as exc:
        log.warning(
            "publish outcome not recorded", extra={"event_id": event_id_, "error": str(exc)}
        )
