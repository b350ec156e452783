"""File status changes as compare-and-set, each with its processing log and its outbox event.

``UPDATE files … WHERE id = … AND status = … AND version = … RETURNING *``: a stale or duplicate
worker matches no row and changes nothing. Every successful change bumps ``version``, writes a
``processing_logs`` row and, when it has one, records its event in the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import Connection, sql

from filepipe import events
from filepipe.telemetry import current_traceparent

PENDING, UPLOADED, PROCESSING = "PENDING", "UPLOADED", "PROCESSING"
PROCESSED, REJECTED, FAILED, EXPIRED = "PROCESSED", "REJECTED", "FAILED", "EXPIRED"
TERMINAL = frozenset({PROCESSED, REJECTED, FAILED, EXPIRED})
_SETTABLE = frozenset({"sha256", "size_bytes", "content_type", "etag", "error", "processed_at"})

Row = dict[str, Any]


def load_file(conn: Connection[Any], file_id: Any) -> Row | None:
    row: Row | None = conn.execute("SELECT * FROM files WHERE id = %s", (file_id,)).fetchone()
    return row


def find_by_object(conn: Connection[Any], bucket: str, key: str) -> Row | None:
    row: Row | None = conn.execute(
        "SELECT * FROM files WHERE bucket = %s AND key = %s", (bucket, key)
    ).fetchone()
    return row


def transition(
    conn: Connection[Any],
    file: Row,
    to_status: str,
    *,
    message: str,
    source: str,
    event_type: str | None = None,
    trace_id: str | None = None,
    event_data: dict[str, Any] | None = None,
    **changes: Any,
) -> tuple[Row, str | None] | None:
    """Move ``file`` (as last read) to ``to_status``; ``None`` if someone changed it meanwhile.

    Returns the new row and the id of the event recorded with it (to publish after commit).
    """
    unknown = set(changes) - _SETTABLE
    if unknown:
        raise ValueError(f"cannot set {sorted(unknown)} in a transition")
    assignments = sql.SQL("").join(
        sql.SQL(", {} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in changes
    )
    query = sql.SQL(
        "UPDATE files SET status = %(to)s, version = version + 1, updated_at = now(){sets}"
        " WHERE id = %(id)s AND status = %(from)s AND version = %(version)s RETURNING *"
    ).format(sets=assignments)
    row: Row | None = conn.execute(
        query,
        {
            **changes,
            "to": to_status,
            "id": file["id"],
            "from": file["status"],
            "version": file["version"],
        },
    ).fetchone()
    if row is None:
        return None
    traceparent = current_traceparent()
    if trace_id is None and traceparent:
        trace_id = traceparent.split("-")[1]
    conn.execute(
        "INSERT INTO processing_logs (file_id, tenant, from_status, to_status, message, trace_id)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (row["id"], row["tenant"], file["status"], to_status, message, trace_id),
    )
    if event_type is None:
        return row, None
    event = events.file_event(
        event_type,
        source=source,
        file=row,
        time=datetime.now(UTC),
        traceparent=traceparent,
        **(event_data or {}),
    )
    events.record(conn, event)
    return row, event.id


def event_ids_of(conn: Connection[Any], file_id: Any) -> list[str]:
    """Every event recorded for a file, oldest first (to re-publish them)."""
    return [
        r["id"]
        for r in conn.execute(
            "SELECT id FROM events WHERE file_id = %s ORDER BY created_at, id", (file_id,)
        )
    ]
