"""Reconcile (the PingSource timer of the broker emulator → the process function): lost
notifications re-driven, unpublished events published, expired PENDING rows expired."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from tests.conftest import SESSION
from tests.support.pipeline import Pipeline, pipeline
from tests.support.processes import running
from tests.support.uploads import put, request_upload
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"reconcile " * 100 + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def lossy_s3(s3_env: dict[str, str]) -> Iterator[str]:
    """An S3 server whose notifications go to an exchange nothing consumes: all are lost."""
    port = free_port()
    env = {**s3_env, "FILEPIPE_S3_NOTIFY_EXCHANGE": f"filepipe-test-{SESSION}.nobody-listens"}
    with running(["-m", "local.s3_server", "--port", str(port)], port=port, env=env):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str], lossy_s3: str) -> Iterator[Pipeline]:
    with pipeline(
        service_env, FILEPIPE_S3_ENDPOINT_URL=lossy_s3, FILEPIPE_PING_INTERVAL="0.5"
    ) as running_pipe:
        yield running_pipe


def status_of(conn: Conn, file_id: str) -> str:
    row = conn.execute("SELECT status FROM files WHERE id = %s", (file_id,)).fetchone()
    assert row is not None
    return str(row["status"])


def test_a_lost_notification_is_re_driven_and_the_file_processed(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = request_upload(presign, api_key, PDF, filename="r.pdf")
    put(upload, PDF)

    wait_until(
        lambda: status_of(conn, upload["id"]) == "PROCESSED",
        timeout=30,
        what="reconcile to re-drive the lost notification",
    )
    logs = conn.execute(
        "SELECT to_status FROM processing_logs WHERE file_id = %s ORDER BY id", (upload["id"],)
    ).fetchall()
    assert [r["to_status"] for r in logs] == ["PENDING", "UPLOADED", "PROCESSING", "PROCESSED"]


def test_an_unpublished_event_is_published(
    pipe: Pipeline, presign_broker_down: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = request_upload(presign_broker_down, api_key, PDF, filename="r.pdf")
    event = conn.execute("SELECT id FROM events WHERE file_id = %s", (upload["id"],)).fetchone()
    assert event is not None

    published = wait_until(
        lambda: conn.execute(
            "SELECT attempts FROM events WHERE id = %s AND published_at IS NOT NULL",
            (event["id"],),
        ).fetchone(),
        timeout=30,
        what="reconcile to publish the event",
    )
    # presign's attempt failed (its sink is closed), and so may its republisher's retries (to the
    # same closed sink); reconcile's succeeded.
    assert published["attempts"] >= 2


def test_an_expired_pending_row_without_object_is_expired(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = request_upload(presign, api_key, PDF, filename="r.pdf")
    conn.execute(
        "UPDATE files SET upload_expires_at = now() - interval '1 hour' WHERE id = %s",
        (upload["id"],),
    )

    wait_until(
        lambda: status_of(conn, upload["id"]) == "EXPIRED",
        timeout=30,
        what="reconcile to expire the row",
    )
    log = conn.execute(
        "SELECT from_status, message FROM processing_logs WHERE file_id = %s"
        " AND to_status = 'EXPIRED'",
        (upload["id"],),
    ).fetchone()
    assert log == {"from_status": "PENDING", "message": "upload URL expired and no object arrived"}
