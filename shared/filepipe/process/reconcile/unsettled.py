"""Reconcile's look at unsettled files: nothing stays PENDING, UPLOADED or PROCESSING for good.

``store.unsettled`` picks the files due (each tenant's oldest first, tenants in turns, a batch
per run) and each is settled or driven on by what storage holds:

- PENDING with its object: its notification was lost, or processing failed for a transient
  cause: a notification is re-driven (published to the broker as MinIO would have);
- PENDING without one, its upload URL expired (plus the grace): EXPIRED, parts aborted;
- UPLOADED or PROCESSING (stuck: a worker died, the broker gave up on a transient cause) whose
  object is gone: MISSING (``file.missing``); created more than ``process_give_up`` seconds ago:
  FAILED (``file.failed``) with the last cause recorded; else re-driven.

Each re-drive, and each look at a PENDING file still being uploaded, is noted in ``checked_at``,
and the file is looked at again only ``stuck_after * 2 ** dead_letters`` (capped) later: a file
whose cause persists is retried less and less often until it is given up, a notification
already queued is not doubled every run, and a tenant's many open uploads are looked at in turn
rather than the oldest ones every run.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from filepipe import events, metrics, multipart_storage
from filepipe.events import Event, PublishError
from filepipe.files import store
from filepipe.files.missing import mark_missing
from filepipe.files.model import FileRow, Status
from filepipe.files.transitions import Change, apply
from filepipe.process.bucket_events import RABBITMQ_EVENT, redrive_notification
from filepipe.process.reconcile.objects import head
from filepipe.process.verify import SOURCE
from filepipe.runtime import Runtime

log = logging.getLogger(__name__)

EXPIRED_REASON = "upload URL expired and no object arrived"


@dataclass(frozen=True)
class Settled:
    """What one run did with unsettled files."""

    redriven: int = 0
    expired: int = 0
    missing: int = 0
    gave_up: int = 0


def settle_unsettled(rt: Runtime, now: datetime) -> Settled:
    """Drive on or settle the unsettled files due (see the module docstring).

    ``StorageUnavailable`` if storage cannot say whether an object exists (the run stops; the
    broker retries the ping).
    """
    grace = timedelta(seconds=rt.settings.reconcile_grace)
    with rt.pool.connection() as conn:
        files = store.unsettled(
            conn,
            now,
            grace=grace,
            stuck_after=timedelta(seconds=rt.settings.stuck_after),
            limit=rt.settings.reconcile_batch,
        )
    counts = {"redriven": 0, "expired": 0, "missing": 0, "gave_up": 0}
    looked_at = []
    try:
        for file in files:
            stored = head(rt, file)
            if file.status is Status.PENDING and stored is None:
                if file.upload_expires_at < now - grace:
                    counts["expired"] += _expire(rt, file)
                else:
                    looked_at.append(file.id)  # still uploading: look again after stuck_after
            elif stored is None:
                counts["missing"] += 0 if mark_missing(rt, file, source=SOURCE) is None else 1
            elif file.status is not Status.PENDING and _given_up(rt, file, now):
                counts["gave_up"] += _give_up(rt, file, now)
            elif _redrive(rt, file, stored):
                counts["redriven"] += 1
                looked_at.append(file.id)
    finally:
        with rt.pool.connection() as conn:
            store.mark_checked(conn, looked_at)
    return Settled(**counts)


def _given_up(rt: Runtime, file: FileRow, now: datetime) -> bool:
    return now - file.created_at > timedelta(seconds=rt.settings.process_give_up)


def redrive_id(file: FileRow) -> str:
    """The id of the notification re-driven for ``file`` as last read (pure): another one for
    each version and each re-drive (``checked_at`` moves with each), the same if a run is
    repeated before it could note its re-drive."""
    previous = file.checked_at.isoformat() if file.checked_at else "-"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"redrive:{file.id}:{file.version}:{previous}"))


def _redrive(rt: Runtime, file: FileRow, stored: dict[str, Any]) -> int:
    if rt.publisher is None:
        log.warning("K_SINK is not set: cannot re-drive", extra={"file_id": str(file.id)})
        return 0
    data = redrive_notification(
        file.bucket, file.key, int(stored["ContentLength"]), str(stored.get("ETag", "")).strip('"')
    )
    event = Event(
        id=redrive_id(file),
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
    log.info(
        "notification re-driven",
        extra={"file_id": str(file.id), "status": file.status, "dead_letters": file.dead_letters},
    )
    return 1


def _expire(rt: Runtime, file: FileRow) -> int:
    if file.upload_id is not None:
        multipart_storage.abort(rt.s3, bucket=file.bucket, key=file.key, upload_id=file.upload_id)
    change = Change(Status.EXPIRED, EXPIRED_REASON, error=EXPIRED_REASON)
    return 0 if apply(rt, file, change, source=SOURCE) is None else 1


def give_up_reason(file: FileRow, now: datetime) -> str:
    """Why ``file``, unsettled since ``file.created_at``, is given up at ``now`` (pure)."""
    waited = int((now - file.created_at).total_seconds())
    return f"gave up after {waited} s: {file.error or 'no cause was recorded'}"


def _give_up(rt: Runtime, file: FileRow, now: datetime) -> int:
    reason = give_up_reason(file, now)
    change = Change(
        Status.FAILED, reason, events.FILE_FAILED, details={"reason": reason}, error=reason
    )
    if apply(rt, file, change, source=SOURCE) is None:
        return 0
    log.warning("file given up", extra={"file_id": str(file.id), "reason": reason})
    metrics.get().files_settled.labels(Status.FAILED).inc()
    return 1
