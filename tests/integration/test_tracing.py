"""One upload, one trace: presign's request, its insert, processing (lock, S3 read) and notify's
webhook delivery, run in-process with the trace context handed over as the pipeline does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from filepipe import auth, runtime, telemetry
from filepipe.files import outbox
from filepipe.notify import handler
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.verify import process_notification
from tests.support.functions import function_app
from tests.support.receiver import Receiver, receiving
from tests.support.uploads import put, request_upload
from tests.support.webhooks import register

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"traced " * 100 + b"\n%%EOF\n"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process ends while the test runs."""
    exporter = InMemorySpanExporter()
    with telemetry.recording(exporter):
        yield exporter


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture
def env(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("FILEPIPE_WEBHOOK_ALLOW_LOOPBACK", "true")
    return function_env


def one(found: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(found) == 1, f"{what}: {[s.name for s in found]}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def attribute(span: ReadableSpan, name: str) -> object:
    return (span.attributes or {}).get(name)


def descends(span: ReadableSpan, ancestor: ReadableSpan, by_id: dict[int, ReadableSpan]) -> bool:
    parent = parent_of(span)
    while parent is not None:
        if parent == span_id(ancestor):
            return True
        parent = parent_of(by_id[parent]) if parent in by_id else None
    return False


def test_an_upload_is_one_trace_from_presign_to_the_webhook(
    env: dict[str, str], conn: Conn, spans: InMemorySpanExporter, hooks: Receiver
) -> None:
    tenant = f"tr-{uuid.uuid4().hex[:8]}"
    key = auth.create_key(conn, tenant)
    register(function_app("notify", "webhooks").test_client(), key, hooks.url + "/hook")
    presign = function_app("presign").test_client()
    spans.clear()

    upload = request_upload(presign, key, PDF)
    put(upload, PDF)
    record = ObjectCreated("s3:ObjectCreated:Put", upload["bucket"], upload["key"], None, None)
    assert process_notification(runtime.current(), record) == "PROCESSED"
    processed = conn.execute(
        "SELECT id FROM events WHERE file_id = %s AND type = 'file.processed'", (upload["id"],)
    ).fetchone()
    assert processed is not None
    with runtime.current().pool.connection() as pooled:
        [event] = outbox.load(pooled, [processed["id"]])
    handler.handle(event.to_cloudevent())  # as the broker delivers it
    hooks.wait_for("/hook")

    finished = list(spans.get_finished_spans())
    by_id = {span_id(s): s for s in finished}

    def named(name: str) -> list[ReadableSpan]:
        return [s for s in finished if s.name == name]

    request = one(named("POST /uploads"), "presign's request span")
    insert = one(
        [s for s in finished if str(attribute(s, "db.statement") or "").find("INTO files") > 0],
        "the files insert",
    )
    processing = one(named("process file"), "the processing span")
    lock = one(named("lock file"), "the lock span")
    read = one(named("read object"), "the S3 read span")
    get_object = one(
        [s for s in finished if attribute(s, "rpc.method") == "GetObject"], "GetObject"
    )
    notify = one(named("notify file.processed"), "notify's span")
    # notify also retries other tests' due deliveries (deliver_event's sweep): this event's only.
    delivery = one(
        [s for s in named("webhook POST") if attribute(s, "cloudevents.event_id") == event.id],
        "the webhook delivery",
    )
    publish = one([s for s in finished if s.name == "EVAL" and descends(s, notify, by_id)], "Redis")

    assert request.kind == SpanKind.SERVER and request.parent is None
    trace_ids = {
        s.context.trace_id
        for s in (request, insert, processing, lock, read, get_object, notify, delivery, publish)
        if s.context
    }
    assert len(trace_ids) == 1
    assert descends(insert, request, by_id)
    assert parent_of(processing) == span_id(request)  # via the files row's traceparent
    assert parent_of(lock) == span_id(processing)
    assert parent_of(read) == span_id(processing)
    assert parent_of(get_object) == span_id(read)
    assert parent_of(notify) == span_id(processing)  # via the event's traceparent
    assert parent_of(delivery) == span_id(notify)
    assert delivery.kind == SpanKind.CLIENT

    row = conn.execute("SELECT traceparent FROM files WHERE id = %s", (upload["id"],)).fetchone()
    assert row is not None and row["traceparent"].split("-")[1] == format(
        request.context.trace_id if request.context else 0, "032x"
    )
    logged = conn.execute(
        "SELECT DISTINCT trace_id FROM processing_logs WHERE file_id = %s", (upload["id"],)
    ).fetchall()
    assert [r["trace_id"] for r in logged] == [row["traceparent"].split("-")[1]]


def test_logs_are_json_lines_with_the_request_trace_and_file(
    env: dict[str, str],
    conn: Conn,
    spans: InMemorySpanExporter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant = f"tr-{uuid.uuid4().hex[:8]}"
    key = auth.create_key(conn, tenant)
    presign = function_app("presign").test_client()
    capsys.readouterr()

    upload = request_upload(presign, key, PDF)  # K_SINK unset: a warning names the outbox

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    request = one([s for s in spans.get_finished_spans() if s.name == "POST /uploads"], "request")
    assert request.context is not None
    [warning] = [line for line in lines if line["message"].startswith("K_SINK is not set")]
    assert warning["level"] == "WARNING" and warning["logger"] == "filepipe.files.outbox"
    assert warning["function"] == "presign" and "time" in warning
    assert warning["trace_id"] == format(request.context.trace_id, "032x")
    assert len(warning["span_id"]) == 16
    assert warning["file_id"] == upload["id"] and warning["tenant"] == tenant
    assert key not in json.dumps(lines)
