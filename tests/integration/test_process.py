"""Uploads processed through the broker emulator and the process function (real processes)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pika
import psycopg
import pytest
from flask.testing import FlaskClient

from filepipe import events
from filepipe.config import Settings
from filepipe.locks import LockUnavailable
from filepipe.process.bucket_events import ObjectCreated, redrive_notification
from filepipe.process.verify import process_notification
from filepipe.runtime import Runtime
from filepipe.storage import create_s3_client
from tests.support.broker import queue_depth
from tests.support.faultproxy import FaultProxy
from tests.support.pipeline import Pipeline, pipeline
from tests.support.uploads import put, request_upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"pipeline " * 200 + b"\n%%EOF\n"
JUNK = b"\xff\xff\xff\xff" + bytes(range(256)) * 8
"""Binary bytes puremagic's weakest candidate calls text/plain."""
LATE_BINARY = b"a,b\n" * 10_000 + b"\xff"
"""Text for far longer than the sniffed head, then a byte no UTF-8 text has."""
PROCESS_MAX_BYTES = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    """The pipeline, its process function reading S3 through a 8 MiB/s link."""
    s3_port = int(service_env["FILEPIPE_S3_ENDPOINT_URL"].rsplit(":", 1)[1])
    with (
        FaultProxy("127.0.0.1", s3_port, bytes_per_second=8 * 1024 * 1024) as slow_link,
        pipeline(
            service_env,
            FILEPIPE_MAX_UPLOAD_BYTES=str(PROCESS_MAX_BYTES),
            FILEPIPE_S3_ENDPOINT_URL=f"http://127.0.0.1:{slow_link.port}",
        ) as running_pipe,
    ):
        yield running_pipe


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(settings)
    yield runtime
    runtime.close()


def settled(conn: Conn, file_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        row = conn.execute("SELECT * FROM files WHERE id = %s", (file_id,)).fetchone()
        return row if row and row["status"] in ("PROCESSED", "REJECTED", "FAILED") else None

    return wait_until(probe, timeout=timeout, what=f"file {file_id} to settle")


def event_rows(conn: Conn, file_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM events WHERE file_id = %s ORDER BY created_at", (file_id,)
    ).fetchall()


def received_types(pipe: Pipeline, file_id: str) -> list[str]:
    return [
        r.headers["ce-type"]
        for r in list(pipe.notify.all_requests())
        if r.headers.get("ce-subject") == file_id
    ]


def test_upload_ends_processed_with_facts_events_and_logs(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = request_upload(presign, api_key, PDF)
    put(upload, PDF)
    row = settled(conn, upload["id"])

    assert row["status"] == "PROCESSED", row["error"]
    assert row["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert (row["size_bytes"], row["content_type"]) == (len(PDF), "application/pdf")
    assert row["etag"] == hashlib.md5(PDF).hexdigest()  # noqa: S324 - S3's ETag of one PUT
    assert row["version"] == 4 and row["processed_at"] is not None
    emitted = event_rows(conn, upload["id"])
    assert [e["type"] for e in emitted] == ["file.created", "file.uploaded", "file.processed"]
    assert [e["id"] for e in emitted] == [
        events.event_id(upload["id"], version, kind)
        for version, kind in [(1, "file.created"), (2, "file.uploaded"), (4, "file.processed")]
    ]
    wait_until(
        lambda: all(e["published_at"] for e in event_rows(conn, upload["id"])),
        what="every event to be published after its commit",
    )
    logs = conn.execute(
        "SELECT from_status, to_status FROM processing_logs WHERE file_id = %s ORDER BY id",
        (upload["id"],),
    ).fetchall()
    assert [(r["from_status"], r["to_status"]) for r in logs] == [
        (None, "PENDING"),
        ("PENDING", "UPLOADED"),
        ("UPLOADED", "PROCESSING"),
        ("PROCESSING", "PROCESSED"),
    ]
    wait_until(
        lambda: received_types(pipe, upload["id"]) == ["file.uploaded", "file.processed"],
        what="notify to receive file.uploaded then file.processed",
    )
    processed = next(
        r
        for r in pipe.notify.all_requests()
        if r.headers.get("ce-subject") == upload["id"] and r.headers["ce-type"] == "file.processed"
    )
    assert processed.headers["ce-id"] == emitted[2]["id"]
    data = json.loads(processed.body)
    assert (data["status"], data["version"], data["sha256"]) == ("PROCESSED", 4, row["sha256"])


def test_duplicate_notification_and_racing_workers_process_once(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn, rt: Runtime
) -> None:
    data = PDF * 50
    upload = request_upload(presign, api_key, data)
    record = ObjectCreated("s3:ObjectCreated:Put", upload["bucket"], upload["key"], len(data), "")
    put(upload, data)  # the pipeline's own worker races the two below
    outcomes: list[object] = []

    def worker() -> None:
        for _ in range(200):
            try:
                outcomes.append(process_notification(rt, record))
                return
            except Exception as exc:  # noqa: BLE001 - busy/changed: a broker would retry
                outcomes.append(type(exc).__name__)
                threading.Event().wait(0.05)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    row = settled(conn, upload["id"])
    publish_notification(pipe, record)  # a late duplicate through the whole pipeline
    wait_until(  # the racing workers here have no K_SINK: the pipeline's publish it
        lambda: "file.processed" in received_types(pipe, upload["id"]),
        what="the duplicate to re-publish file.processed",
    )

    assert row["status"] == "PROCESSED" and row["version"] == 4
    assert "PROCESSED" in outcomes
    again = conn.execute("SELECT version, status FROM files WHERE id = %s", (upload["id"],))
    assert again.fetchone() == {"version": 4, "status": "PROCESSED"}
    emitted = event_rows(conn, upload["id"])
    assert [e["type"] for e in emitted].count("file.processed") == 1
    ids = {
        r.headers["ce-id"]
        for r in pipe.notify.all_requests()
        if r.headers.get("ce-subject") == upload["id"] and r.headers["ce-type"] == "file.processed"
    }
    assert len(ids) == 1, "a re-published event keeps its id"
    transitions = conn.execute(
        "SELECT count(*) AS n FROM processing_logs WHERE file_id = %s AND to_status = 'PROCESSED'",
        (upload["id"],),
    ).fetchone()
    assert transitions == {"n": 1}


def publish_notification(pipe: Pipeline, record: ObjectCreated) -> None:
    """Publish a MinIO-format notification on the S3 notification exchange, as MinIO would."""
    with pika.BlockingConnection(pika.URLParameters(pipe.env["FILEPIPE_AMQP_URL"])) as amqp:
        channel = amqp.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            pipe.env["FILEPIPE_S3_NOTIFY_EXCHANGE"],
            "",
            json.dumps(
                redrive_notification(record.bucket, record.key, record.size or 0, record.etag or "")
            ),
            pika.BasicProperties(content_type="application/json", delivery_mode=2),
        )


@pytest.mark.parametrize(
    ("declared", "sent", "reason"),
    [
        ({}, PDF[:-1] + b"X", "differs from the declared"),
        ({"size": len(PDF) + 5}, PDF, f"object has {len(PDF)} bytes, {len(PDF) + 5} declared"),
        (
            {"sha256": None, "size": PROCESS_MAX_BYTES + 1},
            PDF + b"0" * PROCESS_MAX_BYTES,
            f"larger than the limit of {PROCESS_MAX_BYTES} bytes",
        ),
        ({"sha256": None, "content_type": "image/png"}, PDF, "content is application/pdf"),
        (
            {"sha256": None, "size": len(JUNK), "content_type": "text/plain"},
            JUNK,
            "content is application/octet-stream, text/plain declared",
        ),
        (
            {"sha256": None, "size": len(LATE_BINARY), "content_type": "text/csv"},
            LATE_BINARY,
            "content is application/octet-stream, text/csv declared",
        ),
    ],
    ids=["sha256", "size", "over-limit", "content-type", "junk-as-text", "late-binary-as-text"],
)
def test_bytes_that_break_the_declaration_are_rejected_with_the_reason(
    pipe: Pipeline,
    presign: FlaskClient,
    api_key: str,
    conn: Conn,
    settings: Settings,
    declared: dict[str, Any],
    sent: bytes,
    reason: str,
) -> None:
    upload = request_upload(presign, api_key, PDF, **declared)
    # The local S3 server, like MinIO, refuses other bytes on the presigned URL; bytes can
    # still arrive another way (anyone holding the storage key), and process trusts no
    # upload: write them with the functions' own key.
    create_s3_client(settings).put_object(
        Bucket=upload["bucket"],
        Key=upload["key"],
        Body=sent,
        ContentType=upload["upload"]["headers"]["Content-Type"],
    )
    row = settled(conn, upload["id"])

    assert row["status"] == "REJECTED"
    assert reason in row["error"]
    [rejected] = [e for e in event_rows(conn, upload["id"]) if e["type"] == "file.rejected"]
    assert reason in rejected["data"]["reason"]
    wait_until(
        lambda: "file.rejected" in received_types(pipe, upload["id"]),
        what="notify to receive file.rejected",
    )


def test_worker_killed_mid_stream_is_redelivered_and_processed_once(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    big = b"%PDF-1.7\n" + b"\0" * (PROCESS_MAX_BYTES - 64)  # ~0.5 s to stream at 8 MiB/s
    upload = request_upload(presign, api_key, big)
    put(upload, big)

    def status() -> str:
        row = conn.execute("SELECT status FROM files WHERE id = %s", (upload["id"],)).fetchone()
        assert row is not None
        return str(row["status"])

    wait_until(
        lambda: status() == "PROCESSING",
        timeout=20,
        interval=0.005,
        what="the worker to start streaming",
    )
    pipe.kill_process()
    assert status() == "PROCESSING", "the worker was killed mid-stream"
    pipe.start_process()
    row = settled(conn, upload["id"], timeout=60)

    assert row["status"] == "PROCESSED", row["error"]
    assert row["sha256"] == hashlib.sha256(big).hexdigest()
    assert [e["type"] for e in event_rows(conn, upload["id"])].count("file.processed") == 1
    logs = conn.execute(
        "SELECT to_status, message FROM processing_logs WHERE file_id = %s ORDER BY id",
        (upload["id"],),
    ).fetchall()
    assert [r["to_status"] for r in logs].count("PROCESSED") == 1
    assert any(r["message"].startswith("processing restarted") for r in logs), logs


def test_redis_down_fails_clearly_then_processes_once_when_back(
    pipe: Pipeline,
    presign: FlaskClient,
    api_key: str,
    conn: Conn,
    settings: Settings,
    closed_port_url: str,
) -> None:
    upload = request_upload(presign, api_key, PDF)
    record = ObjectCreated("s3:ObjectCreated:Put", upload["bucket"], upload["key"], None, None)
    redis_down = closed_port_url.replace("http://", "redis://")
    down = Runtime.from_settings(replace(settings, redis_url=redis_down))
    try:
        with pytest.raises(LockUnavailable, match="Redis is unavailable"):
            process_notification(down, record)
    finally:
        down.close()
    unchanged = conn.execute("SELECT status, version FROM files WHERE id = %s", (upload["id"],))
    assert unchanged.fetchone() == {"status": "PENDING", "version": 1}

    put(upload, PDF)  # Redis is back for the pipeline: the broker's delivery goes through
    row = settled(conn, upload["id"])
    assert (row["status"], row["version"]) == ("PROCESSED", 4)
    up = Runtime.from_settings(settings)
    try:
        assert process_notification(up, record) == "PROCESSED"
    finally:
        up.close()
    again = conn.execute("SELECT status, version FROM files WHERE id = %s", (upload["id"],))
    assert again.fetchone() == {"status": "PROCESSED", "version": 4}


def dead_letters(pipe: Pipeline, trigger: str) -> int:
    return queue_depth(f"{pipe.prefix}.{trigger}.dlq", pipe.env["FILEPIPE_AMQP_URL"])


def test_a_notification_for_an_object_that_is_not_there_is_settled_missing_without_retries(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = request_upload(presign, api_key, PDF)  # the object never arrives
    record = ObjectCreated("s3:ObjectCreated:Put", upload["bucket"], upload["key"], len(PDF), "x")
    publish_notification(pipe, record)
    row = wait_until(
        lambda: conn.execute(
            "SELECT * FROM files WHERE id = %s AND status = 'MISSING'", (upload["id"],)
        ).fetchone(),
        what="the file to be MISSING",
    )

    assert (
        row["error"]
        == f"object s3://{upload['bucket']}/{upload['key']} no longer exists in storage"
    )
    assert row["dead_letters"] == 0
    [missing] = [e for e in event_rows(conn, upload["id"]) if e["type"] == "file.missing"]
    assert missing["data"]["reason"] == row["error"]
    wait_until(
        lambda: "file.missing" in received_types(pipe, upload["id"]),
        what="notify to receive file.missing",
    )
    assert dead_letters(pipe, "process-object-created") == 0, "a permanent outcome: no retries"
