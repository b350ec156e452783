"""Dead letters: a notification whose retries ran out marks its file FAILED.

The broker's dead-letter sink delivers the original notification with the ``knativeerrorcode``
(and ``knativeerrordata``) extensions; the file is marked FAILED with that reason and
``file.failed`` is emitted. A file that settled meanwhile is left as it is.
"""

from __future__ import annotations

import base64
import binascii
import logging

from cloudevents.http import CloudEvent

from filepipe import events, metrics
from filepipe.files import store
from filepipe.files.model import Status
from filepipe.files.transitions import Change, apply
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.verify import SOURCE, ConcurrentChange
from filepipe.runtime import Runtime

log = logging.getLogger(__name__)

ERROR_CODE = "knativeerrorcode"
ERROR_DATA = "knativeerrordata"
_MAX_ATTEMPTS = 5


def dead_letter_reason(event: CloudEvent) -> str | None:
    """Why the broker gave up on ``event``, if it is a dead letter (else ``None``)."""
    attributes = event.get_attributes()
    if ERROR_CODE not in attributes:
        return None
    reason = f"processing failed after every retry (last HTTP status {attributes[ERROR_CODE]})"
    data = attributes.get(ERROR_DATA)
    if data:
        try:
            detail = base64.b64decode(str(data), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            detail = str(data)
        reason += f": {detail.strip()[:300]}"
    return reason


def fail_dead_letter(rt: Runtime, record: ObjectCreated, reason: str) -> Status | None:
    """Mark the record's file FAILED unless it already settled; returns its final status."""
    metrics.get().dead_letters.labels("process").inc()
    with rt.pool.connection() as conn:
        file = store.find_by_object(conn, record.bucket, record.key)
    change = Change(
        Status.FAILED, reason, events.FILE_FAILED, details={"reason": reason}, error=reason
    )
    for _ in range(_MAX_ATTEMPTS):
        if file is None or file.status.settled:
            return None if file is None else file.status
        failed = apply(rt, file, change, source=SOURCE)
        if failed is not None:
            log.warning("file failed", extra={"file_id": str(failed.id), "reason": reason})
            metrics.get().files_settled.labels(Status.FAILED).inc()
            return Status.FAILED
        with rt.pool.connection() as conn:
            file = store.load(conn, file.id)
    raise ConcurrentChange(f"file {record.key} kept changing; retry the dead letter")
