"""The periodic reconcile (PingSource): what makes at-least-once delivery end somewhere, and
what keeps storage and history from growing without bound.

Each run, in order (every step bounded per run, so a backlog drains over several runs):

1. publishes events left unpublished in the outbox (a process's republisher usually did);
2. prunes history older than ``history_retention`` (``filepipe.retention``);
3. drives on or settles unsettled files (``unsettled``): re-drives PENDING files whose object
   exists and UPLOADED or PROCESSING files stuck for ``stuck_after`` (longer after each dead
   letter), expires PENDING files whose upload URL expired with no object, marks MISSING stuck
   files whose object is gone and FAILED those unsettled ``process_give_up`` after creation;
4. checks that PROCESSED files still have their object (``missing_check_batch`` a run, least
   recently checked first; a gone one makes its file MISSING);
5. removes the objects of REJECTED, EXPIRED, FAILED, CANCELLED and MISSING files older than
   ``object_retention``, and what DELETED files may still hold (``purge_deleted``);
6. aborts every open multipart upload that no PENDING file records (orphaned parts).

Storage unreachable stops the run at step 3 or 6 with ``StorageUnavailable`` (a 503: the broker
retries the ping); step 4 just ends early. The run's counts are logged (``reconciled``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from filepipe.files import outbox
from filepipe.process.reconcile.objects import (
    abort_orphaned_uploads,
    check_processed,
    purge_deleted,
    purge_retained,
)
from filepipe.process.reconcile.unsettled import settle_unsettled
from filepipe.retention import prune_history
from filepipe.runtime import Runtime

__all__ = ["ReconcileReport", "reconcile"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    """The counts of one run, step by step."""

    published: int
    redriven: int
    expired: int
    missing: int
    """Files marked MISSING: stuck ones and PROCESSED ones whose object is gone."""
    gave_up: int
    """Files unsettled ``process_give_up`` after creation, now FAILED."""
    checked: int
    """PROCESSED files whose object was found where it should be."""
    purged: int
    """DELETED files whose storage was cleared."""
    retention_purged: int
    """Settled files whose object was removed after ``object_retention``."""
    aborted: int
    """Open multipart uploads aborted because no PENDING file records them."""
    pruned_events: int
    pruned_logs: int
    pruned_deliveries: int
    pruned_messages: int


def reconcile(rt: Runtime, now: datetime | None = None) -> ReconcileReport:
    """One run (see the module docstring)."""
    now = now or datetime.now(UTC)
    settings = rt.settings
    grace = timedelta(seconds=settings.reconcile_grace)
    with rt.pool.connection() as conn:
        unpublished = outbox.unpublished(
            conn, now - min(grace, timedelta(seconds=10)), settings.reconcile_batch
        )
    published = outbox.publish(rt.pool, rt.publisher, unpublished)
    pruned = prune_history(rt.pool, now - timedelta(seconds=settings.history_retention))
    settled = settle_unsettled(rt, now)
    checked, missing = check_processed(rt)
    retention_purged = purge_retained(rt, now, now - timedelta(seconds=settings.object_retention))
    purged = purge_deleted(rt, now - grace)
    aborted = abort_orphaned_uploads(rt, now - grace)
    report = ReconcileReport(
        published=published,
        redriven=settled.redriven,
        expired=settled.expired,
        missing=settled.missing + missing,
        gave_up=settled.gave_up,
        checked=checked,
        purged=purged,
        retention_purged=retention_purged,
        aborted=aborted,
        pruned_events=pruned.events,
        pruned_logs=pruned.processing_logs,
        pruned_deliveries=pruned.webhook_deliveries,
        pruned_messages=pruned.webhook_messages,
    )
    log.info("reconciled", extra=asdict(report))
    return report
