"""Creating uploads: the PENDING ``files`` row, its ``file.created`` event and its upload (a
presigned PUT, or a multipart upload whose parts ``filepipe.upload.parts`` presigns). An upload
of unknown size (``UploadRequest.size`` None) is a presigned form POST bounded by the size limit
(an upload token's ``max_file_bytes`` if smaller), or a multipart upload without a part plan
(``client_parts``: the client sizes its parts).

The row, its first processing log and the outbox event are written in one transaction; the event
is published after commit and, if that fails, stays in the outbox for the reconcile job while the
client still gets its upload URL. An ``Idempotency-Key`` retry with the same body returns the same
file (and a URL with the same expiry, or the same UploadId); the same key with another body is a
422. A multipart upload is created in storage before its row; one that no row records (the
request was a replay, or recording failed) is aborted at once, or else by reconcile.

Every new upload is counted against the tenant's quotas (``filepipe.upload.quotas``): its
rate before anything is created (a replay of an existing ``Idempotency-Key`` is not counted), its
PENDING caps in the transaction inserting the row; over either, a 429.

An upload made with an upload token is held to its scope (``tokens.enforce``: type, size,
metadata) and records the token on the row; the transaction inserting the row then counts the
token's files under a lock on the token (``store.count_of_token``) and refuses one over its
``max_files`` (403), so concurrent requests never exceed it and a replay never counts.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from psycopg import Connection

from filepipe import events, logs, multipart_storage
from filepipe.config import S3_SINGLE_PUT_LIMIT
from filepipe.errors import Conflict, Forbidden, UnprocessableContent
from filepipe.files import outbox, store
from filepipe.files.model import FileRow, representation
from filepipe.runtime import Runtime
from filepipe.storage import presign_post, presign_put
from filepipe.telemetry import current_traceparent
from filepipe.upload import quotas, tokens
from filepipe.upload.multipart import PartPlan
from filepipe.upload.request import UploadRequest
from filepipe.upload_tokens import UploadToken
from filepipe.web.bodies import iso

log = logging.getLogger(__name__)

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
    rt: Runtime,
    tenant: str,
    request: UploadRequest,
    idempotency_key: str | None = None,
    part_plan: PartPlan | None = None,
    token: UploadToken | None = None,
    *,
    client_parts: bool = False,
) -> CreatedUpload:
    """The PENDING file and its upload: a presigned PUT (a form POST if the size is unknown), or
    with ``part_plan`` or ``client_parts`` a multipart upload (CreateMultipartUpload first, so
    the row is recorded with its UploadId); ``client_parts``: parts of the client's sizes. With
    ``token``, within its scope."""
    if token is not None:
        request = tokens.enforce(token, request)
    if not _is_replay(rt, tenant, idempotency_key):
        quotas.take_upload(rt.redis, rt.settings, tenant)
    now = datetime.now(UTC)
    file_id = uuid.uuid4()
    key = object_key(tenant, file_id, request.filename)
    multipart = part_plan is not None or client_parts
    expires = rt.settings.multipart_expires if multipart else rt.settings.upload_url_expires
    new = store.NewFile(
        id=file_id,
        tenant=tenant,
        bucket=rt.settings.s3_bucket,
        key=key,
        filename=request.filename,
        content_type=request.content_type,
        size=request.size,
        sha256=request.sha256,
        metadata=request.metadata,
        idempotency_key=idempotency_key,
        fingerprint=request.fingerprint(),
        upload_expires_at=now + timedelta(seconds=expires),
        traceparent=current_traceparent(),
        created_at=now,
        upload_id=_start(rt, new_key=key, request=request) if multipart else None,
        part_size=None if part_plan is None else part_plan.part_size,
        upload_token_id=None if token is None else token.id,
    )
    file: FileRow | None = None
    try:
        file, event = _record(rt, new, idempotency_key, now, token)
    finally:
        if new.upload_id is not None and (file is None or file.upload_id != new.upload_id):
            _abort_quietly(rt, new)  # a replay (the earlier upload stands) or a failure
    logs.bind(file_id=file.id, tenant=tenant)
    expires_in = int((file.upload_expires_at - now).total_seconds())
    if expires_in < 1:
        raise Conflict(
            "the upload URL of this Idempotency-Key has expired; use a new key",
            file_id=str(file.id),
        )
    if file.upload_id:
        upload = _multipart_upload(file)
    elif file.declared_size is None:
        upload = _form_post(rt, file, tokens.max_file_bytes(rt.settings, token), expires_in)
    else:
        upload = _single_put(rt, file, file.declared_size, expires_in)
    if event is not None:
        _publish(rt, event)
    return CreatedUpload(body={**representation(file), "upload": upload}, replayed=event is None)


def _publish(rt: Runtime, event: events.Event) -> None:
    """After the answer, from the runtime's background publisher (the outbox holds the event
    until it is out); without ``K_SINK``, ``outbox.publish`` says where it stays."""
    if rt.publisher is None:
        outbox.publish(rt.pool, None, [event.id])
    else:
        rt.background.submit([event])


def _start(rt: Runtime, *, new_key: str, request: UploadRequest) -> str:
    return multipart_storage.start(
        rt.s3, bucket=rt.settings.s3_bucket, key=new_key, content_type=request.content_type
    )


def _abort_quietly(rt: Runtime, new: store.NewFile) -> None:
    """Abort an upload no row records; if this fails, reconcile aborts it as orphaned."""
    assert new.upload_id is not None
    try:
        multipart_storage.abort(rt.s3, bucket=new.bucket, key=new.key, upload_id=new.upload_id)
    except (BotoCoreError, ClientError) as exc:
        log.warning("unrecorded upload not aborted", extra={"key": new.key, "error": str(exc)})


def _record(
    rt: Runtime,
    new: store.NewFile,
    idempotency_key: str | None,
    now: datetime,
    token: UploadToken | None,
) -> tuple[FileRow, events.Event | None]:
    """The new row and its ``file.created`` event, or an earlier request's row and None.

    In pipeline mode: a statement whose result is not read goes with the next that is, so the
    transaction takes two round trips (caps, insert; log, event, commit), not seven; the
    PENDING caps are checked at its commit (``quotas.cap_pending``).
    """
    with (
        quotas.within_caps(rt.settings, new.size),
        rt.pool.connection() as conn,
        conn.pipeline(),
        conn.transaction(),
    ):
        quotas.cap_pending(conn, rt.settings)
        file = store.insert_pending(conn, new)
        if file is None:
            return _replayed(conn, new, idempotency_key), None
        if token is not None and store.count_of_token(conn, token.id) > token.scope.max_files:
            raise Forbidden(
                f"this upload token has made its {token.scope.max_files} files",
                max_files=token.scope.max_files,
            )
        event = outbox.file_event(
            events.FILE_CREATED, file, source=SOURCE, time=now, traceparent=new.traceparent
        )
        outbox.record(conn, event)
        return file, event


def _is_replay(rt: Runtime, tenant: str, idempotency_key: str | None) -> bool:
    """Whether an earlier request already made this ``Idempotency-Key``'s file."""
    if idempotency_key is None:
        return False
    with rt.pool.connection() as conn:
        return store.by_idempotency_key(conn, tenant, idempotency_key) is not None


def _single_put(rt: Runtime, file: FileRow, size: int, expires_in: int) -> dict[str, Any]:
    upload = presign_put(
        rt.url_signer,
        bucket=file.bucket,
        key=file.key,
        content_type=file.declared_content_type,
        size=size,
        sha256_hex=file.declared_sha256,
        expires_in=expires_in,
    )
    return {
        "method": upload.method,
        "url": upload.url,
        "headers": upload.headers,
        "expires_at": iso(file.upload_expires_at),
    }


def _form_post(rt: Runtime, file: FileRow, max_size: int, expires_in: int) -> dict[str, Any]:
    upload = presign_post(
        rt.s3_presigner,
        bucket=file.bucket,
        key=file.key,
        content_type=file.declared_content_type,
        max_size=min(max_size, S3_SINGLE_PUT_LIMIT),
        expires_in=expires_in,
    )
    return {
        "method": "POST",
        "url": upload.url,
        "fields": upload.fields,
        "expires_at": iso(file.upload_expires_at),
    }


def _multipart_upload(file: FileRow) -> dict[str, Any]:
    """The UploadId and, for an upload of known size, its part plan (else nulls)."""
    part_plan = None
    if file.part_size is not None and file.declared_size is not None:
        part_plan = PartPlan(file.declared_size, file.part_size)
    return {
        "method": "MULTIPART",
        "upload_id": file.upload_id,
        "part_size": part_plan and part_plan.part_size,
        "part_count": part_plan and part_plan.part_count,
        "expires_at": iso(file.upload_expires_at),
    }


def _replayed(conn: Connection[Any], new: store.NewFile, idempotency_key: str | None) -> FileRow:
    """The file an earlier request with this Idempotency-Key created (same body and credential:
    API key or the same upload token), or a 422."""
    assert idempotency_key is not None, "only a key can conflict"
    file = store.by_idempotency_key(conn, new.tenant, idempotency_key)
    assert file is not None, "the conflicting row is visible once the insert has waited"
    if file.upload_token_id != new.upload_token_id:
        raise UnprocessableContent(
            "this Idempotency-Key was used with another credential", file_id=str(file.id)
        )
    if file.request_fingerprint != new.fingerprint:
        raise UnprocessableContent(
            "this Idempotency-Key was used with a different request body", file_id=str(file.id)
        )
    return file
