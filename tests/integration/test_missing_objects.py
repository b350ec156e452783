"""Objects that disappear from under PROCESSED files, against real PostgreSQL and the local S3
server: reconcile's check (least recently checked first; storage down ends it quietly) and a
download (a 410) both make the file MISSING with ``file.missing``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from filepipe.config import Settings
from filepipe.files import store
from filepipe.process.reconcile.objects import check_processed
from filepipe.runtime import Runtime
from filepipe.storage import create_s3_client
from tests.support.files import add_file, file_with_object, row_of
from tests.support.functions import function_app
from tests.support.receiver import Receiver
from tests.support.waiting import free_port

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
CSV = b"name,size\nalpha,1\n"


@pytest.fixture
def rt(settings: Settings, event_receiver: Receiver) -> Iterator[Runtime]:
    built = Runtime.from_settings(
        replace(settings, k_sink=f"{event_receiver.url}/", missing_check_batch=10_000)
    )
    yield built
    built.close()


def missing_events(conn: Conn, file_id: Any) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT id, data FROM events WHERE file_id = %s AND type = 'file.missing'", (file_id,)
    ).fetchall()


def test_the_check_notes_present_objects_and_marks_gone_ones_missing(
    conn: Conn,
    settings: Settings,
    rt: Runtime,
    event_receiver: Receiver,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, _ = make_tenant()
    present = file_with_object(conn, settings, tenant, CSV)
    gone = file_with_object(conn, settings, tenant, CSV)
    create_s3_client(settings).delete_object(Bucket=gone["bucket"], Key=gone["key"])

    checked, missing = check_processed(rt)

    assert checked >= 1 and missing >= 1
    assert row_of(conn, present["id"])["checked_at"] is not None
    assert row_of(conn, present["id"])["status"] == "PROCESSED"
    assert row_of(conn, gone["id"])["status"] == "MISSING"
    assert row_of(conn, gone["id"])["version"] == gone["version"] + 1
    [event] = missing_events(conn, gone["id"])
    assert event["data"]["previous_status"] == "PROCESSED"
    assert event_receiver.requests("/", id=event["id"])


def test_the_least_recently_checked_come_first(
    conn: Conn, rt: Runtime, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, _ = make_tenant()
    now = datetime.now(UTC)
    recent = add_file(conn, tenant, status="PROCESSED", checked_at=now)
    old = add_file(conn, tenant, status="PROCESSED", checked_at=now - timedelta(days=3))
    never = add_file(conn, tenant, status="PROCESSED")

    with rt.pool.connection() as pooled:
        order = [f.id for f in store.least_recently_checked(pooled, 10_000)]

    assert order.index(never["id"]) < order.index(old["id"]) < order.index(recent["id"])


def test_storage_down_ends_the_check_and_changes_nothing(
    conn: Conn, settings: Settings, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, _ = make_tenant()
    row = file_with_object(conn, settings, tenant, CSV)
    down = Runtime.from_settings(
        replace(settings, s3_endpoint_url=f"http://127.0.0.1:{free_port()}", k_sink=None)
    )
    try:
        assert check_processed(down) == (0, 0)
    finally:
        down.close()

    assert row_of(conn, row["id"])["status"] == "PROCESSED"
    assert row_of(conn, row["id"])["checked_at"] is None


def test_a_download_of_a_gone_object_is_a_410_and_the_file_missing(
    conn: Conn,
    settings: Settings,
    function_env: dict[str, str],
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, key = make_tenant()
    row = file_with_object(conn, settings, tenant, CSV)
    create_s3_client(settings).delete_object(Bucket=row["bucket"], Key=row["key"])
    query: FlaskClient = function_app("query").test_client()
    auth = {"Authorization": f"Bearer {key}"}

    answer = query.get(f"/files/{row['id']}/download", headers=auth)

    assert answer.status_code == 410
    assert answer.content_type == "application/problem+json"
    problem = answer.get_json()
    assert problem["file_status"] == "MISSING"
    assert "no longer exists in storage" in problem["detail"]
    assert query.get(f"/files/{row['id']}", headers=auth).get_json()["status"] == "MISSING"
    assert len(missing_events(conn, row["id"])) == 1
    # Asked again: the file is MISSING, not PROCESSED, so a 409 naming that.
    again = query.get(f"/files/{row['id']}/download", headers=auth)
    assert (again.status_code, again.get_json()["file_status"]) == (409, "MISSING")
