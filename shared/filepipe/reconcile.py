"""Dead letters and the periodic reconcile: what makes at-least-once delivery end somewhere.

- ``fail_dead_letter``: a notification whose retries ran out marks its file FAILED (with the
  broker's ``knativeerrorcode``/``knativeerrordata``) and emits ``file.failed``; a file that
  settled meanwhile is left as it is.
- ``reconcile`` (PingSource): publishes events left unpublished, re-drives PENDING files whose
  object exists but whose notification never came (by sending the broker a notification for it),
  and expires PENDING rows whose upload URL expired with no object.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from filepipe import events, metrics
from filepipe.cache import invalidate_file
from filepipe.notifications import RABBITMQ_EVENT, ObjectCreated, redrive_notification
from filepipe.processing import SOURCE, StorageUnavailable
from filepipe.runtime import Runtime
from filepipe.transitions import EXPIRED, FAILED, TERMINAL, find_by_object, load_file, transition

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 5


def fail_dead_letter(rt: Runtime, record: ObjectCreated, reason: str) -> str | None:
    """Mark the record's file FAILED unless it already settled; returns its final status."""
    metrics.get().dead_letters.labels("process").inc()
    with rt.pool.connection() as conn:
        file = find_by_object(conn, record.bucket, record.key)
    for _ in range(_MAX_ATTEMPTS):
        if file is None or file["status"] in TERMINAL:
            return None if file is None else str(file["status"])
        with rt.pool.connection() as conn, conn.transaction():
            changed = transition(
                conn,
                file,
                FAILED,
                message=reason,
                source=SOURCE,
                event_type=events.FILE_FAILED,
                error=reason,
                event_data={"reason": reason},
            )
            if changed is None:
                file = load_file(conn, file["id"])
                continue
        row, event_id = changed
        invalidate_file(rt.redis, row["id"])
        events.publish_recorded(rt.pool, rt.publisher, [event_id] if event_id else [])
        log.warning("file failed", extra={"file_id": str(row["id"]), "reason": reason})
        metrics.get().files_settled.labels(FAILED).inc()
        return FAILED
    raise StorageUnavailable(f"file {record.key} kept changing; retry the dead letter")


@dataclass(frozen=True)
class ReconcileReport:
    published: int
    redriven: int
    expired: int


def reconcile(rt: Runtime, now: datetime | None = None) -> ReconcileReport:
    now = now or datetime.now(UTC)
    grace = timedelta(seconds=rt.settings.reconcile_grace)
    batch = rt.settings.reconcile_batch
    with rt.pool.connection() as conn:
        unpublished = [
            r["id"]
            for r in conn.execute(
                "SELECT id FROM events WHERE published_at IS NULL AND created_at < %s"
                " ORDER BY created_at LIMIT %s",
                (now - min(grace, timedelta(seconds=10)), batch),
            )
        ]
        pending = conn.execute(
            "SELECT * FROM files WHERE status = 'PENDING' AND created_at < %s"
            " ORDER BY created_at LIMIT %s",
            (now - grace, batch),
        ).fetchall()
    published = events.publish_recorded(rt.pool, rt.publisher, unpublished)
    redriven = expired = 0
    for file in pending:
        head = _head(rt, file)
        if head is not None:
            redriven += _redrive(rt, file, head)
        elif file["upload_expires_at"] < now - grace:
            expired += _expire(rt, file)
    report = ReconcileReport(published, redriven, expired)
    log.info("reconciled", extra=report.__dict__)
    return report


def _head(rt: Runtime, file: dict[str, Any]) -> dict[str, Any] | None:
    try:
        head: dict[str, Any] = dict(rt.s3.head_object(Bucket=file["bucket"], Key=file["key"]))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise StorageUnavailable(f"cannot check s3://{file['bucket']}/{file['key']}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"cannot check s3://{file['bucket']}/{file['key']}") from exc
    return head


def _redrive(rt: Runtime, file: dict[str, Any], head: dict[str, Any]) -> int:
    if rt.publisher is None:
        log.warning("K_SINK is not set: cannot re-drive", extra={"file_id": str(file["id"])})
        return 0
    data = redrive_notification(
        file["bucket"],
        file["key"],
        int(head["ContentLength"]),
        str(head.get("ETag", "")).strip('"'),
    )
    event = events.OutboxEvent(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"redrive:{file['id']}:{file['version']}")),
        type=RABBITMQ_EVENT,
        source=f"{SOURCE}/reconcile",
        subject=f"{file['bucket']}/{file['key']}",
        tenant=file["tenant"],
        file_id=file["id"],
        data=data,
        time=datetime.now(UTC),
    )
    try:
        rt.publisher.publish(event)
    except events.PublishError as exc:
        log.warning("re-drive not published", extra={"file_id": str(file["id"]), "error": str(exc)})
        return 0
    log.info("notification re-driven", extra={"file_id": str(file["id"])})
    return 1


def _expire(rt: Runtime, file: dict[str, Any]) -> int:
    with rt.pool.connection() as conn, conn.transaction():
        changed = transition(
            conn,
            file,
            EXPIRED,
            source=SOURCE,
            message="upload URL expired and no object arrived",
            error="upload URL expired and no object arrived",
        )
    if changed is None:
        return 0
    invalidate_file(rt.redis, file["id"])
    return 1
