"""Typed ``files`` rows for unit tests of pure code (no database)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

from filepipe.files.model import FileRow, Status


def file_row(**overrides: Any) -> FileRow:
    """A PENDING ``FileRow`` of tenant ``acme`` with ``overrides`` applied."""
    now = datetime.now(UTC)
    row = FileRow(
        id=uuid.UUID("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
        tenant="acme",
        bucket="uploads",
        key="acme/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/a.pdf",
        filename="a.pdf",
        declared_content_type="application/pdf",
        declared_size=10,
        declared_sha256=None,
        status=Status.PENDING,
        sha256=None,
        size_bytes=None,
        content_type=None,
        etag=None,
        error=None,
        metadata={},
        version=1,
        idempotency_key=None,
        request_fingerprint=None,
        upload_expires_at=now,
        created_at=now,
        updated_at=now,
        processed_at=None,
        traceparent=None,
        upload_id=None,
        part_size=None,
        deleted_at=None,
        purged_at=None,
    )
    return dataclasses.replace(row, **overrides)
