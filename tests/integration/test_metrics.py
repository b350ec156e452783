"""Every process's ``/metrics`` parses and moves with real traffic, one worker or several."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import requests
from flask.testing import FlaskClient
from websockets.sync.client import connect

from filepipe import auth, events, metrics
from filepipe.config import Settings
from filepipe.files import outbox
from filepipe.locks import FileLock, LockBusy
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.dead_letters import DeadLetter, record_dead_letter
from filepipe.runtime import Runtime
from tests.support.functions import function_app
from tests.support.metrics import families, samples_of, scrape, value
from tests.support.pipeline import Pipeline, pipeline
from tests.support.processes import running
from tests.support.receiver import Receiver
from tests.support.uploads import put, request_upload
from tests.support.waiting import free_port, port_open, wait_until
from tests.support.webhooks import file_event, register, send

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"metrics " * 100 + b"\n%%EOF\n"
PORTS = {"process": free_port(), "broker": free_port(), "presign": free_port()}


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    """The pipeline with the process function and the broker emulator serving metrics."""
    with pipeline(
        service_env,
        FILEPIPE_METRICS_PORT=str(PORTS["process"]),
        FILEPIPE_BROKER_METRICS_PORT=str(PORTS["broker"]),
    ) as running_pipe:
        yield running_pipe


def scraped_when(port: int, ready: Any, what: str) -> list[Any]:
    """Scrape ``port`` until ``ready(samples)`` holds (the counters move after each commit)."""

    def probe() -> tuple[list[Any]] | None:
        if not port_open(port):
            return None
        samples = scrape(port)
        return (samples,) if ready(samples) else None  # a tuple: no samples yet is an answer

    return wait_until(probe, timeout=30, what=what)[0]


def test_an_upload_moves_the_counters_of_presign_process_and_broker(
    pipe: Pipeline,
    presign: FlaskClient,
    api_key: str,
    conn: Conn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FILEPIPE_METRICS_PORT", str(PORTS["presign"]))
    upload = request_upload(presign, api_key, PDF)
    put(upload, PDF)

    presigned = scrape(PORTS["presign"])
    assert value(presigned, "filepipe_uploads_requested_total", replayed="false") == 1
    assert value(presigned, "filepipe_http_requests_total", route="/uploads", status="201") == 1
    assert value(presigned, "filepipe_http_request_duration_seconds_count", route="/uploads") == 1
    scraped_when(
        PORTS["presign"],
        lambda s: value(s, "filepipe_events_published_total", type="file.created") == 1,
        "presign to count its event",  # published after the answer
    )

    processed = scraped_when(
        PORTS["process"],
        lambda s: value(s, "filepipe_files_total", status="PROCESSED") == 1,
        "the process function to count the processed file",  # counted after its events
    )
    assert value(processed, "filepipe_events_published_total", type="file.processed") == 1
    assert value(processed, "filepipe_processing_duration_seconds_count", status="PROCESSED") == 1
    assert value(processed, "filepipe_processed_bytes_sum") == len(PDF)
    assert value(processed, "filepipe_lock_wait_seconds_count", result="acquired") == 1
    assert value(processed, "filepipe_events_published_total", type="file.uploaded") == 1
    row = conn.execute("SELECT status FROM files WHERE id = %s", (upload["id"],)).fetchone()
    assert row is not None and row["status"] == "PROCESSED"

    assert "filepipe_dead_letters" in families(PORTS["broker"])
    assert value(scrape(PORTS["broker"]), "filepipe_dead_letters_total") == 0


def test_two_gunicorn_workers_report_one_correct_total(
    service_env: dict[str, str], conn: Conn, tmp_path: Path
) -> None:
    key = auth.create_key(conn, "metrics-tenant")
    port, metrics_port, requests_made = free_port(), free_port(), 40
    env = {
        **service_env,
        "WORKERS": "2",
        "THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "FILEPIPE_METRICS_PORT": str(metrics_port),
    }
    args = ["-m", "filepipe.server", "--target", "query", "--source"]
    args += ["functions/query/main.py", "--port", str(port)]
    with running(args, port=port, env=env), ThreadPoolExecutor(8) as pool:
        before = scraped_when(metrics_port, lambda s: True, "gunicorn's master to serve /metrics")
        assert value(before, "filepipe_http_requests_total") == 0, "served from start-up"

        def get(_: int) -> int:
            response = requests.get(
                f"http://127.0.0.1:{port}/files",
                headers={"Authorization": f"Bearer {key}", "Connection": "close"},
                timeout=10,
            )
            return response.status_code

        assert set(pool.map(get, range(requests_made))) == {200}
        samples = scrape(metrics_port)

    total = value(samples, "filepipe_http_requests_total", route="/files", status="200")
    assert total == requests_made
    assert value(samples, "filepipe_http_request_duration_seconds_count") == requests_made
    assert value(samples, "filepipe_cache_lookups_total", kind="api_key") == requests_made
    assert list(tmp_path.glob("counter_*.db")), "the workers wrote to the shared directory"


def test_the_gateway_counts_open_websocket_connections(
    service_env: dict[str, str], conn: Conn
) -> None:
    key = auth.create_key(conn, "metrics-gateway")
    port, metrics_port = free_port(), free_port()
    env = {**service_env, "FILEPIPE_METRICS_PORT": str(metrics_port)}
    args = ["-m", "filepipe.notify.gateway", "--host", "127.0.0.1", "--port", str(port)]
    gauge = "filepipe_websocket_connections"
    with running(args, port=port, env=env):
        with connect(f"ws://127.0.0.1:{port}/ws?token={key}"):
            scraped_when(metrics_port, lambda s: value(s, gauge) == 1, "one open connection")
        scraped_when(metrics_port, lambda s: value(s, gauge) == 0, "the connection to close")


def test_webhook_api_requests_and_deliveries_are_counted_by_result(
    function_env: dict[str, str],
    conn: Conn,
    event_receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("FILEPIPE_METRICS_PORT", str(port))
    monkeypatch.setenv("FILEPIPE_WEBHOOK_ALLOW_LOOPBACK", "true")
    tenant = f"metrics-{uuid.uuid4().hex[:8]}"
    key = auth.create_key(conn, tenant)
    api = function_app("notify", "webhooks").test_client()
    notify = function_app("notify", "notify").test_client()
    register(api, key, event_receiver.url + "/ok", ["file.processed"])
    register(api, key, event_receiver.url + "/down", ["file.processed"])
    event_receiver.plan("/down", 500)

    send(notify, file_event(conn, tenant, "file.processed"))

    samples = scrape(port)
    assert value(samples, "filepipe_http_requests_total", route="/webhooks", status="201") == 2
    assert value(samples, "filepipe_webhook_deliveries_total", result="success") == 1
    assert value(samples, "filepipe_webhook_deliveries_total", result="failure") == 1
    count = "filepipe_webhook_delivery_duration_seconds_count"
    assert value(samples, count) == 2


def test_a_held_file_lock_counts_as_contention(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    file_id = str(uuid.uuid4())
    try:
        with FileLock(client, file_id, ttl=5), pytest.raises(LockBusy):
            FileLock(client, file_id, ttl=5).__enter__()
    finally:
        client.close()
    recorded = metrics.get()
    assert samples_of(recorded.lock_contention)[0].value == 1
    waits = {s.labels["result"]: s.value for s in samples_of(recorded.lock_wait)}
    assert "acquired" in waits and "busy" in waits


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    built = Runtime.from_settings(settings)
    yield built
    built.close()


def test_publishing_counts_published_events_and_failures_by_type(
    rt: Runtime, conn: Conn, event_receiver: Receiver, closed_port_url: str
) -> None:
    event = events.Event(
        id=str(uuid.uuid4()),
        type="file.created",
        source="/filepipe/test",
        subject="metrics",
        tenant="metrics-outbox",
        file_id=None,
        data={"tenant": "metrics-outbox"},
        time=datetime.now(UTC),
    )
    outbox.record(conn, event)

    assert outbox.publish(rt.pool, events.Publisher(closed_port_url), [event.id]) == 0
    assert outbox.publish(rt.pool, events.Publisher(event_receiver.url), [event.id]) == 1

    registry, labels = metrics.get().registry, {"type": "file.created"}
    assert registry.get_sample_value("filepipe_event_publish_failures_total", labels) == 1
    assert registry.get_sample_value("filepipe_events_published_total", labels) == 1


def test_every_dead_letter_the_process_function_receives_is_counted(rt: Runtime) -> None:
    record = ObjectCreated("s3:ObjectCreated:Put", "uploads", f"no/{uuid.uuid4()}", 1, None)

    assert record_dead_letter(rt, record, DeadLetter(400, "refused")) is None

    counted = metrics.get().registry.get_sample_value(
        "filepipe_dead_letters_total", {"source": "process"}
    )
    assert counted == 1
