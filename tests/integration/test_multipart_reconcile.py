"""Reconcile (the broker emulator's timer → the process function) and multipart uploads: a stale
upload's file is expired and its parts aborted; uploads no PENDING file records are aborted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from filepipe.config import Settings
from filepipe.storage import create_s3_client
from tests.support import multipart as mp
from tests.support.pipeline import Pipeline, pipeline
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
DATA = mp.pdf_bytes(mp.PART_SIZE + 1024)


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    with pipeline(service_env, FILEPIPE_PING_INTERVAL="0.5") as running_pipe:
        yield running_pipe


def open_uploads(settings: Settings, key: str) -> set[str]:
    listed = create_s3_client(settings).list_multipart_uploads(Bucket="uploads", Prefix=key)
    return {upload["UploadId"] for upload in listed.get("Uploads", [])}


def test_a_stale_multipart_upload_is_expired_and_its_parts_aborted(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn, settings: Settings
) -> None:
    file = mp.created(presign, api_key, DATA)
    mp.upload_parts(presign, api_key, file["id"], DATA, [1])
    conn.execute(
        "UPDATE files SET upload_expires_at = now() - interval '1 hour' WHERE id = %s",
        (file["id"],),
    )

    wait_until(
        lambda: conn.execute(
            "SELECT 1 FROM files WHERE id = %s AND status = 'EXPIRED'", (file["id"],)
        ).fetchone(),
        timeout=30,
        what="reconcile to expire the file",
    )
    assert open_uploads(settings, file["key"]) == set()


def test_uploads_no_pending_file_records_are_aborted_and_its_own_kept(
    pipe: Pipeline, presign: FlaskClient, api_key: str, settings: Settings
) -> None:
    s3 = create_s3_client(settings)
    file = mp.created(presign, api_key, DATA)
    unknown_key = f"nobody/{uuid.uuid4()}/orphan.bin"
    orphan = s3.create_multipart_upload(Bucket="uploads", Key=unknown_key)["UploadId"]
    s3.upload_part(Bucket="uploads", Key=unknown_key, UploadId=orphan, PartNumber=1, Body=b"x")
    stray = s3.create_multipart_upload(Bucket="uploads", Key=file["key"])["UploadId"]
    cancelled = mp.created(presign, api_key, DATA)
    assert mp.abort(presign, api_key, cancelled["id"]).status_code == 204
    late = s3.create_multipart_upload(Bucket="uploads", Key=cancelled["key"])["UploadId"]

    wait_until(
        lambda: (
            not open_uploads(settings, unknown_key)
            and open_uploads(settings, file["key"]) == {file["upload"]["upload_id"]}
            and not open_uploads(settings, cancelled["key"])
        ),
        timeout=30,
        what="reconcile to abort the orphaned uploads",
    )
    assert stray != file["upload"]["upload_id"] and late
    assert mp.stored_parts(presign, api_key, file["id"]).status_code == 200
