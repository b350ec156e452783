"""Dead letters: where a notification ends once the broker stops retrying it.

The broker's dead-letter sink delivers the original notification with the ``knativeerrorcode``
(the last HTTP status, 0 for no response) and ``knativeerrordata`` (the last response body,
base64) extensions. What the file becomes depends on why the broker gave up:

- A retriable status (Knative's ``SelectiveRetry``: no response, 5xx, 404, 408, 409, 429) means a
  transient cause outlasted the retries (a dependency down). The file is NOT failed: its
  ``dead_letters`` count goes up, ``error`` records the cause (the ``detail`` of process's
  problem+json answer) and a processing-log line says so; its status stays and no event is
  emitted. Reconcile re-drives it once the dependency is back.
- When the count reaches ``FILEPIPE_PROCESS_MAX_DEAD_LETTERS``, or the status was not retriable
  (the broker gave up at once), the file becomes FAILED with the cause and ``file.failed``.
- A settled file (FAILED included) is left as it is. A notification for a FAILED file that
  arrives without the extensions (a replayed dead letter, a re-drive) processes it again.

Each change is a compare-and-set (``files.transitions``), retried on a concurrent change.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass

from cloudevents.http import CloudEvent

from filepipe import events, metrics
from filepipe.files import store
from filepipe.files.model import FileRow, Status
from filepipe.files.transitions import Change, apply
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.verify import SOURCE, ConcurrentChange
from filepipe.runtime import Runtime

log = logging.getLogger(__name__)

ERROR_CODE = "knativeerrorcode"
ERROR_DATA = "knativeerrordata"
_MAX_ATTEMPTS = 5
_MAX_CAUSE = 500


@dataclass(frozen=True)
class DeadLetter:
    """Why the broker gave up on a notification."""

    status: int
    """The last HTTP status (0: no response)."""
    cause: str
    """What the last answer said (its problem ``detail`` when it had one)."""

    @property
    def retriable(self) -> bool:
        """Whether the broker retried this status: a cause that may pass (transient)."""
        return events.knative_retries(self.status)


def dead_letter_of(event: CloudEvent) -> DeadLetter | None:
    """Why the broker gave up on ``event``, if it is a dead letter (else ``None``)."""
    attributes = event.get_attributes()
    if ERROR_CODE not in attributes:
        return None
    try:
        status = int(str(attributes[ERROR_CODE]))
    except ValueError:
        status = 0
    body = _decoded(str(attributes.get(ERROR_DATA) or ""))
    cause = _detail(body) or (f"HTTP {status}" if status else "no response")
    return DeadLetter(status, cause[:_MAX_CAUSE])


def _decoded(data: str) -> str:
    """``knativeerrordata``'s text (base64 as Knative sends it; plain text is taken as is)."""
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", "replace").strip()
    except (binascii.Error, ValueError):
        return data.strip()


def _detail(body: str) -> str:
    """The ``detail`` of a problem+json body, else the body itself (possibly cut by Knative)."""
    try:
        problem = json.loads(body)
    except ValueError:
        return body
    if isinstance(problem, dict) and isinstance(problem.get("detail"), str):
        return str(problem["detail"])
    return body


def record_dead_letter(rt: Runtime, record: ObjectCreated, dead: DeadLetter) -> Status | None:
    """Count the dead letter against the record's file or fail it; returns its status after
    (``None``: no such file)."""
    metrics.get().dead_letters.labels("process").inc()
    with rt.pool.connection() as conn:
        file = store.find_by_object(conn, record.bucket, record.key)
    for _ in range(_MAX_ATTEMPTS):
        if file is None or file.status.settled:
            return None if file is None else file.status
        changed = apply(rt, file, _change_for(rt, file, dead), source=SOURCE)
        if changed is not None:
            _log(changed, dead)
            return changed.status
        with rt.pool.connection() as conn:
            file = store.load(conn, file.id)
    raise ConcurrentChange(f"file {record.key} kept changing; retry the dead letter")


def _change_for(rt: Runtime, file: FileRow, dead: DeadLetter) -> Change:
    """FAILED when the cause is permanent or the count is used up; else the count goes up."""
    count, limit = file.dead_letters + 1, rt.settings.process_max_dead_letters
    if not dead.retriable:
        reason = f"the broker gave up (HTTP {dead.status}): {dead.cause}"
    elif count >= limit:
        reason = f"dead-lettered {count}/{limit}, giving up: {dead.cause}"
    else:
        return Change(
            file.status,
            f"dead-lettered {count}/{limit}: {dead.cause}; reconcile re-drives it",
            error=dead.cause,
            dead_letters=count,
        )
    return Change(
        Status.FAILED,
        reason,
        events.FILE_FAILED,
        details={"reason": reason},
        error=reason,
        dead_letters=count,
    )


def _log(file: FileRow, dead: DeadLetter) -> None:
    extra = {"file_id": str(file.id), "status": file.status, "cause": dead.cause}
    if file.status is Status.FAILED:
        log.warning("file failed", extra={**extra, "reason": file.error})
        metrics.get().files_settled.labels(Status.FAILED).inc()
    else:
        log.warning("dead letter counted; reconcile re-drives the file", extra=extra)
