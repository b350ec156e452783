"""Retention, against real PostgreSQL and the local S3 server: the objects (and unfinished
uploads) of files that settled without being kept are removed after ``object_retention``; history
older than ``history_retention`` is pruned in bounded batches, and what is still owed is kept."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from filepipe import retention
from filepipe.config import Settings
from filepipe.process.reconcile import reconcile
from filepipe.retention import prune_history
from filepipe.runtime import Runtime
from filepipe.storage import create_s3_client
from tests.support.files import add_file, file_with_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
CSV = b"name,size\nalpha,1\n"
RETAINED = ("REJECTED", "EXPIRED", "FAILED", "CANCELLED", "MISSING")


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    built = Runtime.from_settings(replace(settings, k_sink=None))
    yield built
    built.close()


@pytest.fixture
def s3(settings: Settings) -> S3Client:
    return create_s3_client(settings)


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def exists(s3: S3Client, row: dict[str, Any]) -> bool:
    try:
        s3.head_object(Bucket=row["bucket"], Key=row["key"])
    except ClientError:
        return False
    return True


def test_objects_of_unkept_files_are_removed_after_the_retention(
    conn: Conn,
    settings: Settings,
    s3: S3Client,
    rt: Runtime,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, _ = make_tenant()

    def settled(status: str, days: float) -> dict[str, Any]:
        return file_with_object(
            conn,
            settings,
            tenant,
            CSV,
            status=status,
            created_at=days_ago(days + 1),
            updated_at=days_ago(days),
        )

    expired = [settled(status, 8) for status in RETAINED]  # object_retention: 7 days
    recent = settled("FAILED", 6)
    kept = [settled("PROCESSED", 8), settled("QUARANTINED", 8)]
    upload = s3.create_multipart_upload(Bucket="uploads", Key=expired[0]["key"])["UploadId"]

    assert reconcile(rt).retention_purged >= len(RETAINED)

    for row in expired:
        assert not exists(s3, row), row["status"]
        purged = conn.execute("SELECT status, purged_at FROM files WHERE id = %s", (row["id"],))
        found = purged.fetchone()
        assert found is not None
        assert (found["status"], found["purged_at"] is not None) == (row["status"], True)
    listed = s3.list_multipart_uploads(Bucket="uploads", Prefix=expired[0]["key"])
    assert upload not in {u["UploadId"] for u in listed.get("Uploads", [])}
    for row in [recent, *kept]:
        assert exists(s3, row), row["status"]
        unpurged = conn.execute("SELECT purged_at FROM files WHERE id = %s", (row["id"],))
        assert unpurged.fetchone() == {"purged_at": None}


@pytest.fixture
def endpoint(conn: Conn, make_tenant: Callable[[], tuple[str, str]]) -> Iterator[uuid.UUID]:
    """A webhook endpoint of a fresh tenant (its deliveries and messages go with it)."""
    tenant, _ = make_tenant()
    endpoint_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types)"
        " VALUES (%s, %s, 'https://example.com/hook', 'whsec_test', ARRAY['file.processed'])",
        (endpoint_id, tenant),
    )
    yield endpoint_id
    conn.execute("DELETE FROM webhook_endpoints WHERE id = %s", (endpoint_id,))


def test_history_is_pruned_in_bounded_batches_keeping_what_is_owed(
    conn: Conn,
    rt: Runtime,
    endpoint: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retention, "PRUNE_BATCH", 2)
    monkeypatch.setattr(retention, "PRUNE_BATCHES", 2)
    tenant = conn.execute(
        "SELECT tenant FROM webhook_endpoints WHERE id = %s", (endpoint,)
    ).fetchone()["tenant"]  # type: ignore[index]
    file_id = add_file(conn, tenant)["id"]
    old, young = days_ago(31), days_ago(1)
    for when in [old] * 5 + [young]:
        conn.execute(
            "INSERT INTO processing_logs (file_id, tenant, to_status, created_at)"
            " VALUES (%s, %s, 'PENDING', %s)",
            (file_id, tenant, when),
        )

    def event(name: str, created: datetime, published: datetime | None) -> None:
        conn.execute(
            "INSERT INTO events (id, type, source, subject, tenant, file_id, data, created_at,"
            " published_at) VALUES (%s, 'file.created', '/test', %s, %s, %s, '{}', %s, %s)",
            (f"{file_id}:{name}", str(file_id), tenant, file_id, created, published),
        )

    event("old-published", old, old)
    event("old-unpublished", old, None)
    event("young-published", old, young)
    for attempt, when in enumerate([old, old, young], start=1):
        conn.execute(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, attempt, succeeded,"
            " created_at) VALUES (%s, 'e', %s, false, %s)",
            (endpoint, attempt, when),
        )
    for event_id, state, when in [("a", "delivered", old), ("b", "pending", old),
                                  ("c", "failed", young)]:  # fmt: skip
        conn.execute(
            "INSERT INTO webhook_messages (endpoint_id, event_id, event_type, payload, state,"
            " updated_at) VALUES (%s, %s, 'file.processed', '{}', %s, %s)",
            (endpoint, event_id, state, when),
        )

    def logs_left() -> list[datetime]:
        rows = conn.execute(
            "SELECT created_at FROM processing_logs WHERE file_id = %s", (file_id,)
        ).fetchall()
        return [row["created_at"] for row in rows]

    first = prune_history(rt.pool, days_ago(30))

    assert first.processing_logs == 4  # two batches of two: the bound of one run
    assert len(logs_left()) == 2

    prune_history(rt.pool, days_ago(30))

    assert [when > days_ago(2) for when in logs_left()] == [True]
    events = conn.execute("SELECT id FROM events WHERE file_id = %s ORDER BY id", (file_id,))
    assert [row["id"] for row in events] == [
        f"{file_id}:old-unpublished",
        f"{file_id}:young-published",
    ]
    deliveries = conn.execute(
        "SELECT attempt FROM webhook_deliveries WHERE endpoint_id = %s", (endpoint,)
    )
    assert [row["attempt"] for row in deliveries] == [3]
    messages = conn.execute(
        "SELECT event_id FROM webhook_messages WHERE endpoint_id = %s ORDER BY event_id",
        (endpoint,),
    )
    assert [row["event_id"] for row in messages] == ["b", "c"]
