"""The parts of a multipart upload: presigning them, listing them, completing and aborting.

Each works on the caller's file (another tenant's or an unknown one is a 404; with an upload
token, one the token did not make too) that is a multipart upload. Presigning and listing need
it PENDING and open; anything else is a 409 naming its status. An upload of unknown size has no
part plan: its part URLs bind no length and the client sizes its parts. Completing checks the
listed parts against ListParts (``multipart.completion_errors``, a 422 naming each fault),
refuses parts adding up to more than the size limit, or with an upload token its
``max_file_bytes`` (413), records a SHA-256 given then and the parts' total as the declared ones
where none was declared, and calls CompleteMultipartUpload: the object-created notification then
drives processing as for any object. A completion retried after the upload completed answers the
file again. Aborting calls AbortMultipartUpload and moves the file PENDING → CANCELLED with
``file.cancelled``; repeating it answers the same, and a file whose upload completed is a 409.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from filepipe import events, logs, multipart_storage
from filepipe.errors import Conflict, NotFound, PayloadTooLarge, UnprocessableContent
from filepipe.files import store
from filepipe.files.after_commit import after_commit
from filepipe.files.model import FileRow, Status, representation
from filepipe.files.transitions import Change, apply
from filepipe.multipart_storage import PartsRefused, UploadNotOpen
from filepipe.runtime import Runtime
from filepipe.upload import tokens
from filepipe.upload.multipart import (
    Completion,
    PartPlan,
    PartRequest,
    completed_size,
    completion_errors,
)
from filepipe.upload_tokens import UploadToken
from filepipe.web.bodies import iso

SOURCE = "/filepipe/presign"
CANCELLED_MESSAGE = "multipart upload aborted"
_NOT_COMPLETED = frozenset({Status.PENDING, Status.CANCELLED, Status.EXPIRED, Status.DELETED})
"""Statuses of a multipart file whose object never came from its upload."""


def load(rt: Runtime, tenant: str, file_id: uuid.UUID, token: UploadToken | None = None) -> FileRow:
    """The tenant's multipart file, made with ``token`` if given (404 unknown, 409 a single-PUT
    file)."""
    with rt.pool.connection() as conn:
        file = store.get(conn, tenant, file_id)
    if file is None or not made_with(file, token):
        raise NotFound(f"no file {file_id}")
    logs.bind(file_id=file.id, tenant=tenant)
    if file.upload_id is None:
        raise _conflict(file, "is a single-PUT upload, not a multipart one")
    return file


def made_with(file: FileRow, token: UploadToken | None) -> bool:
    """Whether a caller with ``token`` (None: an API key, which sees all) may see ``file``."""
    return token is None or file.upload_token_id == token.id


def plan_of(file: FileRow) -> PartPlan | None:
    """The part plan, or None for parts the client sizes (an upload of unknown size)."""
    if file.part_size is None or file.declared_size is None:
        return None
    return PartPlan(file.declared_size, file.part_size)


def presign(rt: Runtime, file: FileRow, request: PartRequest) -> dict[str, Any]:
    """Presigned UploadPart URLs of the requested parts, valid until the upload expires at most."""
    _require_open(file)
    now = datetime.now(UTC).replace(microsecond=0)  # X-Amz-Date has whole seconds
    remaining = int((file.upload_expires_at - now).total_seconds())
    expires_in = min(rt.settings.upload_url_expires, remaining)
    if expires_in < 1:
        raise _conflict(file, "has expired: its multipart upload is no longer open")
    part_plan = plan_of(file)
    assert file.upload_id is not None
    parts = []
    for number in request.numbers:
        signed = multipart_storage.presign_part(
            rt.s3_presigner,
            bucket=file.bucket,
            key=file.key,
            upload_id=file.upload_id,
            number=number,
            length=part_plan.part_length(number) if part_plan else None,
            sha256_hex=request.sha256.get(number),
            expires_in=expires_in,
        )
        parts.append(
            {"number": number, "method": "PUT", "url": signed.url, "headers": signed.headers}
        )
    return {"parts": parts, "expires_at": iso(now + timedelta(seconds=expires_in))}


def listing(rt: Runtime, file: FileRow) -> dict[str, Any]:
    """The parts storage holds (ListParts, all pages), to resume from."""
    _require_open(file)
    part_plan = plan_of(file)
    return {
        "part_size": part_plan and part_plan.part_size,
        "part_count": part_plan and part_plan.part_count,
        "parts": [
            {"number": p.number, "etag": p.etag, "size": p.size, "sha256": p.sha256_hex}
            for p in _stored(rt, file)
        ],
    }


def complete(
    rt: Runtime, file: FileRow, completion: Completion, token: UploadToken | None = None
) -> dict[str, Any]:
    """Check the parts (within ``token``'s size limit if given), record the SHA-256 and size,
    complete; the file's representation."""
    if file.status not in _NOT_COMPLETED:
        return representation(file)  # a retried completion
    _require_open(file)
    if completion.sha256 and file.declared_sha256 not in (None, completion.sha256):
        raise _unprocessable(
            file,
            f"sha256 {completion.sha256} differs from the declared {file.declared_sha256}",
            [{"field": "sha256", "message": "differs from the one declared at creation"}],
        )
    try:
        stored = multipart_storage.list_parts(
            rt.s3, bucket=file.bucket, key=file.key, upload_id=_upload_id(file)
        )
    except UploadNotOpen:
        return _completed_before(rt, file)
    errors = completion_errors(completion, stored, plan_of(file))
    if errors:
        summary = "; ".join(f"{e['field']} {e['message']}" for e in errors[:5])
        raise _unprocessable(file, f"the parts do not make the declared file: {summary}", errors)
    size = completed_size(stored, len(completion.parts))
    limit = tokens.max_file_bytes(rt.settings, token)
    if size > limit:
        raise PayloadTooLarge(
            f"the parts add up to {size} bytes, over the limit of {limit}", max_size=limit
        )
    if file.declared_size is None or (completion.sha256 and file.declared_sha256 is None):
        file = _declare(rt, file, sha256=completion.sha256, size=size)
    try:
        multipart_storage.complete(
            rt.s3_assembler,
            bucket=file.bucket,
            key=file.key,
            upload_id=_upload_id(file),
            parts=completion.parts,
        )
    except UploadNotOpen:
        return _completed_before(rt, file)
    except PartsRefused as exc:
        raise _unprocessable(file, f"storage refused the parts: {exc}", []) from exc
    return representation(file)


def abort(rt: Runtime, file: FileRow) -> None:
    """Abort the upload and cancel the file (done already: nothing to do)."""
    if file.status is Status.CANCELLED:
        return
    if file.status is not Status.PENDING:
        raise _conflict(file, "is past its upload: only a PENDING multipart upload can be aborted")
    aborted = multipart_storage.abort(
        rt.s3, bucket=file.bucket, key=file.key, upload_id=_upload_id(file)
    )
    if not aborted and multipart_storage.object_exists(rt.s3, bucket=file.bucket, key=file.key):
        raise _conflict(file, "has completed its upload: it can no longer be aborted")
    change = Change(Status.CANCELLED, CANCELLED_MESSAGE, events.FILE_CANCELLED)
    if apply(rt, file, change, source=SOURCE) is None:
        with rt.pool.connection() as conn:
            now = store.load(conn, file.id)
        assert now is not None
        if now.status is not Status.CANCELLED:
            raise _conflict(now, "changed while it was being aborted")


def _require_open(file: FileRow) -> None:
    if file.status is not Status.PENDING:
        raise _conflict(file, "is not a pending multipart upload")
    if file.upload_expires_at <= datetime.now(UTC):
        raise _conflict(file, "has expired: its multipart upload is no longer open")


def _stored(rt: Runtime, file: FileRow) -> list[multipart_storage.StoredPart]:
    try:
        return multipart_storage.list_parts(
            rt.s3, bucket=file.bucket, key=file.key, upload_id=_upload_id(file)
        )
    except UploadNotOpen as exc:
        raise _conflict(file, "has no open multipart upload (completed or aborted)") from exc


def _completed_before(rt: Runtime, file: FileRow) -> dict[str, Any]:
    """The answer when the upload is not open: the file if its object exists, else a 409."""
    if not multipart_storage.object_exists(rt.s3, bucket=file.bucket, key=file.key):
        raise _conflict(file, "has no open multipart upload (it was aborted)")
    with rt.pool.connection() as conn:
        now = store.load(conn, file.id)
    assert now is not None
    return representation(now)


def _declare(rt: Runtime, file: FileRow, *, sha256: str | None, size: int) -> FileRow:
    with rt.pool.connection() as conn, conn.transaction():
        declared = store.declare(conn, file, sha256=sha256, size=size)
    if declared is None:
        raise Conflict(f"file {file.id} changed while completing; retry", file_id=str(file.id))
    after_commit(rt, file.id, [])
    return declared


def _upload_id(file: FileRow) -> str:
    assert file.upload_id is not None
    return file.upload_id


def _conflict(file: FileRow, reason: str) -> Conflict:
    return Conflict(
        f"file {file.id} ({file.status.value}) {reason}",
        file_id=str(file.id),
        file_status=file.status.value,
    )


def _unprocessable(
    file: FileRow, detail: str, errors: list[dict[str, str]]
) -> UnprocessableContent:
    extensions: dict[str, Any] = {"file_id": str(file.id)}
    if errors:
        extensions["errors"] = errors
    return UnprocessableContent(detail, **extensions)
