"""The file model: its statuses, the typed ``files`` row and the API representation of a file."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from filepipe.web.bodies import iso


class Status(StrEnum):
    """Where a file is in its life; every change is a compare-and-set (``transitions``)."""

    PENDING = "PENDING"
    UPLOADED = "UPLOADED"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    QUARANTINED = "QUARANTINED"
    """Processed, then its object changed and no longer holds the bytes that were verified."""
    CANCELLED = "CANCELLED"
    """A multipart upload aborted before it completed (``DELETE /uploads/{id}``)."""
    DELETED = "DELETED"
    """Its object removed through ``DELETE /files/{id}``; the row stays for audit."""
    MISSING = "MISSING"
    """Its object is gone from storage though nothing filepipe did removed it (found by a
    notification, a download or reconcile's check of PROCESSED files)."""

    @property
    def settled(self) -> bool:
        """Whether the file reached an end state (nothing changes it any more)."""
        return self in _SETTLED


_SETTLED = frozenset(
    {
        Status.PROCESSED,
        Status.REJECTED,
        Status.FAILED,
        Status.EXPIRED,
        Status.QUARANTINED,
        Status.CANCELLED,
        Status.DELETED,
        Status.MISSING,
    }
)


@dataclass(frozen=True)
class FileRow:
    """One ``files`` row, as ``SELECT *`` returns it (loaded with psycopg's ``class_row``)."""

    id: uuid.UUID
    tenant: str
    bucket: str
    key: str
    filename: str
    declared_content_type: str
    declared_size: int | None
    """None for an upload of unknown size (a form POST, or a multipart upload until completed)."""
    declared_sha256: str | None
    status: Status
    sha256: str | None
    size_bytes: int | None
    content_type: str | None
    """The content type the bytes showed (sniffed), once processed."""
    etag: str | None
    error: str | None
    metadata: dict[str, str]
    version: int
    idempotency_key: str | None
    request_fingerprint: str | None
    upload_expires_at: datetime
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None
    traceparent: str | None
    """W3C trace context of the request that created the file (its trace continues from it)."""
    upload_id: str | None
    """The S3 multipart UploadId, for a file uploaded in parts."""
    part_size: int | None
    """The size of every part but the last, for a file uploaded in parts."""
    deleted_at: datetime | None
    """When the file was marked DELETED."""
    purged_at: datetime | None
    """When storage was last cleared of a DELETED file's object and unfinished uploads."""
    upload_token_id: uuid.UUID | None = None
    """The upload token the file was made with (``filepipe.upload_tokens``), if any."""
    dead_letters: int = 0
    """How many times the broker gave up on the file's notification (transient causes)."""
    checked_at: datetime | None = None
    """When reconcile last looked at the file's object: found a PROCESSED file's in place,
    re-drove an unsettled file's notification, or found a PENDING file's not uploaded yet."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))


def representation(file: FileRow) -> dict[str, Any]:
    """A file as the API shows it (JSON-ready)."""
    return {
        "id": str(file.id),
        "status": file.status.value,
        "key": file.key,
        "bucket": file.bucket,
        "filename": file.filename,
        "declared": {
            "content_type": file.declared_content_type,
            "size": file.declared_size,
            "sha256": file.declared_sha256,
        },
        "content_type": file.content_type,
        "size": file.size_bytes,
        "sha256": file.sha256,
        "etag": file.etag,
        "error": file.error,
        "metadata": file.metadata,
        "version": file.version,
        "created_at": iso(file.created_at),
        "updated_at": iso(file.updated_at),
        "processed_at": iso(file.processed_at),
        "deleted_at": iso(file.deleted_at),
    }
