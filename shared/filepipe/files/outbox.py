"""The transactional outbox: a file's events are written with the change they report.

``record`` adds an event inside the caller's transaction; ``publish`` sends recorded events to
the broker after commit and notes the outcome on each row. A failure is logged, never raised: the
event stays unpublished and the reconcile job publishes it later.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from filepipe import metrics
from filepipe.events import Event, Publisher, PublishError, event_id
from filepipe.files.model import FileRow

log = logging.getLogger(__name__)


def file_event(
    event_type: str,
    file: FileRow,
    *,
    source: str,
    time: datetime,
    traceparent: str | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    """The ``event_type`` event of ``file`` as of its current version, ``details`` added to data
    (and ``upload_token_id`` for a file made with an upload token: the gateway's filter)."""
    data: dict[str, Any] = {
        "file_id": str(file.id),
        "tenant": file.tenant,
        "status": file.status.value,
        "version": file.version,
        "filename": file.filename,
        "bucket": file.bucket,
        "key": file.key,
        **(details or {}),
    }
    if file.upload_token_id is not None:
        data["upload_token_id"] = str(file.upload_token_id)
    return Event(
        id=event_id(file.id, file.version, event_type),
        type=event_type,
        source=source,
        subject=str(file.id),
        tenant=file.tenant,
        file_id=file.id,
        data=data,
        time=time,
        traceparent=traceparent,
    )


def record(conn: Connection[Any], event: Event) -> None:
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


def load(conn: Connection[Any], event_ids: Iterable[str]) -> list[Event]:
    with conn.cursor(row_factory=class_row(Event)) as cur:
        return cur.execute(
            """
            SELECT id, type, source, subject, tenant, file_id, data, traceparent,
                   created_at AS time
            FROM events WHERE id = ANY(%s) ORDER BY created_at, id
            """,
            (list(event_ids),),
        ).fetchall()


def ids_of_file(conn: Connection[Any], file_id: uuid.UUID) -> list[str]:
    """Every event recorded for a file, oldest first (to re-publish them)."""
    return [
        r["id"]
        for r in conn.execute(
            "SELECT id FROM events WHERE file_id = %s ORDER BY created_at, id", (file_id,)
        )
    ]


def unpublished(conn: Connection[Any], created_before: datetime, limit: int) -> list[str]:
    """Ids of events still unpublished that were recorded before ``created_before``."""
    return [
        r["id"]
        for r in conn.execute(
            "SELECT id FROM events WHERE published_at IS NULL AND created_at < %s"
            " ORDER BY created_at LIMIT %s",
            (created_before, limit),
        )
    ]


def publish(
    pool: ConnectionPool[Any], publisher: Publisher | None, event_ids: Iterable[str]
) -> int:
    """Publish recorded events (after their transaction committed); returns how many went out.

    Never raises, not even when PostgreSQL fails after the commit (see the module docstring).
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
    return publish_events(pool, publisher, events)


def publish_events(
    pool: ConnectionPool[Any], publisher: Publisher | None, events: Sequence[Event]
) -> int:
    """Publish events at hand (loaded, or just recorded by the caller and not read back), then
    note the outcomes together, in one checkout; returns how many went out. Never raises."""
    if not events:
        return 0
    if publisher is None:
        ids = [event.id for event in events]
        log.warning("K_SINK is not set: events stay in the outbox", extra={"event_ids": ids})
        return 0
    outcomes: list[tuple[str, str | None]] = []
    for event in events:
        try:
            publisher.publish(event)
        except PublishError as exc:
            log.warning("event not published", extra={"event_id": event.id, "error": str(exc)})
            metrics.get().event_publish_failures.labels(event.type).inc()
            outcomes.append((event.id, str(exc)))
            continue
        metrics.get().events_published.labels(event.type).inc()
        outcomes.append((event.id, None))
    _mark(pool, outcomes)
    return sum(1 for _, error in outcomes if error is None)


def _mark(pool: ConnectionPool[Any], outcomes: Sequence[tuple[str, str | None]]) -> None:
    """Record the outcomes (``None``: published; the published ones in one statement); if
    PostgreSQL fails, a published event is merely published again."""
    published = [event_id_ for event_id_, error in outcomes if error is None]
    try:
        with pool.connection() as conn:
            if published:
                conn.execute(
                    "UPDATE events SET published_at = now(), attempts = attempts + 1,"
                    " last_error = NULL WHERE id = ANY(%s) AND published_at IS NULL",
                    (published,),
                )
            for event_id_, error in outcomes:
                if error is not None:
                    conn.execute(
                        "UPDATE events SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                        (error[:500], event_id_),
                    )
    except psycopg.Error as exc:
        ids = [event_id_ for event_id_, _ in outcomes]
        log.warning("publish outcome not recorded", extra={"event_ids": ids, "error": str(exc)})
