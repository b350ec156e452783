"""Every SQL statement on ``files`` and ``processing_logs``, but status changes (``transitions``).

Reads load typed rows (``FileRow``, psycopg's ``class_row``). Tenant-scoped reads are served by
an index (``migrations/``): a page of a tenant's files by ``files_tenant_*_created`` in keyset
order ``created_at DESC, id DESC`` (so a deep page costs what the first one does), a file by its
primary key, a log by ``processing_logs_file``, DELETED files still to purge by
``files_deleted_unpurged``. Reconcile's searches have theirs: unsettled files by age
``files_unsettled_age``, PROCESSED files least recently checked ``files_processed_checked``,
settled files whose object outlived its retention ``files_retained_objects``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

from filepipe.files.model import FileRow, Status

EFFECTIVE_TYPE = sql.SQL(
    "substring(coalesce(content_type, declared_content_type) from '^[^;[:space:]]+')"
)
"""The media type essence of what was detected, or else declared: the ``content_type`` filter.

It must stay the exact expression of the ``files_tenant_type_created`` index (migration 0003).
"""

LOGS_STATEMENT = (
    "SELECT id, from_status, to_status, message, trace_id, created_at"
    " FROM processing_logs WHERE file_id = %s ORDER BY id"
)

UNPURGED_STATEMENT = (
    "SELECT * FROM files WHERE status = 'DELETED'"
    " AND (purged_at IS NULL OR purged_at <= upload_expires_at)"  # files_deleted_unpurged's
    " AND (purged_at IS NULL OR upload_expires_at < %s)"
    " ORDER BY deleted_at LIMIT %s"
)

UNSETTLED_STATEMENT = """
SELECT files.* FROM files JOIN (
    SELECT id, updated_at,
           row_number() OVER (PARTITION BY tenant ORDER BY updated_at, id) AS turn
    FROM files
    WHERE status IN ('PENDING', 'UPLOADED', 'PROCESSING')
      AND updated_at < %(quiet_since)s
      AND updated_at < %(now)s - CASE WHEN status = 'PENDING' THEN %(grace)s
                                      ELSE %(stuck_after)s * 2 ^ least(dead_letters, %(cap)s) END
      AND (checked_at IS NULL
           OR checked_at < %(now)s - %(stuck_after)s * 2 ^ least(dead_letters, %(cap)s)
           OR status = 'PENDING' AND upload_expires_at < %(now)s - %(grace)s)
) AS due USING (id)
ORDER BY due.turn, due.updated_at, due.id
LIMIT %(limit)s
"""
"""Unsettled files reconcile looks at (``unsettled``): the range scan of ``files_unsettled_age``
up to ``quiet_since``, then each file's own deadline; each tenant's oldest first, in turns."""

BACKOFF_CAP = 5
"""A file waits ``stuck_after * 2 ** min(dead_letters, BACKOFF_CAP)`` between re-drives."""

RETAINED_STATUSES = frozenset(
    {Status.REJECTED, Status.EXPIRED, Status.FAILED, Status.CANCELLED, Status.MISSING}
)
"""Settled statuses whose object is removed once ``object_retention`` has passed (the
predicate of ``files_retained_objects``)."""

RETAINED_STATEMENT = (
    "SELECT * FROM files"
    " WHERE status IN ('REJECTED', 'EXPIRED', 'FAILED', 'CANCELLED', 'MISSING')"
    " AND purged_at IS NULL AND updated_at < %(settled_before)s AND upload_expires_at < %(now)s"
    " ORDER BY updated_at LIMIT %(limit)s"
)

UNCHECKED_STATEMENT = (
    "SELECT * FROM files WHERE status = 'PROCESSED' ORDER BY checked_at NULLS FIRST LIMIT %s"
)


@dataclass(frozen=True)
class NewFile:
    """What ``POST /uploads`` records for a new PENDING file."""

    id: uuid.UUID
    tenant: str
    bucket: str
    key: str
    filename: str
    content_type: str
    size: int | None
    sha256: str | None
    metadata: Mapping[str, str]
    idempotency_key: str | None
    fingerprint: str
    upload_expires_at: datetime
    traceparent: str | None
    created_at: datetime
    upload_id: str | None = None
    """The S3 UploadId of a multipart upload."""
    part_size: int | None = None
    upload_token_id: uuid.UUID | None = None
    """The upload token making the file (``filepipe.upload_tokens``)."""


@dataclass(frozen=True)
class Position:
    """The keyset position of a file in ``created_at DESC, id DESC`` order."""

    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True)
class FileFilters:
    """The filters of a file listing, already validated; ``None`` means "any"."""

    status: Status | None = None
    content_type: str | None = None
    """A media type essence (``type/subtype``), compared with the effective type's."""
    filename: str | None = None
    """Exact file name."""
    sha256: str | None = None
    """Lower-case hex digest of the content as verified (files not yet hashed never match)."""
    created_after: datetime | None = None
    """Exclusive lower bound of ``created_at``."""
    created_before: datetime | None = None
    """Exclusive upper bound of ``created_at``."""

    def canonical(self) -> str:
        """A stable text form, to bind cursors to the filters they were issued for."""
        return json.dumps(asdict(self), default=lambda value: value.isoformat(), sort_keys=True)


def insert_pending(conn: Connection[Any], new: NewFile) -> FileRow | None:
    """Insert the PENDING row and its first log entry; ``None`` if its Idempotency-Key is taken."""
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        row = cur.execute(
            """
            INSERT INTO files (id, tenant, bucket, key, filename, declared_content_type,
                               declared_size, declared_sha256, metadata, idempotency_key,
                               request_fingerprint, upload_expires_at, traceparent,
                               created_at, updated_at, upload_id, part_size, upload_token_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (tenant, idempotency_key) DO NOTHING
            RETURNING *
            """,
            (
                new.id,
                new.tenant,
                new.bucket,
                new.key,
                new.filename,
                new.content_type,
                new.size,
                new.sha256,
                Jsonb(dict(new.metadata)),
                new.idempotency_key,
                new.fingerprint,
                new.upload_expires_at,
                new.traceparent,
                new.created_at,
                new.created_at,
                new.upload_id,
                new.part_size,
                new.upload_token_id,
            ),
        ).fetchone()
    if row is not None:
        add_log(
            conn, row, from_status=None, message="upload URL issued", traceparent=new.traceparent
        )
    return row


def count_of_token(conn: Connection[Any], token_id: uuid.UUID) -> int:
    """How many files were made with the upload token (index ``files_upload_token``), counting
    every other transaction's that committed: it first takes a transaction-scoped advisory lock
    on the token, so the count of transactions that insert a token's file, then call this, is
    serial (each sees the files of those before it)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (str(token_id),))
    with conn.cursor(row_factory=scalar_row) as cur:
        count = cur.execute(
            "SELECT count(*) FROM files WHERE upload_token_id = %s", (token_id,)
        ).fetchone()
    return int(count or 0)


def declare(
    conn: Connection[Any], file: FileRow, *, sha256: str | None = None, size: int | None = None
) -> FileRow | None:
    """Record the SHA-256 and size a PENDING file must have, where it declared none
    (compare-and-set on its version); ``None`` if the file changed meanwhile."""
    return _one(
        conn,
        "UPDATE files SET declared_sha256 = coalesce(declared_sha256, %s),"
        " declared_size = coalesce(declared_size, %s), version = version + 1, updated_at = now()"
        " WHERE id = %s AND status = 'PENDING' AND version = %s RETURNING *",
        (sha256, size, file.id, file.version),
    )


def by_objects(conn: Connection[Any], bucket: str, keys: list[str]) -> dict[str, FileRow]:
    """The files stored at ``keys`` of ``bucket``, by key."""
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        rows = cur.execute(
            "SELECT * FROM files WHERE bucket = %s AND key = ANY(%s)", (bucket, keys)
        ).fetchall()
    return {row.key: row for row in rows}


def add_log(
    conn: Connection[Any],
    file: FileRow,
    *,
    from_status: Status | None,
    message: str,
    traceparent: str | None,
) -> None:
    """One ``processing_logs`` row for the change that made ``file`` what it is now."""
    trace_id = traceparent.split("-")[1] if traceparent else None
    conn.execute(
        "INSERT INTO processing_logs (file_id, tenant, from_status, to_status, message, trace_id)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (file.id, file.tenant, from_status, file.status, message, trace_id),
    )


def _one(conn: Connection[Any], query: str, params: tuple[Any, ...]) -> FileRow | None:
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        return cur.execute(query, params).fetchone()


def load(conn: Connection[Any], file_id: uuid.UUID) -> FileRow | None:
    """The file with this id, whoever its tenant (internal callers only)."""
    return _one(conn, "SELECT * FROM files WHERE id = %s", (file_id,))


def by_idempotency_key(conn: Connection[Any], tenant: str, key: str) -> FileRow | None:
    return _one(
        conn, "SELECT * FROM files WHERE tenant = %s AND idempotency_key = %s", (tenant, key)
    )


def find_by_object(conn: Connection[Any], bucket: str, key: str) -> FileRow | None:
    """The file stored at ``bucket``/``key`` (object keys are unique per bucket)."""
    return _one(conn, "SELECT * FROM files WHERE bucket = %s AND key = %s", (bucket, key))


def get(conn: Connection[Any], tenant: str, file_id: uuid.UUID) -> FileRow | None:
    """The tenant's file, or ``None`` (absent, or another tenant's: the same to the caller)."""
    return _one(conn, "SELECT * FROM files WHERE id = %s AND tenant = %s", (file_id, tenant))


def unsettled(
    conn: Connection[Any],
    now: datetime,
    *,
    grace: timedelta,
    stuck_after: timedelta,
    limit: int,
) -> list[FileRow]:
    """Up to ``limit`` unsettled files due for reconcile, each tenant's oldest first and the
    tenants in turns (one tenant's backlog cannot starve another's).

    Due: PENDING unchanged for ``grace``, UPLOADED or PROCESSING unchanged for ``stuck_after``
    times ``2 ** dead_letters`` (capped), and not looked at within that time either
    (``checked_at`` notes a re-drive, or a look at a PENDING file still being uploaded), unless
    a PENDING file's upload URL expired more than ``grace`` ago (to expire it at once).
    """
    params = {
        "now": now,
        "quiet_since": now - min(grace, stuck_after),
        "grace": grace,
        "stuck_after": stuck_after,
        "cap": BACKOFF_CAP,
        "limit": limit,
    }
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        return cur.execute(UNSETTLED_STATEMENT, params).fetchall()


def least_recently_checked(conn: Connection[Any], limit: int) -> list[FileRow]:
    """Up to ``limit`` PROCESSED files whose object was checked least recently (never first)."""
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        return cur.execute(UNCHECKED_STATEMENT, (limit,)).fetchall()


def mark_checked(conn: Connection[Any], file_ids: list[uuid.UUID]) -> None:
    """Note that reconcile has just looked at the files' objects (no state change)."""
    conn.execute("UPDATE files SET checked_at = now() WHERE id = ANY(%s)", (file_ids,))


def retained_objects(
    conn: Connection[Any], now: datetime, settled_before: datetime, limit: int
) -> list[FileRow]:
    """Up to ``limit`` files of ``RETAINED_STATUSES`` settled before ``settled_before``, whose
    storage was never purged and whose upload URL has expired (it can create nothing more),
    longest settled first."""
    params = {"now": now, "settled_before": settled_before, "limit": limit}
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        return cur.execute(RETAINED_STATEMENT, params).fetchall()


def unpurged(conn: Connection[Any], expired_before: datetime, limit: int) -> list[FileRow]:
    """DELETED files whose storage may still hold something, longest deleted first: never
    purged, or purged while their upload URL was still valid and it expired before
    ``expired_before``."""
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        return cur.execute(UNPURGED_STATEMENT, (expired_before, limit)).fetchall()


def mark_purged(conn: Connection[Any], file: FileRow) -> None:
    """Note that storage has just been cleared of the file's object and uploads (unless the file
    left the status it was purged in)."""
    conn.execute(
        "UPDATE files SET purged_at = now() WHERE id = %s AND status = %s",
        (file.id, file.status.value),
    )


_FILTER_CONDITIONS: dict[str, sql.Composable] = {
    "status": sql.SQL("status = %(status)s"),
    "content_type": sql.SQL("{} = %(content_type)s").format(EFFECTIVE_TYPE),
    "filename": sql.SQL("filename = %(filename)s"),
    "sha256": sql.SQL("sha256 = %(sha256)s"),
    "created_after": sql.SQL("created_at > %(created_after)s"),
    "created_before": sql.SQL("created_at < %(created_before)s"),
}
"""The condition of each ``FileFilters`` field, with the parameter named as the field."""


def list_statement(
    tenant: str, filters: FileFilters, *, limit: int, after: Position | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement and parameters of one page: at most ``limit`` rows after ``after``.

    DELETED files are left out unless ``filters.status`` asks for them.
    """
    conditions: list[sql.Composable] = [sql.SQL("tenant = %(tenant)s")]
    if filters.status is None:
        conditions.append(sql.SQL("status <> 'DELETED'"))
    params: dict[str, Any] = {"tenant": tenant, "limit": limit}
    for name, condition in _FILTER_CONDITIONS.items():
        value = getattr(filters, name)
        if value is not None:
            conditions.append(condition)
            params[name] = value
    if after is not None:
        conditions.append(sql.SQL("(created_at, id) < (%(after_created_at)s, %(after_id)s)"))
        params["after_created_at"] = after.created_at
        params["after_id"] = after.id
    statement = sql.SQL(
        "SELECT * FROM files WHERE {} ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    return statement, params


def list_page(
    conn: Connection[Any],
    tenant: str,
    filters: FileFilters,
    *,
    limit: int,
    after: Position | None = None,
) -> list[FileRow]:
    """Up to ``limit`` of the tenant's files matching ``filters``, newest first, after ``after``."""
    statement, params = list_statement(tenant, filters, limit=limit, after=after)
    with conn.cursor(row_factory=class_row(FileRow)) as cur:
        return cur.execute(statement, params).fetchall()


def logs(conn: Connection[Any], tenant: str, file_id: uuid.UUID) -> list[dict[str, Any]] | None:
    """The file's processing log, oldest first; ``None`` if the tenant has no such file."""
    owned = conn.execute(
        "SELECT 1 FROM files WHERE id = %s AND tenant = %s", (file_id, tenant)
    ).fetchone()
    if owned is None:
        return None
    return conn.execute(LOGS_STATEMENT, (file_id,)).fetchall()
