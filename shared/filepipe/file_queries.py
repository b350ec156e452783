"""The SQL behind the query function: one tenant's files, one file, one file's processing log.

Every statement is tenant-scoped and served by an index (``migrations/``): the list by
``files_tenant_*_created`` in keyset order ``created_at DESC, id DESC`` (so a deep page costs what
the first one does), a file by its primary key, a log by ``processing_logs_file``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection, sql

from filepipe.cursors import Position

Row = dict[str, Any]

EFFECTIVE_TYPE = sql.SQL(
    "substring(coalesce(content_type, declared_content_type) from '^[^;[:space:]]+')"
)
"""The media type essence of what was detected, or else declared: the ``content_type`` filter.

It must stay the exact expression of the ``files_tenant_type_created`` index (migration 0003).
"""


@dataclass(frozen=True)
class FileFilters:
    """The filters of ``GET /files``, already validated; ``None`` means "any"."""

    status: str | None = None
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


def list_statement(
    tenant: str, filters: FileFilters, *, limit: int, after: Position | None = None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement and parameters of one page: at most ``limit`` rows after ``after``."""
    conditions: list[sql.Composable] = [sql.SQL("tenant = %(tenant)s")]
    params: dict[str, Any] = {"tenant": tenant, "limit": limit}
    if filters.status is not None:
        conditions.append(sql.SQL("status = %(status)s"))
        params["status"] = filters.status
    if filters.content_type is not None:
        conditions.append(sql.SQL("{} = %(content_type)s").format(EFFECTIVE_TYPE))
        params["content_type"] = filters.content_type
    if filters.filename is not None:
        conditions.append(sql.SQL("filename = %(filename)s"))
        params["filename"] = filters.filename
    if filters.sha256 is not None:
        conditions.append(sql.SQL("sha256 = %(sha256)s"))
        params["sha256"] = filters.sha256
    if filters.created_after is not None:
        conditions.append(sql.SQL("created_at > %(created_after)s"))
        params["created_after"] = filters.created_after
    if filters.created_before is not None:
        conditions.append(sql.SQL("created_at < %(created_before)s"))
        params["created_before"] = filters.created_before
    if after is not None:
        conditions.append(sql.SQL("(created_at, id) < (%(after_created_at)s, %(after_id)s)"))
        params["after_created_at"] = after.created_at
        params["after_id"] = after.id
    statement = sql.SQL(
        "SELECT * FROM files WHERE {} ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
    ).format(sql.SQL(" AND ").join(conditions))
    return statement, params


def list_files(
    conn: Connection[Any],
    tenant: str,
    filters: FileFilters,
    *,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    statement, params = list_statement(tenant, filters, limit=limit, after=after)
    return conn.execute(statement, params).fetchall()


def get_file(conn: Connection[Any], tenant: str, file_id: uuid.UUID) -> Row | None:
    """The tenant's file, or ``None`` (absent, or another tenant's: the same to the caller)."""
    row: Row | None = conn.execute(
        "SELECT * FROM files WHERE id = %s AND tenant = %s", (file_id, tenant)
    ).fetchone()
    return row


LOGS_STATEMENT = (
    "SELECT id, from_status, to_status, message, trace_id, created_at"
    " FROM processing_logs WHERE file_id = %s ORDER BY id"
)


def file_logs(conn: Connection[Any], tenant: str, file_id: uuid.UUID) -> list[Row] | None:
    """The file's processing log, oldest first; ``None`` if the tenant has no such file."""
    owned = conn.execute(
        "SELECT 1 FROM files WHERE id = %s AND tenant = %s", (file_id, tenant)
    ).fetchone()
    if owned is None:
        return None
    return conn.execute(LOGS_STATEMENT, (file_id,)).fetchall()
