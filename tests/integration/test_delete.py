"""``DELETE /files/{id}`` against real PostgreSQL, Redis and the local S3 server: the object and
any unfinished multipart upload of its key removed, ``file.deleted`` recorded and published, the
file kept (DELETED) but out of lists, repeats harmless, a storage outage repaired by repeating;
and the process function and the reconcile job around a deleted file."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from botocore.exceptions import ClientError
from flask.testing import FlaskClient
from redis import Redis

from filepipe import runtime
from filepipe.config import Settings
from filepipe.files import store
from filepipe.files.cache import entry_key
from filepipe.files.model import Status
from filepipe.files.transitions import transition
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.reconcile import reconcile
from filepipe.process.verify import process_notification
from filepipe.query import delete
from filepipe.runtime import Runtime
from filepipe.storage import create_s3_client
from tests.support.files import add_file, file_with_object
from tests.support.functions import function_app
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"delete me " * 200 + b"\n%%EOF\n"
PART = b"p" * (5 * 1024 * 1024)


@pytest.fixture
def query(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, event_receiver: Receiver
) -> FlaskClient:
    """The query function, publishing to ``event_receiver``."""
    monkeypatch.setenv("K_SINK", f"{event_receiver.url}/")
    return function_app("query").test_client()


@pytest.fixture
def s3(settings: Settings) -> S3Client:
    return create_s3_client(settings)


@pytest.fixture
def rt(settings: Settings, event_receiver: Receiver) -> Iterator[Runtime]:
    """The process function's runtime, in this process, publishing to ``event_receiver``."""
    built = Runtime.from_settings(replace(settings, k_sink=f"{event_receiver.url}/"))
    yield built
    built.close()


def call(client: FlaskClient, method: str, path: str, key: str, **kwargs: Any) -> Any:
    return client.open(path, method=method, headers={"Authorization": f"Bearer {key}"}, **kwargs)


def exists(s3: S3Client, row: dict[str, Any]) -> bool:
    try:
        s3.head_object(Bucket=row["bucket"], Key=row["key"])
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "404", exc.response
        return False
    return True


def stored(conn: Conn, file_id: Any) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM files WHERE id = %s", (file_id,)).fetchone()
    assert row is not None
    return row


def events_of(conn: Conn, file_id: Any) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT id, type, source, data, published_at FROM events WHERE file_id = %s"
        " ORDER BY created_at",
        (file_id,),
    ).fetchall()


def test_a_deleted_file_loses_its_object_is_kept_deleted_and_its_event_published(
    query: FlaskClient,
    conn: Conn,
    settings: Settings,
    s3: S3Client,
    redis: Redis,
    event_receiver: Receiver,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, key = make_tenant()
    row = file_with_object(conn, settings, tenant, PDF)
    kept = add_file(conn, tenant, status="PROCESSED")
    path = f"/files/{row['id']}"
    before = call(query, "GET", path, key)
    assert before.get_json()["deleted_at"] is None
    assert redis.exists(entry_key(row["id"]))  # cached: the delete must drop it
    assert exists(s3, row)

    answer = call(query, "DELETE", path, key)

    assert answer.status_code == 204, answer.get_json()
    assert answer.get_data() == b""
    assert not exists(s3, row)
    after = stored(conn, row["id"])
    assert after["status"] == "DELETED"
    assert after["version"] == row["version"] + 1
    assert after["deleted_at"] is not None and after["purged_at"] >= after["deleted_at"]
    [event] = events_of(conn, row["id"])
    assert (event["type"], event["source"]) == ("file.deleted", "/filepipe/query")
    assert event["data"]["status"] == "DELETED" and event["data"]["tenant"] == tenant
    assert event["published_at"] is not None
    [published] = event_receiver.wait_for("/", id=event["id"])
    assert published.ce("type") == "file.deleted"
    assert published.ce("subject") == str(row["id"])

    shown = query.get(
        path, headers={"Authorization": f"Bearer {key}", "If-None-Match": before.headers["ETag"]}
    )
    assert shown.status_code == 200
    assert shown.get_json()["status"] == "DELETED"
    assert shown.get_json()["deleted_at"] == after["deleted_at"].isoformat().replace("+00:00", "Z")
    listed = call(query, "GET", "/files", key).get_json()["items"]
    assert [item["id"] for item in listed] == [str(kept["id"])]
    for status in ("DELETED", "deleted"):
        asked = call(query, "GET", "/files", key, query_string={"status": status})
        assert [item["id"] for item in asked.get_json()["items"]] == [str(row["id"])]
    download = call(query, "GET", f"{path}/download", key)
    assert download.status_code == 409
    assert download.get_json()["file_status"] == "DELETED"

    again = call(query, "DELETE", path, key)

    assert again.status_code == 204
    repeated = stored(conn, row["id"])
    assert repeated["version"] == after["version"]
    assert repeated["purged_at"] > after["purged_at"]  # storage cleared again
    assert [e["id"] for e in events_of(conn, row["id"])] == [event["id"]]


def test_another_tenants_file_or_an_unknown_one_is_a_404(
    query: FlaskClient,
    conn: Conn,
    settings: Settings,
    s3: S3Client,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    owner, _ = make_tenant()
    _, stranger_key = make_tenant()
    row = file_with_object(conn, settings, owner, PDF)

    for file_id in (row["id"], uuid.uuid4()):
        answer = call(query, "DELETE", f"/files/{file_id}", stranger_key)
        assert answer.status_code == 404
        assert answer.content_type == "application/problem+json"
    assert stored(conn, row["id"])["status"] == "PROCESSED"
    assert exists(s3, row)
    assert call(query, "DELETE", f"/files/{row['id']}", "fpk_not-a-key").status_code == 401


def test_unfinished_multipart_uploads_of_the_key_are_aborted_and_only_they(
    query: FlaskClient, conn: Conn, s3: S3Client, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    row = add_file(conn, tenant, status="UPLOADED")
    bucket, object_key = row["bucket"], row["key"]
    uploads = [s3.create_multipart_upload(Bucket=bucket, Key=object_key) for _ in range(2)]
    s3.upload_part(
        Bucket=bucket, Key=object_key, UploadId=uploads[0]["UploadId"], PartNumber=1, Body=PART
    )
    sibling = s3.create_multipart_upload(Bucket=bucket, Key=f"{object_key}.other")

    def open_uploads() -> set[tuple[str, str]]:
        listed = s3.list_multipart_uploads(Bucket=bucket, Prefix=object_key)
        return {(u["Key"], u["UploadId"]) for u in listed.get("Uploads", [])}

    assert open_uploads() >= {(object_key, u["UploadId"]) for u in uploads}
    try:
        assert call(query, "DELETE", f"/files/{row['id']}", key).status_code == 204

        assert open_uploads() == {(f"{object_key}.other", sibling["UploadId"])}
        assert stored(conn, row["id"])["status"] == "DELETED"
    finally:
        s3.abort_multipart_upload(
            Bucket=bucket, Key=f"{object_key}.other", UploadId=sibling["UploadId"]
        )


def test_a_storage_outage_is_a_503_and_repeating_the_call_repairs_it(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    conn: Conn,
    settings: Settings,
    s3: S3Client,
    closed_port_url: str,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, key = make_tenant()
    row = file_with_object(conn, settings, tenant, PDF)
    monkeypatch.setenv("FILEPIPE_S3_ENDPOINT_URL", closed_port_url)
    runtime.reset()
    storage_down = function_app("query").test_client()

    failed = call(storage_down, "DELETE", f"/files/{row['id']}", key)

    assert failed.status_code == 503
    assert failed.headers["Retry-After"]
    assert failed.content_type == "application/problem+json"
    marked = stored(conn, row["id"])
    assert (marked["status"], marked["purged_at"]) == ("DELETED", None)
    assert exists(s3, row)

    monkeypatch.setenv("FILEPIPE_S3_ENDPOINT_URL", function_env["FILEPIPE_S3_ENDPOINT_URL"])
    runtime.reset()
    repeated = call(function_app("query").test_client(), "DELETE", f"/files/{row['id']}", key)

    assert repeated.status_code == 204
    assert not exists(s3, row)
    assert stored(conn, row["id"])["purged_at"] is not None
    assert stored(conn, row["id"])["version"] == marked["version"]


def test_a_late_object_of_a_deleted_file_is_ignored_by_process_and_removed_by_reconcile(
    query: FlaskClient,
    conn: Conn,
    s3: S3Client,
    rt: Runtime,
    event_receiver: Receiver,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, key = make_tenant()
    row = add_file(conn, tenant, declared_size=len(PDF))  # PENDING, its URL still valid
    assert call(query, "DELETE", f"/files/{row['id']}", key).status_code == 204
    deleted = stored(conn, row["id"])
    published = len(event_receiver.all_requests())
    # The upload URL, still valid, creates the object after the deletion.
    s3.put_object(Bucket=row["bucket"], Key=row["key"], Body=PDF)
    record = ObjectCreated("s3:ObjectCreated:Put", row["bucket"], row["key"], len(PDF), None)

    assert process_notification(rt, record) == Status.DELETED

    assert stored(conn, row["id"]) == deleted
    assert [e["type"] for e in events_of(conn, row["id"])] == ["file.deleted"]
    assert len(event_receiver.all_requests()) == published  # nothing re-published
    with rt.pool.connection() as pooled:
        assert row["id"] not in {f.id for f in store.unpurged(pooled, datetime.now(UTC), 1000)}

    # Later: the URL has expired, after the purge of the deletion.
    conn.execute(
        "UPDATE files SET upload_expires_at = now() - interval '1 hour',"
        " purged_at = now() - interval '2 hours' WHERE id = %s",
        (row["id"],),
    )
    assert reconcile(rt).purged >= 1

    assert not exists(s3, row)
    purged = stored(conn, row["id"])
    assert purged["purged_at"] > purged["upload_expires_at"]
    with rt.pool.connection() as pooled:
        assert row["id"] not in {f.id for f in store.unpurged(pooled, datetime.now(UTC), 1000)}


def test_a_file_deleted_while_being_processed_stays_deleted(
    conn: Conn,
    database_url: str,
    settings: Settings,
    rt: Runtime,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, _ = make_tenant()
    row = file_with_object(conn, settings, tenant, PDF, status="PENDING", declared_size=len(PDF))
    with rt.pool.connection() as pooled:
        file = store.load(pooled, row["id"])
    assert file is not None
    record = ObjectCreated("s3:ObjectCreated:Put", row["bucket"], row["key"], len(PDF), None)

    with (
        ThreadPoolExecutor(1) as pool,
        psycopg.connect(database_url, autocommit=True) as deleter,
    ):
        with deleter.transaction():
            # The deletion's compare-and-set holds the row until it commits; the worker
            # reads the file as PENDING meanwhile and its own compare-and-set waits for it.
            deleted = transition(
                deleter, file, delete.deletion(datetime.now(UTC)), source=delete.SOURCE
            )
            assert deleted is not None
            worker = pool.submit(process_notification, rt, record)
            wait_until(lambda: waiting_on_a_row(conn), timeout=10, what="the worker to wait")
        outcome = worker.result(timeout=30)

    assert outcome == Status.DELETED
    after = stored(conn, row["id"])
    assert (after["status"], after["version"]) == ("DELETED", file.version + 1)
    logged = conn.execute(
        "SELECT to_status FROM processing_logs WHERE file_id = %s ORDER BY id", (row["id"],)
    ).fetchall()
    assert [entry["to_status"] for entry in logged] == ["DELETED"]


def waiting_on_a_row(conn: Conn) -> bool:
    """Whether a statement on ``files`` waits for a lock another transaction holds."""
    return bool(
        conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE files SET status%%'"
        ).fetchone()
    )
