"""Clearing storage of a file that no longer needs its bytes: its object and any unfinished
multipart upload of its key.

A DELETED file is purged right after ``DELETE /files/{id}`` marks it (and again on every
repeat); the reconcile job purges what a failed call left and what an upload URL still valid at
deletion created afterwards (``store.unpurged``). The objects of files that settled without
being kept (REJECTED, EXPIRED, FAILED, CANCELLED, MISSING) are purged by reconcile once
``object_retention`` has passed (``store.retained_objects``). ``purged_at`` notes each success.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from psycopg_pool import ConnectionPool

from filepipe.files import store
from filepipe.files.model import FileRow, Status
from filepipe.storage import remove_object

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

PURGEABLE = frozenset({Status.DELETED, *store.RETAINED_STATUSES})
"""The statuses whose file's storage may be cleared: its bytes are of no further use."""


def purge(pool: ConnectionPool[Any], s3: S3Client, file: FileRow) -> None:
    """Remove ``file``'s object and unfinished uploads, then set ``purged_at`` (unless the file
    left its status meanwhile).

    botocore's errors propagate, and ``purged_at`` then stays as it was.
    """
    assert file.status in PURGEABLE, f"a {file.status} file's storage is kept"
    aborted = remove_object(s3, file.bucket, file.key)
    with pool.connection() as conn:
        store.mark_purged(conn, file)
    log.info(
        "storage purged",
        extra={"file_id": str(file.id), "status": file.status, "aborted_uploads": aborted},
    )
