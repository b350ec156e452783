"""The process function: verify an uploaded object and settle its file as PROCESSED or REJECTED.

For each object-created record: find the file by bucket and key (unknown objects are logged and
acknowledged), take the file's Redlock, move PENDING → UPLOADED (``file.uploaded``) → PROCESSING,
stream the object once (SHA-256, size, sniffed type), compare with what was declared and with the
limits, then PROCESSED (``file.processed``) or REJECTED (``file.rejected``, with the reason). Each
step is a compare-and-set with its event in the same transaction. A notification for a finished
file re-publishes its events and changes nothing. Transient failures raise ``DependencyError`` so
the broker retries; when retries run out the dead-letter sink marks the file FAILED.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from filepipe import events, logs, metrics, telemetry
from filepipe.cache import invalidate_file
from filepipe.errors import DependencyError
from filepipe.inspection import Inspection, inspect, prefetch, sniff
from filepipe.locks import FileLock
from filepipe.notifications import ObjectCreated
from filepipe.runtime import Runtime
from filepipe.storage import readinto_of
from filepipe.transitions import (
    PENDING,
    PROCESSED,
    PROCESSING,
    REJECTED,
    TERMINAL,
    UPLOADED,
    Row,
    event_ids_of,
    find_by_object,
    load_file,
    transition,
)
from filepipe.upload_request import media_essence

log = logging.getLogger(__name__)

SOURCE = "/filepipe/process"
CHUNK_BYTES = 1024 * 1024


class StorageUnavailable(DependencyError):
    """The object could not be read; retrying later may succeed."""


class ConcurrentChange(DependencyError):
    """The file changed under us (another worker); the broker retries and finds it settled."""


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str | None
    content_type: str | None


def process_notification(rt: Runtime, record: ObjectCreated) -> str | None:
    """Handle one object-created record; returns the file's final status (None: unknown object)."""
    with rt.pool.connection() as conn:
        file = find_by_object(conn, record.bucket, record.key)
    if file is None:
        log.info(
            "object is not a filepipe upload", extra={"bucket": record.bucket, "key": record.key}
        )
        return None
    logs.bind(file_id=file["id"], tenant=file["tenant"])
    attributes = {"filepipe.file_id": str(file["id"]), "filepipe.tenant": file["tenant"]}
    with telemetry.span_from("process file", file["traceparent"], attributes=attributes):
        return _process(rt, file)


def _process(rt: Runtime, found: Row) -> str:
    if found["status"] in TERMINAL:
        return _republish(rt, found)
    with FileLock(rt.redis, str(found["id"]), ttl=rt.settings.lock_ttl) as lock:
        started = perf_counter()
        with rt.pool.connection() as conn:
            file = load_file(conn, found["id"])
        assert file is not None, "files are never deleted while notifications are in flight"
        if file["status"] in TERMINAL:
            return _republish(rt, file)
        file = _start(rt, file)
        inspection, etag = _read_object(rt, file, on_chunk=lock.keep_alive)
        verdict = judge(file, inspection, max_bytes=rt.settings.max_upload_bytes)
        status = _settle(rt, file, inspection, etag, verdict)
        recorded = metrics.get()
        recorded.files_settled.labels(status).inc()
        recorded.processing_duration.labels(status).observe(perf_counter() - started)
        recorded.processed_bytes.observe(inspection.size)
        return status


def _republish(rt: Runtime, file: Row) -> str:
    with rt.pool.connection() as conn:
        ids = event_ids_of(conn, file["id"])
    events.publish_recorded(rt.pool, rt.publisher, ids)
    log.info(
        "file already settled; events re-published",
        extra={"file_id": str(file["id"]), "status": file["status"]},
    )
    return str(file["status"])


def _step(
    rt: Runtime,
    file: Row,
    to_status: str,
    message: str,
    event_type: str | None = None,
    **kwargs: Any,
) -> Row:
    with rt.pool.connection() as conn, conn.transaction():
        changed = transition(
            conn, file, to_status, message=message, source=SOURCE, event_type=event_type, **kwargs
        )
    if changed is None:
        raise ConcurrentChange(f"file {file['id']} changed while moving it to {to_status}")
    row, event_id = changed
    invalidate_file(rt.redis, row["id"])
    if event_id:
        events.publish_recorded(rt.pool, rt.publisher, [event_id])
    return row


def _start(rt: Runtime, file: Row) -> Row:
    """PENDING → UPLOADED → PROCESSING; a PROCESSING file under our lock is a dead worker's."""
    if file["status"] == PENDING:
        file = _step(rt, file, UPLOADED, "object arrived", events.FILE_UPLOADED)
    if file["status"] == UPLOADED:
        return _step(rt, file, PROCESSING, "processing started")
    return _step(rt, file, PROCESSING, "processing restarted after an interrupted attempt")


def _read_object(rt: Runtime, file: Row, *, on_chunk: Any) -> tuple[Inspection, str]:
    attributes = {"filepipe.bucket": file["bucket"], "filepipe.key": file["key"]}
    with telemetry.tracer().start_as_current_span("read object", attributes=attributes) as span:
        inspection, etag = _stream_object(rt, file, on_chunk=on_chunk)
        span.set_attribute("filepipe.size", inspection.size)
        return inspection, etag


def _stream_object(rt: Runtime, file: Row, *, on_chunk: Any) -> tuple[Inspection, str]:
    limit = min(file["declared_size"], rt.settings.max_upload_bytes)
    where = f"s3://{file['bucket']}/{file['key']}"
    try:
        obj = rt.s3.get_object(Bucket=file["bucket"], Key=file["key"])
        body = obj["Body"]
        chunks = prefetch(readinto_of(body), chunk_size=CHUNK_BYTES)
        try:
            inspection = inspect(chunks, limit=limit, on_chunk=on_chunk)
        finally:
            chunks.close()
            body.close()
    except (ClientError, BotoCoreError, OSError) as exc:
        raise StorageUnavailable(f"cannot read {where}: {exc}") from exc
    if not inspection.truncated and inspection.size != obj["ContentLength"]:
        raise StorageUnavailable(
            f"read {inspection.size} of {obj['ContentLength']} bytes of {where}; retrying"
        )
    return inspection, str(obj.get("ETag", "")).strip('"')


def judge(file: Row, inspection: Inspection, *, max_bytes: int) -> Verdict:
    """Compare what arrived with what was declared and with the limits (pure)."""
    declared_size = file["declared_size"]
    declared_type = media_essence(file["declared_content_type"])
    if inspection.truncated and inspection.size > max_bytes:
        return Verdict(REJECTED, f"object is larger than the limit of {max_bytes} bytes", None)
    if inspection.truncated:
        return Verdict(REJECTED, f"object is larger than the declared {declared_size} bytes", None)
    if inspection.size != declared_size:
        return Verdict(
            REJECTED, f"object has {inspection.size} bytes, {declared_size} declared", None
        )
    if file["declared_sha256"] and inspection.sha256 != file["declared_sha256"]:
        return Verdict(
            REJECTED,
            f"sha256 {inspection.sha256} differs from the declared {file['declared_sha256']}",
            None,
        )
    detected = sniff(inspection.head, declared_type)
    if detected != declared_type:
        return Verdict(REJECTED, f"content is {detected}, {declared_type} declared", detected)
    return Verdict(PROCESSED, None, detected)


def _settle(rt: Runtime, file: Row, inspection: Inspection, etag: str, verdict: Verdict) -> str:
    facts: dict[str, Any] = {
        "size_bytes": inspection.size,
        "etag": etag,
        "content_type": verdict.content_type,
    }
    if not inspection.truncated:
        facts["sha256"] = inspection.sha256
    if verdict.status == PROCESSED:
        row = _step(
            rt,
            file,
            PROCESSED,
            "verified",
            events.FILE_PROCESSED,
            processed_at=datetime.now(UTC),
            event_data={
                "sha256": inspection.sha256,
                "size": inspection.size,
                "content_type": verdict.content_type,
            },
            **facts,
        )
    else:
        row = _step(
            rt,
            file,
            REJECTED,
            verdict.reason or "rejected",
            events.FILE_REJECTED,
            error=verdict.reason,
            event_data={"reason": verdict.reason},
            **facts,
        )
    log.info(
        "file settled",
        extra={"file_id": str(row["id"]), "status": row["status"], "reason": verdict.reason},
    )
    return str(row["status"])
