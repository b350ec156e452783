"""Verified bytes stay verified: an object that changes after its file was PROCESSED is verified
again; other bytes quarantine the file (recorded and announced), the same bytes keep it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from flask.testing import FlaskClient

from filepipe.config import Settings
from filepipe.process.bucket_events import redrive_notification
from filepipe.storage import create_s3_client
from tests.support.files import Conn
from tests.support.pipeline import Pipeline, pipeline
from tests.support.uploads import put, request_upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n" + b"verified " * 100 + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    with pipeline(service_env) as running_pipe:
        yield running_pipe


def row(conn: Conn, file_id: str) -> dict[str, Any]:
    found = conn.execute("SELECT * FROM files WHERE id = %s", (file_id,)).fetchone()
    assert found is not None
    return found


def processed(conn: Conn, presign: FlaskClient, api_key: str) -> dict[str, Any]:
    upload = request_upload(presign, api_key, PDF)
    put(upload, PDF)
    wait_until(lambda: row(conn, upload["id"])["status"] == "PROCESSED", what="PROCESSED")
    return upload


def test_other_bytes_after_verification_quarantine_the_file(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn, settings: Settings
) -> None:
    upload = processed(conn, presign, api_key)
    verified = row(conn, upload["id"])
    swapped = PDF.replace(b"verified", b"swapped!")  # same size, same type, other bytes

    # Whoever holds storage credentials overwrites the object (the presigned URL cannot).
    create_s3_client(settings).put_object(Bucket=upload["bucket"], Key=upload["key"], Body=swapped)

    wait_until(
        lambda: row(conn, upload["id"])["status"] == "QUARANTINED",
        timeout=30,
        what="the changed object to be verified again",
    )
    after = row(conn, upload["id"])
    assert after["sha256"] == hashlib.sha256(swapped).hexdigest() != verified["sha256"]
    assert after["error"].startswith("object changed after verification")
    [event] = conn.execute(
        "SELECT data FROM events WHERE file_id = %s AND type = 'file.quarantined'",
        (upload["id"],),
    ).fetchall()
    assert event["data"]["verified_sha256"] == verified["sha256"]
    wait_until(
        lambda: any(
            r.headers.get("ce-type") == "file.quarantined"
            and r.headers.get("ce-subject") == upload["id"]
            for r in pipe.notify.all_requests()
        ),
        what="file.quarantined to reach notify",
    )


def test_a_changed_etag_with_the_same_bytes_keeps_the_file_and_logs_it(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = processed(conn, presign, api_key)
    before = row(conn, upload["id"])
    notification = redrive_notification(upload["bucket"], upload["key"], len(PDF), "other-etag")
    with pika.BlockingConnection(pika.URLParameters(pipe.env["FILEPIPE_AMQP_URL"])) as amqp:
        channel = amqp.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            pipe.env["FILEPIPE_S3_NOTIFY_EXCHANGE"], "", json.dumps(notification).encode()
        )

    wait_until(
        lambda: row(conn, upload["id"])["version"] == before["version"] + 1,
        timeout=30,
        what="the re-verification to be recorded",
    )
    after = row(conn, upload["id"])
    assert (after["status"], after["sha256"]) == ("PROCESSED", before["sha256"])
    messages = [
        r["message"]
        for r in conn.execute(
            "SELECT message FROM processing_logs WHERE file_id = %s ORDER BY id", (upload["id"],)
        )
    ]
    assert messages[-1] == "object rewritten with the verified bytes"
