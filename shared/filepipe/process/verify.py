"""Verifying an uploaded object and settling its file as PROCESSED, REJECTED or MISSING.

For each object-created record: find the file by bucket and key (unknown objects are logged and
acknowledged), take the file's Redlock (held by a heartbeat for the whole processing), open the
object, move PENDING → UPLOADED (``file.uploaded``) → PROCESSING in one transaction, stream
the object once (SHA-256, size, sniffed type), compare with what was declared and with the
limits, then PROCESSED (``file.processed``) or REJECTED (``file.rejected``, with the reason).
Each step is a compare-and-set with its log row and event in the same transaction.

What the broker is told (its retries are for causes that may pass, nothing else):

- Transient causes (PostgreSQL, Redis or storage unavailable, a lock lost, the file changed
  under us) raise ``DependencyError``: the function answers 503 naming the cause and the broker
  retries; a dead letter leaves the file to reconcile (``dead_letters``).
- Permanent outcomes are settled here and acknowledged: an object that no longer exists makes
  the file MISSING (``file.missing``), never retried.
- A duplicate that finds a live worker holding the file's lock (its heartbeat renews it) is
  acknowledged: that worker does the work, and reconcile re-drives the file should it die. A
  dead worker's lock is taken over within about one TTL (``filepipe.locks``).
- A notification for a settled file re-publishes its events and changes nothing, but for a
  FAILED file, which is processed again (so replaying dead letters recovers files), and for a
  PROCESSED file whose notification tells of another size or ETag: the object changed after it
  was verified, so it is verified again; the same bytes keep it PROCESSED (the change is logged),
  other bytes make it QUARANTINED (``file.quarantined``). Verified bytes never silently change.
- A DELETED file is left alone: a notification for it is ignored, and a file deleted while being
  processed stays DELETED (the compare-and-set that would move it on fails, as may reading its
  removed object; the worker then stops).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter

from filepipe import events, logs, mediatypes, metrics, telemetry
from filepipe.errors import DependencyError
from filepipe.files import outbox, store
from filepipe.files.missing import mark_missing
from filepipe.files.model import FileRow, Status
from filepipe.files.transitions import Change, Findings, apply
from filepipe.locks import FileLock, LockBusy
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.inspection import Inspection, sniff
from filepipe.process.reading import (
    ObjectMissing,
    OpenObject,
    StorageUnavailable,
    opened,
    read_object,
)
from filepipe.runtime import Runtime

log = logging.getLogger(__name__)

SOURCE = "/filepipe/process"


class ConcurrentChange(DependencyError):
    """The file changed under us (another worker); the broker retries and finds it settled."""


REPROCESSED = frozenset({Status.FAILED})
"""Settled statuses that a notification processes again: FAILED files are recoverable."""


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str | None
    content_type: str | None


def process_notification(rt: Runtime, record: ObjectCreated) -> Status | None:
    """Handle one object-created record; returns the file's final status (None: unknown object)."""
    with rt.pool.connection() as conn:
        file = store.find_by_object(conn, record.bucket, record.key)
    if file is None:
        log.info(
            "object is not a filepipe upload", extra={"bucket": record.bucket, "key": record.key}
        )
        return None
    logs.bind(file_id=file.id, tenant=file.tenant)
    attributes = {"filepipe.file_id": str(file.id), "filepipe.tenant": file.tenant}
    with telemetry.span_from("process file", file.traceparent, attributes=attributes):
        if file.status == Status.PROCESSED and changed_since_verified(file, record):
            return _reverify(rt, file)
        return _process(rt, file)


def changed_since_verified(file: FileRow, record: ObjectCreated) -> bool:
    """Whether ``record`` tells of other bytes than the ones ``file`` recorded (pure)."""
    etag = record.etag.strip('"') if record.etag else None
    return (record.size is not None and record.size != file.size_bytes) or (
        etag is not None and file.etag is not None and etag != file.etag
    )


def _process(rt: Runtime, found: FileRow) -> Status:
    if _finished(found):
        return _already_settled(rt, found)
    try:
        with FileLock(rt.redis, str(found.id), ttl=rt.settings.lock_ttl) as lock:
            file = _reload(rt, found)
            if _finished(file):
                return _already_settled(rt, file)
            return _work(rt, file, lock)
    except LockBusy:
        return _busy(found)


def _finished(file: FileRow) -> bool:
    """Whether a notification for ``file`` has nothing left to do but re-publish."""
    return file.status.settled and file.status not in REPROCESSED


def _busy(file: FileRow) -> Status:
    """Acknowledge a notification whose file a live worker is processing (it renews its lock)."""
    log.info(
        "file is being processed by another worker; notification acknowledged",
        extra={"file_id": str(file.id), "status": file.status},
    )
    return file.status


def _work(rt: Runtime, file: FileRow, lock: FileLock) -> Status:
    """Open, start, verify and settle ``file`` under its ``lock``."""
    started = perf_counter()
    try:
        with opened(rt.s3, file) as obj:
            file = _start(rt, file)
            inspection, verdict, findings = _verify(rt, file, lock, obj)
            lock.check()
            status = _settle(rt, file, inspection, verdict, findings)
    except (ObjectMissing, ConcurrentChange, StorageUnavailable) as stopped:
        return _stopped(rt, file, stopped)
    recorded = metrics.get()
    recorded.files_settled.labels(status).inc()
    recorded.processing_duration.labels(status).observe(perf_counter() - started)
    recorded.processed_bytes.observe(inspection.size)
    return status


def _stopped(
    rt: Runtime, file: FileRow, cause: ObjectMissing | ConcurrentChange | StorageUnavailable
) -> Status:
    """How work on ``file`` ends when ``cause`` stopped it: MISSING if its object is gone,
    DELETED if the file was deleted meanwhile (what failed then is a consequence); else
    ``cause`` is raised again, transient."""
    if isinstance(cause, ObjectMissing):
        return _missing(rt, file)
    if not _deleted_meanwhile(rt, file):
        raise cause
    return Status.DELETED


def _missing(rt: Runtime, file: FileRow) -> Status:
    """The object is gone: the file becomes MISSING (a permanent outcome, acknowledged)."""
    missing = mark_missing(rt, file, source=SOURCE)
    if missing is not None:
        metrics.get().files_settled.labels(Status.MISSING).inc()
        return missing.status
    if _deleted_meanwhile(rt, file):
        return Status.DELETED
    raise ConcurrentChange(f"file {file.id} changed while marking it MISSING")


def _reload(rt: Runtime, found: FileRow) -> FileRow:
    """The file as it is now (read again once its lock is held)."""
    with rt.pool.connection() as conn:
        file = store.load(conn, found.id)
    assert file is not None, "files are never deleted while notifications are in flight"
    return file


def _verify(
    rt: Runtime, file: FileRow, lock: FileLock, obj: OpenObject
) -> tuple[Inspection, Verdict, Findings]:
    """Read the opened object once, judge it against the declaration, and what to record."""
    inspection, etag = read_object(
        file, obj, limit=rt.settings.max_upload_bytes, on_chunk=lock.check
    )
    verdict = judge(file, inspection, max_bytes=rt.settings.max_upload_bytes)
    findings = Findings(
        size_bytes=inspection.size,
        sha256=inspection.sha256,  # None when reading stopped past the limit
        content_type=verdict.content_type,
        etag=etag,
    )
    return inspection, verdict, findings


def _reverify(rt: Runtime, found: FileRow) -> Status:
    """Read the changed object again: the same bytes keep the file, others quarantine it."""
    try:
        with FileLock(rt.redis, str(found.id), ttl=rt.settings.lock_ttl) as lock:
            file = _reload(rt, found)
            if file.status != Status.PROCESSED:
                return _already_settled(rt, file)
            try:
                settled = _requalify(rt, file, lock)
            except (ObjectMissing, ConcurrentChange, StorageUnavailable) as stopped:
                return _stopped(rt, file, stopped)
    except LockBusy:
        return _busy(found)
    log.warning(
        "object changed after verification",
        extra={"file_id": str(file.id), "status": settled.status, "etag": settled.etag},
    )
    metrics.get().files_settled.labels(settled.status).inc()
    return settled.status


def _requalify(rt: Runtime, file: FileRow, lock: FileLock) -> FileRow:
    """Verify a PROCESSED file's object again: PROCESSED with the same bytes, else QUARANTINED."""
    with opened(rt.s3, file) as obj:
        inspection, verdict, findings = _verify(rt, file, lock, obj)
    lock.check()
    if verdict.status == Status.PROCESSED and inspection.sha256 == file.sha256:
        change = Change(
            Status.PROCESSED, "object rewritten with the verified bytes", findings=findings
        )
    else:
        reason = verdict.reason or f"sha256 {inspection.sha256} differs from {file.sha256}"
        reason = f"object changed after verification: {reason}"
        change = Change(
            Status.QUARANTINED,
            reason,
            events.FILE_QUARANTINED,
            details={
                "reason": reason,
                "verified_sha256": file.sha256,
                "sha256": inspection.sha256,
                "size": inspection.size,
            },
            findings=findings,
            error=reason,
        )
    return _step(rt, file, change)


def _already_settled(rt: Runtime, file: FileRow) -> Status:
    """Re-publish a settled file's events; a DELETED file's notification is ignored."""
    if file.status is Status.DELETED:
        log.info("file deleted; notification ignored", extra={"file_id": str(file.id)})
        return file.status
    return _republish(rt, file)


def _deleted_meanwhile(rt: Runtime, file: FileRow) -> bool:
    """Whether ``file`` was deleted while being worked on (what failed then is to be ignored)."""
    if _reload(rt, file).status is not Status.DELETED:
        return False
    log.info("file deleted while being processed; left DELETED", extra={"file_id": str(file.id)})
    return True


def _republish(rt: Runtime, file: FileRow) -> Status:
    with rt.pool.connection() as conn:
        ids = outbox.ids_of_file(conn, file.id)
    outbox.publish(rt.pool, rt.publisher, ids)
    log.info(
        "file already settled; events re-published",
        extra={"file_id": str(file.id), "status": file.status},
    )
    return file.status


def _step(rt: Runtime, file: FileRow, change: Change, *more: Change) -> FileRow:
    changed = apply(rt, file, change, *more, source=SOURCE)
    if changed is None:
        raise ConcurrentChange(f"file {file.id} changed while moving it to {change.to}")
    return changed


def _start(rt: Runtime, file: FileRow) -> FileRow:
    """PENDING → UPLOADED → PROCESSING (one transaction); FAILED → PROCESSING (processed
    again); a PROCESSING file under our lock is a dead worker's."""
    started = Change(Status.PROCESSING, "processing started")
    if file.status == Status.FAILED:
        return _step(rt, file, Change(Status.PROCESSING, "processing again after it failed"))
    if file.status == Status.PENDING:
        arrived = Change(Status.UPLOADED, "object arrived", events.FILE_UPLOADED)
        return _step(rt, file, arrived, started)
    if file.status == Status.UPLOADED:
        return _step(rt, file, started)
    return _step(
        rt, file, Change(Status.PROCESSING, "processing restarted after an interrupted attempt")
    )


def judge(file: FileRow, inspection: Inspection, *, max_bytes: int) -> Verdict:
    """Compare what arrived with what was declared and with the limits (pure)."""
    declared_size = file.declared_size
    declared_type = mediatypes.essence(file.declared_content_type)
    rejected = Status.REJECTED
    if inspection.truncated and inspection.size > max_bytes:
        return Verdict(rejected, f"object is larger than the limit of {max_bytes} bytes", None)
    if inspection.truncated:
        return Verdict(rejected, f"object is larger than the declared {declared_size} bytes", None)
    if declared_size is not None and inspection.size != declared_size:
        return Verdict(
            rejected, f"object has {inspection.size} bytes, {declared_size} declared", None
        )
    if file.declared_sha256 and inspection.sha256 != file.declared_sha256:
        return Verdict(
            rejected,
            f"sha256 {inspection.sha256} differs from the declared {file.declared_sha256}",
            None,
        )
    detected = sniff(inspection.head, declared_type, text=inspection.text)
    if detected != declared_type:
        return Verdict(rejected, f"content is {detected}, {declared_type} declared", detected)
    return Verdict(Status.PROCESSED, None, detected)


def _settle(
    rt: Runtime, file: FileRow, inspection: Inspection, verdict: Verdict, findings: Findings
) -> Status:
    if verdict.status == Status.PROCESSED:
        change = Change(
            Status.PROCESSED,
            "verified",
            events.FILE_PROCESSED,
            details={
                "sha256": inspection.sha256,
                "size": inspection.size,
                "content_type": verdict.content_type,
            },
            findings=findings,
            processed_at=datetime.now(UTC),
        )
    else:
        change = Change(
            Status.REJECTED,
            verdict.reason or "rejected",
            events.FILE_REJECTED,
            details={"reason": verdict.reason},
            findings=findings,
            error=verdict.reason,
        )
    row = _step(rt, file, change)
    log.info(
        "file settled",
        extra={"file_id": str(row.id), "status": row.status, "reason": verdict.reason},
    )
    return row.status
