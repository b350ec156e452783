"""Marking a file MISSING: its object is gone from storage though filepipe did not remove it.

A notification for an object that no longer exists (process), a download of a PROCESSED file
whose object is gone (query) and reconcile's check of PROCESSED files all end here: the file
becomes MISSING, with the reason, and ``file.missing`` is emitted. It is a compare-and-set like
every change, so a file that moved on meanwhile (deleted, say) is left as it is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from filepipe import events
from filepipe.files.model import FileRow, Status
from filepipe.files.transitions import Change, apply

if TYPE_CHECKING:
    from filepipe.runtime import Runtime

log = logging.getLogger(__name__)


def object_gone(file: FileRow) -> str:
    """The reason recorded for ``file`` whose object storage no longer has."""
    return f"object s3://{file.bucket}/{file.key} no longer exists in storage"


def mark_missing(rt: Runtime, file: FileRow, *, source: str) -> FileRow | None:
    """Move ``file`` (as last read) to MISSING with ``file.missing``; ``None`` if it changed."""
    reason = object_gone(file)
    change = Change(
        Status.MISSING,
        reason,
        events.FILE_MISSING,
        details={"reason": reason, "previous_status": file.status.value},
        error=reason,
    )
    missing = apply(rt, file, change, source=source)
    if missing is not None:
        log.warning("object missing", extra={"file_id": str(file.id), "reason": reason})
    return missing
