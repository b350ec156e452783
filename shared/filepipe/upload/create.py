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

from psycopg import Connection

from filepipe import events, logs
from filepipe.errors import Conflict, UnprocessableContent
from filepipe.files import outbox, store
from filepipe.files.model import FileRow, representation
from filepipe.runtime import Runtime
from filepipe.storage import presign_put
from filepipe.telemetry import current_traceparent
from filepipe.upload.request import UploadRequest
from filepipe.web.bodies import iso

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
    new = store.NewFile(
        id=file_id,
        tenant=tenant,
        bucket=rt.settings.s3_bucket,
        key=object_key(tenant, file_id, request.filename),
        filename=request.filename,
        content_type=request.content_type,
        size=request.size,
        sha256=request.sha256,
        metadata=request.metadata,
        idempotency_key=idempotency_key,
        fingerprint=request.fingerprint(),
        upload_expires_at=now + timedelta(seconds=rt.settings.upload_url_expires),
        traceparent=current_traceparent(),
        created_at=now,
    )
    event_id = None
    with rt.pool.connection() as conn, conn.transaction():
        file = store.insert_pending(conn, new)
        if file is None:
            file = _replayed(conn, tenant, idempotency_key, new.fingerprint)
        else:
            event = outbox.file_event(
                events.FILE_CREATED, file, source=SOURCE, time=now, traceparent=new.traceparent
            )
            outbox.record(conn, event)
            event_id = event.id
    logs.bind(file_id=file.id, tenant=tenant)
    expires_in = int((file.upload_expires_at - now).total_seconds())
    if expires_in < 1:
        raise Conflict(
            "the upload URL of this Idempotency-Key has expired; use a new key",
            file_id=str(file.id),
        )
    upload = presign_put(
        rt.s3_presigner,
        bucket=file.bucket,
        key=file.key,
        content_type=file.declared_content_type,
        size=file.declared_size,
        sha256_hex=file.declared_sha256,
        expires_in=expires_in,
    )
    if event_id is not None:
        outbox.publish(rt.pool, rt.publisher, [event_id])
    return CreatedUpload(
        body={
            **representation(file),
            "upload": {
                "method": upload.method,
                "url": upload.url,
                "headers": upload.headers,
                "expires_at": iso(file.upload_expires_at),
            },
        },
        replayed=event_id is None,
    )


def _replayed(
    conn: Connection[Any], tenant: str, idempotency_key: str | None, fingerprint: str
) -> FileRow:
    """The file an earlier request with this Idempotency-Key created (same body), or a 422."""
    assert idempotency_key is not None, "only a key can conflict"
    file = store.by_idempotency_key(conn, tenant, idempotency_key)
    assert file is not None, "the conflicting row is visible once the insert has waited"
    if file.request_fingerprint != fingerprint:
        raise UnprocessableContent(
            "this Idempotency-Key was used with a different request body", file_id=str(file.id)
        )
    return file
