"""Rows of ``files`` written straight with SQL (and their objects), for tests of what reads them;
waiting for a file to settle."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from filepipe import auth
from filepipe.config import Settings
from filepipe.storage import create_s3_client
from tests.support.waiting import wait_until

Conn = psycopg.Connection[dict[str, Any]]

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@contextmanager
def tenants(conn: Conn) -> Iterator[Callable[[], tuple[str, str]]]:
    """Make fresh tenants (name, API key); their files are deleted afterwards, so that rows
    written here never reach the reconcile job of a later test."""
    made: list[str] = []

    def make() -> tuple[str, str]:
        tenant = f"q-{uuid.uuid4().hex[:10]}"
        made.append(tenant)
        return tenant, auth.create_key(conn, tenant)

    try:
        yield make
    finally:
        if made:
            conn.execute("DELETE FROM files WHERE tenant = ANY(%s)", (made,))


def add_file(conn: Conn, tenant: str, **columns: Any) -> dict[str, Any]:
    """Insert one file (PENDING PDF unless ``columns`` say otherwise); returns its row."""
    file_id = columns.pop("id", None) or uuid.uuid4()
    created_at = columns.pop("created_at", None) or datetime.now(UTC)
    values: dict[str, Any] = {
        "id": file_id,
        "tenant": tenant,
        "bucket": "uploads",
        "key": f"{tenant}/{file_id}/f.pdf",
        "filename": "f.pdf",
        "declared_content_type": "application/pdf",
        "declared_size": 10,
        "upload_expires_at": created_at + timedelta(minutes=15),
        "created_at": created_at,
        "updated_at": created_at,
        **columns,
    }
    names = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    row = conn.execute(
        f"INSERT INTO files ({names}) VALUES ({placeholders}) RETURNING *",  # noqa: S608
        values,
    ).fetchone()
    assert row is not None
    return row


def file_with_object(
    conn: Conn, settings: Settings, tenant: str, data: bytes, **columns: Any
) -> dict[str, Any]:
    """A PROCESSED row (unless ``columns`` say otherwise) whose object holds ``data``, written
    with the functions' own client."""
    file_id = uuid.uuid4()
    row = add_file(
        conn,
        tenant,
        **{
            "id": file_id,
            "key": f"{tenant}/{file_id}/object",
            "status": "PROCESSED",
            "size_bytes": len(data),
            **columns,
        },
    )
    create_s3_client(settings).put_object(Bucket=row["bucket"], Key=row["key"], Body=data)
    return row


def add_many(conn: Conn, tenant: str, count: int, *, newest: datetime = BASE_TIME) -> None:
    """``count`` files one second apart (the newest at ``newest``), in one statement."""
    conn.execute(
        """
        INSERT INTO files (id, tenant, bucket, key, filename, declared_content_type,
                           declared_size, status, sha256, content_type, upload_expires_at,
                           created_at, updated_at)
        SELECT gen_random_uuid(), %(tenant)s, 'uploads', %(tenant)s || '/' || g,
               'f' || mod(g, 97),
               (ARRAY['application/pdf', 'text/csv; charset=utf-8', 'image/png'])[1 + mod(g, 3)],
               10,
               (ARRAY['PENDING', 'PROCESSED', 'REJECTED', 'FAILED', 'EXPIRED',
                      'UPLOADED', 'PROCESSING'])[1 + mod(g, 7)],
               CASE WHEN mod(g, 7) = 1 THEN encode(sha256(g::text::bytea), 'hex') END,
               CASE WHEN mod(g, 7) = 1 THEN (ARRAY['application/pdf', 'text/csv', 'image/png'])
                                         [1 + mod(g, 3)] END,
               %(newest)s, %(newest)s - g * interval '1 second', %(newest)s
        FROM generate_series(0, %(count)s - 1) AS g
        """,
        {"tenant": tenant, "count": count, "newest": newest},
    )


def row_of(conn: Conn, file_id: object) -> dict[str, Any]:
    """The file's row as it is now (it must exist)."""
    row = conn.execute("SELECT * FROM files WHERE id = %s", (file_id,)).fetchone()
    assert row is not None
    return row


def event_types(conn: Conn, file_id: object) -> list[str]:
    """The types of the file's events, oldest first."""
    rows = conn.execute(
        "SELECT type FROM events WHERE file_id = %s ORDER BY created_at", (file_id,)
    ).fetchall()
    return [row["type"] for row in rows]


def settled(
    conn: psycopg.Connection[dict[str, Any]], file_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    """The file's row once it is past PENDING, UPLOADED and PROCESSING (waited for)."""

    def probe() -> dict[str, Any] | None:
        return conn.execute(
            "SELECT * FROM files WHERE id = %s AND status NOT IN ('PENDING', 'UPLOADED',"
            " 'PROCESSING')",
            (file_id,),
        ).fetchone()

    return wait_until(probe, timeout=timeout, what=f"file {file_id} to settle")
