"""File status changes as compare-and-set, each with its processing log and its outbox event.

``UPDATE files … WHERE id = … AND status = … AND version = … RETURNING *``: a stale or duplicate
worker matches no row and changes nothing. Every successful change bumps ``version``, writes a
``processing_logs`` row and, when it has one, records its event in the same transaction.
``apply`` runs one change, or several in a row (each a compare-and-set on the row the one before
returned, so each keeps its version, log row and event), in one transaction of their own, then
what follows a commit: one round trip of a transaction for the steps a worker always takes
together, e.g. process's PENDING → UPLOADED → PROCESSING.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from psycopg import Connection, sql
from psycopg.rows import class_row

from filepipe.events import Event
from filepipe.files import outbox, store
from filepipe.files.after_commit import after_commit
from filepipe.files.model import FileRow, Status
from filepipe.telemetry import current_traceparent

if TYPE_CHECKING:
    from filepipe.runtime import Runtime


@dataclass(frozen=True)
class Findings:
    """What reading the object established, stored with the change that settles the file."""

    size_bytes: int
    sha256: str | None
    """``None`` when reading stopped early (the object was over its limit)."""
    content_type: str | None
    etag: str


@dataclass(frozen=True)
class Change:
    """A status change and what it records."""

    to: Status
    message: str
    """The processing log's message."""
    event_type: str | None = None
    details: dict[str, Any] | None = None
    """Added to the event's data."""
    findings: Findings | None = None
    error: str | None = None
    """The reason recorded; a change to PROCESSED without one clears an earlier reason (a
    transient cause recorded by a dead letter is over)."""
    processed_at: datetime | None = None
    deleted_at: datetime | None = None
    dead_letters: int | None = None
    """The file's new count of dead letters (``filepipe.process.dead_letters``)."""


@dataclass(frozen=True)
class Transitioned:
    file: FileRow
    """The row after the change."""
    event: Event | None
    """The event recorded with it, to publish after commit."""


class _Stale(Exception):
    """A change in a row found the file changed: the transaction is rolled back."""


def transition(
    conn: Connection[Any], file: FileRow, change: Change, *, source: str
) -> Transitioned | None:
    """Apply ``change`` to ``file`` (as last read); ``None`` if someone changed it meanwhile."""
    values: dict[str, Any] = {}
    if change.findings is not None:
        values |= {
            "size_bytes": change.findings.size_bytes,
            "etag": change.findings.etag,
            "content_type": change.findings.content_type,
        }
        if change.findings.sha256 is not None:
            values["sha256"] = change.findings.sha256
    for name in ("error", "processed_at", "deleted_at", "dead_letters"):
        if (value := getattr(change, name)) is not None:
            values[name] = value
    if change.to is Status.PROCESSED and change.error is None:
        values["error"] = None
    assignments = sql.SQL("").join(
        sql.SQL(", {} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in values
    )
    query = sql.SQL(
        "UPDATE files SET status = %(to)s, version = version + 1, updated_at = now(){sets}"
        " WHERE id = %(id)s AND status = %(from)s AND version = %(version)s RETURNING *"
    ).format(sets=assignments)
    params = {
        **values,
        "to": change.to.value,
        "id": file.id,
        "from": file.status.value,
        "version": file.version,
    }
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        row = cur.execute(query, params).fetchone()
    if row is None:
        return None
    traceparent = current_traceparent()
    store.add_log(
        conn, row, from_status=file.status, message=change.message, traceparent=traceparent
    )
    if change.event_type is None:
        return Transitioned(row, None)
    event = outbox.file_event(
        change.event_type,
        row,
        source=source,
        time=datetime.now(UTC),
        traceparent=traceparent,
        details=change.details,
    )
    outbox.record(conn, event)
    return Transitioned(row, event)


def apply(rt: Runtime, file: FileRow, change: Change, *more: Change, source: str) -> FileRow | None:
    """``change`` (then each of ``more``, on the row the one before returned) in one
    transaction of their own, then ``after_commit``; ``None`` (nothing changed) if stale."""
    try:
        with rt.pool.connection() as conn, conn.transaction():
            done = _in_turn(conn, file, [change, *more], source=source)
    except _Stale:
        return None
    recorded = [step.event for step in done if step.event is not None]
    after_commit(rt, file.id, [], recorded=recorded)
    return done[-1].file


def _in_turn(
    conn: Connection[Any], file: FileRow, changes: Sequence[Change], *, source: str
) -> list[Transitioned]:
    done = []
    for change in changes:
        step = transition(conn, file, change, source=source)
        if step is None:
            raise _Stale
        done.append(step)
        file = step.file
    return done
