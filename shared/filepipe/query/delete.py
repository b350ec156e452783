"""Deleting a file: ``DELETE /files/{id}``.

The caller's file (another tenant's or an unknown one is a 404), in any status, becomes DELETED
by a compare-and-set (``filepipe.files.transitions``) that sets ``deleted_at`` and records
``file.deleted`` (source ``/filepipe/query``) in the same transaction; after the commit its
cached representation is dropped and the event published. Then storage is cleared
(``filepipe.files.purge``): unfinished multipart uploads of its key aborted, the object deleted.
The row stays for audit. Deleting a DELETED file changes nothing but clears storage again, so a
call whose clean-up failed (storage down: 503) is repaired by repeating it; otherwise the
reconcile job clears what is left.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from filepipe import events, logs
from filepipe.errors import DependencyError, NotFound
from filepipe.files import store
from filepipe.files.model import FileRow, Status
from filepipe.files.purge import purge
from filepipe.files.transitions import Change, apply
from filepipe.runtime import Runtime

log = logging.getLogger(__name__)

SOURCE = "/filepipe/query"
MAX_ATTEMPTS = 5
"""Compare-and-sets tried while other changes (processing) keep winning."""


class DeleteContended(DependencyError):
    """The file kept changing under the deletion; retrying later succeeds."""


def deletion(now: datetime) -> Change:
    """The change that marks a file DELETED at ``now``."""
    return Change(Status.DELETED, "deleted", events.FILE_DELETED, deleted_at=now)


def delete_file(rt: Runtime, tenant: str, file_id: uuid.UUID) -> FileRow:
    """Mark the tenant's file DELETED (unless it is already), then clear its storage.

    ``NotFound`` for another tenant's or an unknown file; botocore's errors propagate from the
    clean-up, once the file is DELETED.
    """
    logs.bind(file_id=file_id, tenant=tenant)
    file = _mark_deleted(rt, tenant, file_id)
    purge(rt.pool, rt.s3, file)
    return file


def _mark_deleted(rt: Runtime, tenant: str, file_id: uuid.UUID) -> FileRow:
    for _ in range(MAX_ATTEMPTS):
        with rt.pool.connection() as conn:
            file = store.get(conn, tenant, file_id)
        if file is None:
            raise NotFound(f"no file {file_id}")
        if file.status is Status.DELETED:
            return file
        deleted = apply(rt, file, deletion(datetime.now(UTC)), source=SOURCE)
        if deleted is not None:
            log.info("file deleted", extra={"from_status": file.status})
            return deleted
    raise DeleteContended(f"file {file_id} kept changing; retry the deletion")
