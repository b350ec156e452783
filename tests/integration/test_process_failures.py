"""How the process function fails: transient causes answered 503 with the real cause, objects gone
made MISSING at once, dead letters that leave good files recoverable, replay that recovers them,
and a dead worker's lock taken over promptly (the function through functions-framework, the
pipeline as real processes)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from redis import Redis
from werkzeug.test import TestResponse

from filepipe import runtime
from filepipe.config import Settings
from filepipe.locks import FileLock, LockLost
from filepipe.process.bucket_events import RABBITMQ_EVENT, ObjectCreated, redrive_notification
from filepipe.process.verify import process_notification
from filepipe.runtime import Runtime
from local.broker.envelope import Envelope, dead_letter
from tests.support.broker import queue_depth, replay
from tests.support.faultproxy import FaultProxy
from tests.support.files import add_file, event_types, file_with_object, row_of, tenants
from tests.support.functions import function_app
from tests.support.locks import lock_held_elsewhere
from tests.support.pipeline import pipeline, presign_client
from tests.support.redis_server import RedisServer
from tests.support.uploads import put, request_upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"failures " * 100 + b"\n%%EOF\n"
TTL = 2.0


@pytest.fixture
def tenant(conn: Conn) -> Iterator[str]:
    with tenants(conn) as make:
        yield make()[0]


@pytest.fixture
def process(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> ProcessFactory:
    """The process function as functions-framework serves it, with settings of the test's own
    (environment variables set before its runtime is built)."""

    def make(**env: str) -> FlaskClient:
        monkeypatch.setenv("FILEPIPE_LOCK_TTL", str(TTL))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return function_app("process").test_client()

    return make


ProcessFactory = Callable[..., FlaskClient]


def notification(file: dict[str, Any]) -> Envelope:
    """The CloudEvent RabbitmqSource makes of MinIO's notification for ``file``'s object."""
    body = redrive_notification(file["bucket"], file["key"], len(PDF), "etag")
    attributes = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/apis/v1/namespaces/filepipe/rabbitmqsources/minio-notifications",
        "type": RABBITMQ_EVENT,
        "datacontenttype": "application/json",
    }
    return Envelope(attributes, json.dumps(body).encode())


def dead(file: dict[str, Any], status: int, body: bytes) -> Envelope:
    """``file``'s notification as the broker's dead-letter sink receives it."""
    return dead_letter(
        notification(file), destination="http://process.filepipe.svc", status=status, body=body
    )


def problem(detail: str) -> bytes:
    return json.dumps({"title": "Service Unavailable", "status": 503, "detail": detail}).encode()


def send(client: FlaskClient, event: Envelope) -> TestResponse:
    return client.post("/", data=event.data, headers=event.http_headers())


def log_messages(conn: Conn, file_id: object) -> list[str]:
    rows = conn.execute(
        "SELECT message FROM processing_logs WHERE file_id = %s ORDER BY id", (file_id,)
    )
    return [r["message"] for r in rows.fetchall()]


def pending_pdf(conn: Conn, settings: Settings, tenant: str) -> dict[str, Any]:
    """A PENDING file whose object holds the PDF it declared."""
    return file_with_object(
        conn, settings, tenant, PDF, status="PENDING", size_bytes=None, declared_size=len(PDF)
    )


# --- transient causes: 503 naming the real cause --------------------------------------------


def test_redis_down_answers_503_naming_the_cause(
    process: ProcessFactory,
    conn: Conn,
    settings: Settings,
    tenant: str,
    closed_port_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = process(FILEPIPE_REDIS_URL=closed_port_url.replace("http://", "redis://"))
    file = pending_pdf(conn, settings, tenant)

    with caplog.at_level(logging.WARNING):
        answer = send(client, notification(file))

    # one warning naming the cause, not a crash logged with its traceback
    assert [r.levelname for r in caplog.records if r.exc_info] == []
    assert any(r.getMessage().startswith("transient failure") for r in caplog.records)

    assert answer.status_code == 503
    assert answer.mimetype == "application/problem+json" and answer.headers["Retry-After"]
    detail = answer.get_json()["detail"]
    assert detail.startswith(f"Redis is unavailable, cannot lock file {file['id']}: ")
    assert "ConnectionError" in detail and "Connection refused" in detail
    assert (row_of(conn, file["id"])["status"], row_of(conn, file["id"])["version"]) == (
        "PENDING",
        1,
    )


def test_storage_down_answers_503_naming_the_cause(
    process: ProcessFactory, conn: Conn, settings: Settings, tenant: str, closed_port_url: str
) -> None:
    client = process(FILEPIPE_S3_ENDPOINT_URL=closed_port_url.rstrip("/"))
    file = pending_pdf(conn, settings, tenant)

    answer = send(client, notification(file))

    assert answer.status_code == 503
    detail = answer.get_json()["detail"]
    assert detail.startswith(f"cannot read s3://{file['bucket']}/{file['key']}: ")
    assert "EndpointConnectionError" in detail
    assert row_of(conn, file["id"])["version"] == 1, "nothing changed: the broker retries"


def test_postgresql_exhausted_answers_503_naming_the_cause(
    process: ProcessFactory, conn: Conn, settings: Settings, tenant: str
) -> None:
    client = process(FILEPIPE_DB_POOL_MIN="1", FILEPIPE_DB_POOL_MAX="1")
    file = pending_pdf(conn, settings, tenant)

    with runtime.current().pool.connection():  # the function's only connection, held
        answer = send(client, notification(file))

    assert answer.status_code == 503
    detail = answer.get_json()["detail"]
    assert detail.startswith("PostgreSQL is unavailable: PoolTimeout: "), detail


# --- permanent: the object is gone ---------------------------------------------------------


@pytest.mark.parametrize("status", ["PENDING", "UPLOADED", "PROCESSING", "FAILED"])
def test_a_notification_for_an_object_gone_makes_the_file_missing_at_once(
    process: ProcessFactory, conn: Conn, tenant: str, status: str
) -> None:
    client = process()
    file = add_file(conn, tenant, status=status)  # no object stored

    answer = send(client, notification(file))

    assert answer.status_code == 200, answer.get_data(as_text=True)
    row = row_of(conn, file["id"])
    reason = f"object s3://{file['bucket']}/{file['key']} no longer exists in storage"
    assert (row["status"], row["error"], row["version"]) == ("MISSING", reason, 2)
    assert event_types(conn, file["id"]) == ["file.missing"]
    assert log_messages(conn, file["id"]) == [reason]


# --- dead letters ----------------------------------------------------------------------------


def test_transient_dead_letters_count_and_keep_the_file_until_the_limit(
    process: ProcessFactory, conn: Conn, tenant: str
) -> None:
    client = process(FILEPIPE_PROCESS_MAX_DEAD_LETTERS="3")
    file = add_file(conn, tenant, status="UPLOADED")
    cause = f"Redis is unavailable, cannot lock file {file['id']}: ConnectionError: refused"

    for count in (1, 2):
        assert send(client, dead(file, 503, problem(cause))).status_code == 200
        row = row_of(conn, file["id"])
        assert (row["status"], row["dead_letters"], row["error"]) == ("UPLOADED", count, cause)
        assert log_messages(conn, file["id"])[-1] == (
            f"dead-lettered {count}/3: {cause}; reconcile re-drives it"
        )
    assert event_types(conn, file["id"]) == [], "no event while the file is recoverable"

    assert send(client, dead(file, 0, b"")).status_code == 200  # no response at all
    row = row_of(conn, file["id"])
    reason = "dead-lettered 3/3, giving up: no response"
    assert (row["status"], row["dead_letters"], row["error"]) == ("FAILED", 3, reason)
    [failed] = conn.execute(
        "SELECT data FROM events WHERE file_id = %s AND type = 'file.failed'", (file["id"],)
    ).fetchall()
    assert failed["data"]["reason"] == reason


def test_a_dead_letter_of_a_status_not_retried_fails_the_file_at_once(
    process: ProcessFactory, conn: Conn, tenant: str
) -> None:
    client = process()
    file = add_file(conn, tenant)

    assert send(client, dead(file, 400, b"the request is malformed")).status_code == 200

    row = row_of(conn, file["id"])
    reason = "the broker gave up (HTTP 400): the request is malformed"
    assert (row["status"], row["error"], row["dead_letters"]) == ("FAILED", reason, 1)
    assert event_types(conn, file["id"]) == ["file.failed"]


def test_a_dead_letter_leaves_a_settled_file_as_it_is(
    process: ProcessFactory, conn: Conn, tenant: str
) -> None:
    client = process()
    file = add_file(conn, tenant, status="PROCESSED")

    assert send(client, dead(file, 503, problem("late"))).status_code == 200

    row = row_of(conn, file["id"])
    assert (row["status"], row["version"], row["dead_letters"]) == ("PROCESSED", 1, 0)


def test_a_notification_for_a_failed_file_processes_it_again(
    process: ProcessFactory, conn: Conn, settings: Settings, tenant: str
) -> None:
    client = process()
    file = pending_pdf(conn, settings, tenant)
    assert send(client, dead(file, 400, b"refused")).status_code == 200
    assert row_of(conn, file["id"])["status"] == "FAILED"

    assert send(client, notification(file)).status_code == 200  # a replayed dead letter

    row = row_of(conn, file["id"])
    assert (row["status"], row["error"]) == ("PROCESSED", None)
    assert event_types(conn, file["id"]) == ["file.failed", "file.processed"]
    assert "processing again after it failed" in log_messages(conn, file["id"])


# --- locks: a dead worker's is taken over, a live worker's is not stolen ---------------------


def test_a_killed_workers_lock_is_taken_over_and_the_file_settled(
    process: ProcessFactory, conn: Conn, settings: Settings, tenant: str
) -> None:
    client = process()
    file = pending_pdf(conn, settings, tenant)
    with lock_held_elsewhere(settings.redis_url, str(file["id"]), TTL) as worker:
        worker.kill()
        worker.wait(10)
        killed_at = time.monotonic()

        answer = send(client, notification(file))
        took = time.monotonic() - killed_at

    assert answer.status_code == 200
    assert row_of(conn, file["id"])["status"] == "PROCESSED"
    assert took <= TTL + 3, f"settled {took:.1f}s after the worker died"


def test_a_duplicate_finding_a_live_worker_is_acknowledged_and_the_file_settled_once(
    process: ProcessFactory, conn: Conn, settings: Settings, tenant: str
) -> None:
    client = process()
    file = pending_pdf(conn, settings, tenant)
    redis = Redis.from_url(settings.redis_url)
    try:
        with FileLock(redis, str(file["id"]), ttl=TTL):  # a live worker on the file
            started = time.monotonic()
            answer = send(client, notification(file))
            waited = time.monotonic() - started
            assert answer.status_code == 200, "acknowledged: the live worker does the work"
            assert waited < TTL, "a renewal of the lock showed its holder alive"
            assert row_of(conn, file["id"])["version"] == 1
    finally:
        redis.close()

    assert send(client, notification(file)).status_code == 200  # the worker went away unsettled
    assert send(client, notification(file)).status_code == 200  # a late duplicate
    assert row_of(conn, file["id"])["status"] == "PROCESSED"
    assert event_types(conn, file["id"]).count("file.processed") == 1


def test_a_worker_that_cannot_renew_its_lock_stops_before_settling(
    conn: Conn, settings: Settings, tenant: str
) -> None:
    big = b"%PDF-1.7\n" + b"\0" * (3 * 1024 * 1024)  # about 3 s through the slow link below
    file = file_with_object(
        conn, settings, tenant, big, status="PENDING", size_bytes=None, declared_size=len(big)
    )
    record = ObjectCreated("s3:ObjectCreated:Put", file["bucket"], file["key"], len(big), None)
    s3_port = int(str(settings.s3_endpoint_url).rsplit(":", 1)[1])
    redis_port = int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    outcome: list[object] = []
    with (
        FaultProxy("127.0.0.1", s3_port, bytes_per_second=1024 * 1024) as slow_s3,
        FaultProxy("127.0.0.1", redis_port) as redis_link,
    ):
        rt = Runtime.from_settings(
            replace(
                settings,
                s3_endpoint_url=f"http://127.0.0.1:{slow_s3.port}",
                redis_url=f"redis://127.0.0.1:{redis_link.port}/0",
                lock_ttl=TTL,
            )
        )

        def work() -> None:
            try:
                outcome.append(process_notification(rt, record))
            except LockLost as exc:
                outcome.append(exc)

        worker = threading.Thread(target=work)
        try:
            worker.start()
            wait_until(
                lambda: row_of(conn, file["id"])["status"] == "PROCESSING",
                what="the worker to start streaming",
            )
            redis_link.cut()  # Redis gone for this worker: its heartbeat cannot renew
            worker.join(30)
        finally:
            rt.close()

    [lost] = outcome
    assert isinstance(lost, LockLost), lost
    assert str(lost).startswith(f"lost the lock on file {file['id']}: ")
    row = row_of(conn, file["id"])
    assert (row["status"], row["version"]) == ("PROCESSING", 3), "stopped before settling"
    assert "file.processed" not in event_types(conn, file["id"])


# --- replay recovers: through the whole pipeline ---------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.close()


def test_dead_lettered_while_redis_was_down_then_replayed_ends_processed(
    service_env: dict[str, str],
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    conn: Conn,
    api_key: str,
    own_redis: RedisServer,
) -> None:
    with pipeline(
        service_env,
        FILEPIPE_REDIS_URL=own_redis.url,
        FILEPIPE_BROKER_BACKOFF_SCALE="0.02",  # the Trigger's retries over in about a second
        FILEPIPE_PROCESS_MAX_DEAD_LETTERS="1",  # the first dead letter fails the file
    ) as pipe:
        presign = presign_client(pipe, monkeypatch)
        own_redis.kill()
        upload = request_upload(presign, api_key, PDF)
        put(upload, PDF)

        failed = wait_until(
            lambda: (row := row_of(conn, upload["id"]))["status"] == "FAILED" and row,
            timeout=30,
            what="the dead letter to fail the file",
        )
        assert f"Redis is unavailable, cannot lock file {upload['id']}: " in failed["error"]
        assert "ConnectionError" in failed["error"], "the real cause, not a generic page"
        dlq = f"{pipe.prefix}.process-object-created.dlq"
        wait_until(
            lambda: queue_depth(dlq, pipe.env["FILEPIPE_AMQP_URL"]) >= 1,
            what="the dead letter to be kept",
        )

        own_redis.start()  # healed
        assert replay(pipe.env, "process-object-created") >= 1

        recovered = wait_until(
            lambda: (row := row_of(conn, upload["id"]))["status"] == "PROCESSED" and row,
            timeout=30,
            what="the replayed notification to process the file",
        )
    assert recovered["error"] is None
    assert event_types(conn, upload["id"]) == ["file.created", "file.failed", "file.processed"]
