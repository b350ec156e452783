"""Download URLs of verified files: ``GET /files/{id}/download``.

Only a PROCESSED file of the caller's tenant has one (another tenant's or an unknown file is a
404, a file in any other status a 409 naming it): its bytes were verified, and nothing else has
been. Storage is asked first (HEAD) whether the object still exists: one that is gone although
filepipe did not remove it makes the file MISSING (``filepipe.files.missing``, ``file.missing``)
and the answer a 410 Gone, so a client learns it at once, not from storage's 404 on the URL.
The URL is a presigned GET (``filepipe.storage.presign_get``) valid for
``FILEPIPE_DOWNLOAD_URL_EXPIRES`` seconds, answered as an attachment with the file's name and
detected content type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from filepipe.errors import BadRequest, Conflict, Gone, NotFound
from filepipe.files import store
from filepipe.files.missing import mark_missing, object_gone
from filepipe.files.model import FileRow, Status
from filepipe.runtime import Runtime
from filepipe.storage import head_object, presign_get

PARAMETERS = frozenset({"redirect"})
_FLAGS = {"true": True, "false": False}
SOURCE = "/filepipe/query"


@dataclass(frozen=True)
class DownloadUrl:
    url: str
    expires_at: datetime
    """When the URL stops working (no earlier than this: storage counts from its signing)."""


def wants_redirect(value: str | None) -> bool:
    """The ``redirect`` parameter: ``true`` or ``false`` (default), anything else a 400."""
    if value is None:
        return False
    flag = _FLAGS.get(value)
    if flag is None:
        raise BadRequest(
            "redirect must be true or false",
            errors=[{"field": "redirect", "message": "must be true or false"}],
        )
    return flag


def issue(rt: Runtime, tenant: str, file_id: uuid.UUID, *, expires_in: int) -> DownloadUrl:
    """A download URL of the tenant's PROCESSED file whose object exists; ``NotFound``,
    ``Conflict`` or ``Gone`` (the object is missing: the file is now MISSING) otherwise.

    botocore's errors from the HEAD propagate (an outage: 503).
    """
    file = _downloadable(_load(rt, tenant, file_id))
    if head_object(rt.s3, file.bucket, file.key) is None:
        if mark_missing(rt, file, source=SOURCE) is None:
            _downloadable(_load(rt, tenant, file_id))  # it changed meanwhile: say how
        raise Gone(
            f"file {file_id} is MISSING: {object_gone(file)}",
            file_id=str(file_id),
            file_status=Status.MISSING.value,
        )
    # X-Amz-Date has whole seconds and is taken after this: the URL lasts at least until then.
    signed_at = datetime.now(UTC).replace(microsecond=0)
    url = presign_get(
        rt.s3_presigner,
        bucket=file.bucket,
        key=file.key,
        filename=file.filename,
        content_type=file.content_type or file.declared_content_type,
        expires_in=expires_in,
    )
    return DownloadUrl(url=url, expires_at=signed_at + timedelta(seconds=expires_in))


def _load(rt: Runtime, tenant: str, file_id: uuid.UUID) -> FileRow:
    with rt.pool.connection() as conn:
        file = store.get(conn, tenant, file_id)
    if file is None:
        raise NotFound(f"no file {file_id}")
    return file


def _downloadable(file: FileRow) -> FileRow:
    """``file`` if it is PROCESSED, else the ``Conflict`` naming its status."""
    if file.status is not Status.PROCESSED:
        raise Conflict(
            f"file {file.id} is {file.status.value}; only a PROCESSED file can be downloaded",
            file_id=str(file.id),
            file_status=file.status.value,
        )
    return file
