"""The periodic reconcile (PingSource): what makes at-least-once delivery end somewhere.

It publishes events left unpublished, re-drives PENDING files whose object exists but whose
notification never came (by sending the broker a notification for it), expires PENDING rows
whose upload URL expired with no object (aborting a multipart upload's parts), aborts every
open multipart upload that no PENDING file records (orphaned parts are never kept), and clears
storage of DELETED files that still may hold something (``purge_deleted``).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from filepipe import multipart_storage
from filepipe.events import Event, PublishError
from filepipe.files import outbox, store
from filepipe.files.model import FileRow, Status
from filepipe.files.purge import purge
from filepipe.files.transitions import Change, apply
from filepipe.process.bucket_events import RABBITMQ_EVENT, redrive_notification
from filepipe.process.verify import SOURCE, StorageUnavailable
from filepipe.runtime import Runtime

log = logging.getLogger(__name__)

EXPIRED_REASON = "upload URL expired and no object arrived"


@dataclass(frozen=True)
class ReconcileReport:
    published: int
    redriven: int
    expired: int
    purged: int
    aborted: int
    """Open multipart uploads aborted because no PENDING file records them."""


def reconcile(rt: Runtime, now: datetime | None = None) -> ReconcileReport:
    now = now or datetime.now(UTC)
    grace = timedelta(seconds=rt.settings.reconcile_grace)
    batch = rt.settings.reconcile_batch
    with rt.pool.connection() as conn:
        unpublished = outbox.unpublished(conn, now - min(grace, timedelta(seconds=10)), batch)
        pending = store.pending_since(conn, now - grace, batch)
    published = outbox.publish(rt.pool, rt.publisher, unpublished)
    redriven = expired = 0
    for file in pending:
        head = _head(rt, file)
        if head is not None:
            redriven += _redrive(rt, file, head)
        elif file.upload_expires_at < now - grace:
            expired += _expire(rt, file)
    purged = purge_deleted(rt, now - grace)
    aborted = abort_orphaned_uploads(rt, now - grace)
    report = ReconcileReport(published, redriven, expired, purged, aborted)
    log.info("reconciled", extra=report.__dict__)
    return report


def purge_deleted(rt: Runtime, expired_before: datetime) -> int:
    """Clear storage of DELETED files whose clean-up failed, or whose upload URL, valid when they
    were deleted, expired before ``expired_before`` (``filepipe.files.purge``); returns how many
    were purged.

    A failure is logged and leaves the file for the next run.
    """
    with rt.pool.connection() as conn:
        files = store.unpurged(conn, expired_before, rt.settings.reconcile_batch)
    purged = 0
    for file in files:
        try:
            purge(rt.pool, rt.s3, file)
        except (ClientError, BotoCoreError) as exc:
            log.warning("purge failed", extra={"file_id": str(file.id), "error": str(exc)})
            continue
        purged += 1
    return purged


def _head(rt: Runtime, file: FileRow) -> dict[str, Any] | None:
    where = f"s3://{file.bucket}/{file.key}"
    try:
        head: dict[str, Any] = dict(rt.s3.head_object(Bucket=file.bucket, Key=file.key))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise StorageUnavailable(f"cannot check {where}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"cannot check {where}") from exc
    return head


def _redrive(rt: Runtime, file: FileRow, head: dict[str, Any]) -> int:
    if rt.publisher is None:
        log.warning("K_SINK is not set: cannot re-drive", extra={"file_id": str(file.id)})
        return 0
    data = redrive_notification(
        file.bucket, file.key, int(head["ContentLength"]), str(head.get("ETag", "")).strip('"')
    )
    event = Event(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"redrive:{file.id}:{file.version}")),
        type=RABBITMQ_EVENT,
        source=f"{SOURCE}/reconcile",
        subject=f"{file.bucket}/{file.key}",
        tenant=file.tenant,
        file_id=file.id,
        data=data,
        time=datetime.now(UTC),
    )
    try:
        rt.publisher.publish(event)
    except PublishError as exc:
        log.warning("re-drive not published", extra={"file_id": str(file.id), "error": str(exc)})
        return 0
    log.info("notification re-driven", extra={"file_id": str(file.id)})
    return 1


def _expire(rt: Runtime, file: FileRow) -> int:
    if file.upload_id is not None:
        multipart_storage.abort(rt.s3, bucket=file.bucket, key=file.key, upload_id=file.upload_id)
    change = Change(Status.EXPIRED, EXPIRED_REASON, error=EXPIRED_REASON)
    return 0 if apply(rt, file, change, source=SOURCE) is None else 1


def abort_orphaned_uploads(rt: Runtime, initiated_before: datetime) -> int:
    """Abort the bucket's open multipart uploads (all pages) started before ``initiated_before``
    that no PENDING file records: their file moved on, or never got recorded. Younger ones are
    left alone (their file may not be committed yet)."""
    bucket = rt.settings.s3_bucket
    try:
        uploads = [
            upload
            for upload in multipart_storage.open_uploads(rt.s3, bucket=bucket)
            if upload.initiated < initiated_before
        ]
    except (ClientError, BotoCoreError) as exc:
        raise StorageUnavailable(f"cannot list the multipart uploads of {bucket}") from exc
    with rt.pool.connection() as conn:
        files = store.by_objects(conn, bucket, sorted({upload.key for upload in uploads}))
    aborted = 0
    for upload in uploads:
        file = files.get(upload.key)
        if file is None or file.status != Status.PENDING or file.upload_id != upload.upload_id:
            aborted += multipart_storage.abort(
                rt.s3, bucket=bucket, key=upload.key, upload_id=upload.upload_id
            )
            log.info("orphaned upload aborted", extra={"key": upload.key})
    return aborted
