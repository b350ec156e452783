"""Reconcile's work on storage: asking whether objects exist, checking that PROCESSED files
still have theirs, and removing what no file needs any more (objects of DELETED files and, past
``object_retention``, of REJECTED, EXPIRED, FAILED, CANCELLED and MISSING ones; multipart
uploads no PENDING file records)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from filepipe import multipart_storage
from filepipe.files import store
from filepipe.files.missing import mark_missing
from filepipe.files.model import FileRow, Status
from filepipe.files.purge import purge
from filepipe.process.reading import StorageUnavailable
from filepipe.process.verify import SOURCE
from filepipe.runtime import Runtime
from filepipe.storage import head_object

log = logging.getLogger(__name__)


def head(rt: Runtime, file: FileRow) -> dict[str, Any] | None:
    """The metadata of ``file``'s object, ``None`` if it holds none; ``StorageUnavailable`` if
    storage cannot say."""
    try:
        return head_object(rt.s3, file.bucket, file.key)
    except (ClientError, BotoCoreError) as exc:
        raise StorageUnavailable(f"cannot check s3://{file.bucket}/{file.key}: {exc}") from exc


def check_processed(rt: Runtime) -> tuple[int, int]:
    """Check up to ``missing_check_batch`` PROCESSED files' objects, least recently checked
    first: one that exists is noted (``checked_at``), one that is gone makes its file MISSING.
    Storage unreachable ends the check for this run (the next run starts where it stopped).
    Returns (checked, missing)."""
    if rt.settings.missing_check_batch == 0:
        return 0, 0
    with rt.pool.connection() as conn:
        files = store.least_recently_checked(conn, rt.settings.missing_check_batch)
    present, missing = [], 0
    for file in files:
        try:
            exists = head(rt, file) is not None
        except StorageUnavailable as exc:
            log.warning("object check stopped: storage unavailable", extra={"error": str(exc)})
            break
        if exists:
            present.append(file.id)
        elif mark_missing(rt, file, source=SOURCE) is not None:
            missing += 1
    with rt.pool.connection() as conn:
        store.mark_checked(conn, present)
    return len(present), missing


def purge_deleted(rt: Runtime, expired_before: datetime) -> int:
    """Clear storage of DELETED files whose clean-up failed, or whose upload URL, valid when they
    were deleted, expired before ``expired_before`` (``filepipe.files.purge``); returns how many
    were purged.

    A failure is logged and leaves the file for the next run.
    """
    with rt.pool.connection() as conn:
        files = store.unpurged(conn, expired_before, rt.settings.reconcile_batch)
    return _purge_each(rt, files)


def purge_retained(rt: Runtime, now: datetime, settled_before: datetime) -> int:
    """Clear storage of files that settled without being kept (``store.RETAINED_STATUSES``)
    before ``settled_before``; returns how many were purged. Failures as ``purge_deleted``."""
    with rt.pool.connection() as conn:
        files = store.retained_objects(conn, now, settled_before, rt.settings.reconcile_batch)
    return _purge_each(rt, files)


def _purge_each(rt: Runtime, files: Sequence[FileRow]) -> int:
    purged = 0
    for file in files:
        try:
            purge(rt.pool, rt.s3, file)
        except (ClientError, BotoCoreError) as exc:
            log.warning("purge failed", extra={"file_id": str(file.id), "error": str(exc)})
            continue
        purged += 1
    return purged


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
