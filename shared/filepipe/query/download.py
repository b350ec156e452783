"""Download URLs of verified files: ``GET /files/{id}/download``.

Only a PROCESSED file of the caller's tenant has one (another tenant's or an unknown file is a
404, a file in any other status a 409 naming it): its bytes were verified, and nothing else has
been. The URL is a presigned GET (``filepipe.storage.presign_get``) valid for
``FILEPIPE_DOWNLOAD_URL_EXPIRES`` seconds, answered as an attachment with the file's name and
detected content type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from psycopg_pool import ConnectionPool

from filepipe.errors import BadRequest, Conflict, NotFound
from filepipe.files import store
from filepipe.files.model import Status
from filepipe.storage import presign_get

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PARAMETERS = frozenset({"redirect"})
_FLAGS = {"true": True, "false": False}


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


def issue(
    pool: ConnectionPool[Any],
    presigner: S3Client,
    tenant: str,
    file_id: uuid.UUID,
    *,
    expires_in: int,
) -> DownloadUrl:
    """A download URL of the tenant's PROCESSED file, or ``NotFound`` / ``Conflict``."""
    with pool.connection() as conn:
        file = store.get(conn, tenant, file_id)
    if file is None:
        raise NotFound(f"no file {file_id}")
    if file.status is not Status.PROCESSED:
        raise Conflict(
            f"file {file_id} is {file.status.value}; only a PROCESSED file can be downloaded",
            file_id=str(file_id),
            file_status=file.status.value,
        )
    # X-Amz-Date has whole seconds and is taken after this: the URL lasts at least until then.
    signed_at = datetime.now(UTC).replace(microsecond=0)
    url = presign_get(
        presigner,
        bucket=file.bucket,
        key=file.key,
        filename=file.filename,
        content_type=file.content_type or file.declared_content_type,
        expires_in=expires_in,
    )
    return DownloadUrl(url=url, expires_at=signed_at + timedelta(seconds=expires_in))
