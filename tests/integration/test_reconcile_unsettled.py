"""Reconcile and unsettled files, against real PostgreSQL and the local S3 server, publishing to
a real receiver: stuck UPLOADED and PROCESSING files re-driven (less often after each dead
letter), gone objects MISSING, files unsettled too long FAILED with their last cause, and each
tenant served in turn."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from filepipe.config import Settings
from filepipe.files import store
from filepipe.files.model import FileRow
from filepipe.process.reconcile import reconcile
from filepipe.runtime import Runtime
from tests.support.files import add_file, file_with_object
from tests.support.receiver import Receiver, Recorded

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"stuck " * 100 + b"\n%%EOF\n"


@pytest.fixture
def rt(settings: Settings, event_receiver: Receiver) -> Iterator[Runtime]:
    """The process function's runtime, publishing to ``event_receiver`` (stuck_after 120 s)."""
    built = Runtime.from_settings(replace(settings, k_sink=f"{event_receiver.url}/"))
    yield built
    built.close()


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def unsettled(rt: Runtime, limit: int = 10_000) -> list[FileRow]:
    """What reconcile would look at now, oldest first and each tenant in turn (grace 60 s,
    stuck after 120 s)."""
    with rt.pool.connection() as pooled:
        return store.unsettled(
            pooled,
            datetime.now(UTC),
            grace=timedelta(seconds=60),
            stuck_after=timedelta(seconds=120),
            limit=limit,
        )


def redrives(receiver: Receiver, row: dict[str, Any]) -> list[Recorded]:
    """The notifications re-driven for ``row``'s object so far."""
    subject = f"{row['bucket']}/{row['key']}"
    return [
        r
        for r in receiver.all_requests()
        if r.ce("type") == "dev.knative.rabbitmq.event" and r.ce("subject") == subject
    ]


@pytest.fixture
def with_object(conn: Conn, settings: Settings) -> Callable[..., dict[str, Any]]:
    """Makes a file of a tenant in a status, with its object, unchanged for ``idle`` seconds."""

    def make(tenant: str, status: str, idle: float, **columns: Any) -> dict[str, Any]:
        return file_with_object(
            conn,
            settings,
            tenant,
            PDF,
            status=status,
            created_at=columns.pop("created_at", ago(idle + 60)),
            updated_at=ago(idle),
            **columns,
        )

    return make


def test_stuck_files_are_re_driven_and_again_only_after_their_backoff(
    conn: Conn,
    rt: Runtime,
    event_receiver: Receiver,
    make_tenant: Callable[[], tuple[str, str]],
    with_object: Callable[..., dict[str, Any]],
) -> None:
    tenant, _ = make_tenant()
    uploaded = with_object(tenant, "UPLOADED", 200)
    # One dead letter: due after 240 s unchanged, not after 200 s.
    waiting = with_object(tenant, "PROCESSING", 200, dead_letters=1)
    overdue = with_object(tenant, "PROCESSING", 300, dead_letters=1)

    reconcile(rt)

    first = redrives(event_receiver, uploaded)
    assert len(first) == 1
    assert redrives(event_receiver, waiting) == []
    assert len(redrives(event_receiver, overdue)) == 1
    record = json.loads(first[0].body)["Records"][0]
    assert record["s3"]["object"]["size"] == len(PDF)
    assert first[0].ce("source") == "/filepipe/process/reconcile"
    checked = conn.execute("SELECT checked_at FROM files WHERE id = %s", (uploaded["id"],))
    assert checked.fetchone()["checked_at"] is not None  # type: ignore[index]

    reconcile(rt)  # within the backoff: nothing more

    assert len(redrives(event_receiver, uploaded)) == 1
    assert len(redrives(event_receiver, overdue)) == 1

    conn.execute(
        "UPDATE files SET checked_at = now() - interval '130 seconds' WHERE id = %s",
        (uploaded["id"],),
    )
    reconcile(rt)

    again = redrives(event_receiver, uploaded)
    assert len(again) == 2
    assert again[1].ce("id") != again[0].ce("id")
    assert conn.execute(
        "SELECT status, version FROM files WHERE id = %s", (uploaded["id"],)
    ).fetchone() == {"status": "UPLOADED", "version": uploaded["version"]}


def test_a_stuck_file_whose_object_is_gone_becomes_missing(
    conn: Conn,
    rt: Runtime,
    event_receiver: Receiver,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, _ = make_tenant()
    row = add_file(conn, tenant, status="PROCESSING", created_at=ago(400), updated_at=ago(300))

    assert reconcile(rt).missing >= 1

    missing = conn.execute("SELECT status, error FROM files WHERE id = %s", (row["id"],))
    assert missing.fetchone() == {
        "status": "MISSING",
        "error": f"object s3://uploads/{row['key']} no longer exists in storage",
    }
    event = conn.execute(
        "SELECT id, data FROM events WHERE file_id = %s AND type = 'file.missing'", (row["id"],)
    ).fetchone()
    assert event is not None
    assert event["data"]["previous_status"] == "PROCESSING"
    assert event_receiver.requests("/", id=event["id"])
    assert redrives(event_receiver, row) == []


def test_a_file_unsettled_past_the_give_up_fails_with_its_last_cause(
    conn: Conn,
    rt: Runtime,
    event_receiver: Receiver,
    make_tenant: Callable[[], tuple[str, str]],
    with_object: Callable[..., dict[str, Any]],
) -> None:
    tenant, _ = make_tenant()
    cause = "lock unavailable: Redis at 127.0.0.1:6379 refused the connection"
    row = with_object(tenant, "UPLOADED", 3600, created_at=ago(86400 + 600), error=cause)
    young = with_object(tenant, "UPLOADED", 3600, created_at=ago(86400 - 600), error=cause)

    assert reconcile(rt).gave_up >= 1

    failed = conn.execute("SELECT status, error FROM files WHERE id = %s", (row["id"],))
    found = failed.fetchone()
    assert found is not None and found["status"] == "FAILED"
    assert re.fullmatch(r"gave up after 870\d\d s: " + re.escape(cause), found["error"])
    event = conn.execute(
        "SELECT data FROM events WHERE file_id = %s AND type = 'file.failed'", (row["id"],)
    ).fetchone()
    assert event is not None and event["data"]["reason"] == found["error"]
    assert redrives(event_receiver, row) == []
    # Younger than process_give_up: re-driven instead.
    assert len(redrives(event_receiver, young)) == 1


def test_each_tenant_is_served_in_turn_oldest_first(
    conn: Conn, make_tenant: Callable[[], tuple[str, str]], rt: Runtime
) -> None:
    hog, _ = make_tenant()
    small, _ = make_tenant()
    hogs = [add_file(conn, hog, status="UPLOADED", updated_at=ago(2000 - i)) for i in range(40)]
    smalls = [add_file(conn, small, status="PROCESSING", updated_at=ago(500 - i)) for i in (0, 1)]

    mine = [file.id for file in unsettled(rt) if file.tenant in (hog, small)]
    expected = [hogs[0], smalls[0], hogs[1], smalls[1], *hogs[2:]]
    assert mine == [row["id"] for row in expected]
    assert len(unsettled(rt, limit=3)) == 3


def test_an_upload_under_way_is_looked_at_in_turn_and_expired_as_soon_as_its_url_is(
    conn: Conn, rt: Runtime, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, _ = make_tenant()
    row = add_file(conn, tenant, created_at=ago(100))  # PENDING, its URL valid 15 min

    reconcile(rt)

    looked = conn.execute("SELECT status, checked_at FROM files WHERE id = %s", (row["id"],))
    found = looked.fetchone()
    assert found is not None and found["status"] == "PENDING"
    assert found["checked_at"] is not None
    assert row["id"] not in {file.id for file in unsettled(rt)}  # looked at: not again before 120 s

    conn.execute(
        "UPDATE files SET upload_expires_at = now() - interval '2 minutes' WHERE id = %s",
        (row["id"],),
    )
    reconcile(rt)

    expired = conn.execute("SELECT status FROM files WHERE id = %s", (row["id"],))
    assert expired.fetchone() == {"status": "EXPIRED"}
