"""Creating uploads: the PENDING ``files`` row, its ``file.created`` event and the presigned PUT.

The row, its first processing log and the outbox event are written in one transaction; the event
is published after commit and, if that fails, stays in the outbox for the reconcile job while the
client still gets its upload URL. An ``Idempotency-Key`` retry with the same body returns the same
file (and a URL with the same expiry); the same key with another body is a 422.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from filepipe import events, logs
from filepipe.errors import Conflict, UnprocessableContent
from filepipe.runtime import Runtime
from filepipe.storage import presign_put
from filepipe.telemetry import current_traceparent
from filepipe.upload_request import UploadRequest

SOURCE = "/filepipe/presign"
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CreatedUpload:
    body: dict[str, Any]
    replayed: bool


def object_key(tenant: str, file_id: uuid.UUID, filename: str) -> str:
    """``<tenant>/<file id>/<filename reduced to A-Z a-z 0-9 . _ ->``: no user input unescaped."""
    safe = _UNSAFE_KEY_CHARS.sub("_", filename).strip("._")[:100] or "file"
    return f"{tenant}/{file_id}/{safe}"


def create_upload(
    rt: Runtime, tenant: str, request: UploadRequest, idempotency_key: str | None = None
) -> CreatedUpload:
    now = datetime.now(UTC)
    file_id = uuid.uuid4()
    fingerprint = request.fingerprint()
    traceparent = current_traceparent()
    with rt.pool.connection() as conn, conn.transaction():
        row = conn.execute(
            """
            INSERT INTO files (id, tenant, bucket, key, filename, declared_content_type,
                               declared_size, declared_sha256, metadata, idempotency_key,
                               request_fingerprint, upload_expires_at, traceparent,
                               created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (tenant, idempotency_key) DO NOTHING
            RETURNING *
            """,
            (
                file_id,
                tenant,
                rt.settings.s3_bucket,
                object_key(tenant, file_id, request.filename),
                request.filename,
                request.content_type,
                request.size,
                request.sha256,
                Jsonb(dict(request.metadata)),
                idempotency_key,
                fingerprint,
                now + timedelta(seconds=rt.settings.upload_url_expires),
                traceparent,
                now,
                now,
            ),
        ).fetchone()
        replayed = row is None
        if row is None:
            row = conn.execute(
                "SELECT * FROM files WHERE tenant = %s AND idempotency_key = %s",
                (tenant, idempotency_key),
            ).fetchone()
            assert row is not None, "the conflicting row is visible once the insert has waited"
            if row["request_fingerprint"] != fingerprint:
                raise UnprocessableContent(
                    "this Idempotency-Key was used with a different request body",
                    file_id=str(row["id"]),
                )
        else:
            conn.execute(
                "INSERT INTO processing_logs (file_id, tenant, to_status, message, trace_id)"
                " VALUES (%s, %s, 'PENDING', 'upload URL issued', %s)",
                (row["id"], tenant, traceparent and traceparent.split("-")[1]),
            )
            event = events.file_event(
                events.FILE_CREATED, source=SOURCE, file=row, time=now, traceparent=traceparent
            )
            events.record(conn, event)
    logs.bind(file_id=row["id"], tenant=tenant)
    expires_in = int((row["upload_expires_at"] - now).total_seconds())
    if expires_in < 1:
        raise Conflict(
            "the upload URL of this Idempotency-Key has expired; use a new key",
            file_id=str(row["id"]),
        )
    upload = presign_put(
        rt.s3_presigner,
        bucket=row["bucket"],
        key=row["key"],
        content_type=row["declared_content_type"],
        size=row["declared_size"],
        sha256_hex=row["declared_sha256"],
        expires_in=expires_in,
    )
    if not replayed:
        events.publish_recorded(rt.pool, rt.publisher, [event.id])
    return CreatedUpload(
        body={
            **file_representation(row),
            "upload": {
                "method": upload.method,
                "url": upload.url,
                "headers": upload.headers,
                "expires_at": _iso(row["upload_expires_at"]),
            },
        },
        replayed=replayed,
    )


def file_representation(row: dict[str, Any]) -> dict[str, Any]:
    """A ``files`` row as the API shows it."""
    return {
        "id": str(row["id"]),
        "status": row["status"],
        "key": row["key"],
        "bucket": row["bucket"],
        "filename": row["filename"],
        "declared": {
            "content_type": row["declared_content_type"],
            "size": row["declared_size"],
            "sha256": row["declared_sha256"],
        },
        "content_type": row["content_type"],
        "size": row["size_bytes"],
        "sha256": row["sha256"],
        "etag": row["etag"],
        "error": row["error"],
        "metadata": row["metadata"],
        "version": row["version"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "processed_at": _iso(row["processed_at"]),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
