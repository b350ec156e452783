"""Clearing storage of a DELETED file: its object and any unfinished multipart upload of its key.

``DELETE /files/{id}`` purges right after marking the file DELETED (and again on every repeat);
the reconcile job purges what a failed call left and what an upload URL still valid at deletion
created afterwards (``store.unpurged``). ``purged_at`` notes each success.
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


def purge(pool: ConnectionPool[Any], s3: S3Client, file: FileRow) -> None:
    """Remove ``file``'s object and unfinished uploads, then set ``purged_at``.

    botocore's errors propagate, and ``purged_at`` then stays as it was.
    """
    assert file.status is Status.DELETED, "only a DELETED file's storage is cleared"
    aborted = remove_object(s3, file.bucket, file.key)
    with pool.connection() as conn:
        store.mark_purged(conn, file.id)
    log.info("storage purged", extra={"file_id": str(file.id), "aborted_uploads": aborted})
