"""Pruning history older than ``history_retention``: published events, processing logs, webhook
delivery attempts and settled webhook messages.

Reconcile calls ``prune_history`` once per run. Each table is pruned in batches of
``PRUNE_BATCH`` rows, each batch a short statement of its own (no long lock, no huge
transaction), at most ``PRUNE_BATCHES`` batches per table and run: a backlog drains over a few
runs while a run stays bounded. Every search is served by an index of its table's age column
(migration 0013). What is kept: unpublished events (the outbox still owes them), pending webhook
messages (still to deliver). Pruning an event drops what re-publishing a settled file's events
and the webhook deduplication of a replayed event know about it: both look back
``history_retention`` at most.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

PRUNE_BATCH = 5000
PRUNE_BATCHES = 10

SEARCHES = {
    "events": "SELECT ctid FROM events WHERE published_at < %(before)s"
    " ORDER BY published_at LIMIT %(limit)s",
    "processing_logs": "SELECT ctid FROM processing_logs WHERE created_at < %(before)s"
    " ORDER BY created_at LIMIT %(limit)s",
    "webhook_deliveries": "SELECT ctid FROM webhook_deliveries WHERE created_at < %(before)s"
    " ORDER BY created_at LIMIT %(limit)s",
    "webhook_messages": "SELECT ctid FROM webhook_messages WHERE state <> 'pending'"
    " AND updated_at < %(before)s ORDER BY updated_at LIMIT %(limit)s",
}
"""Per table, the search of one batch of rows older than ``before`` (by the table's index)."""


@dataclass(frozen=True)
class Pruned:
    """Rows removed per table in one run."""

    events: int
    processing_logs: int
    webhook_deliveries: int
    webhook_messages: int


def prune_history(pool: ConnectionPool[Any], before: datetime) -> Pruned:
    """Remove up to ``PRUNE_BATCH * PRUNE_BATCHES`` rows older than ``before`` per table."""
    counts = {table: _prune(pool, table, search, before) for table, search in SEARCHES.items()}
    return Pruned(**counts)


def _prune(pool: ConnectionPool[Any], table: str, search: str, before: datetime) -> int:
    statement = f"DELETE FROM {table} WHERE ctid = ANY(ARRAY({search}))"  # noqa: S608
    removed = 0
    for _ in range(PRUNE_BATCHES):
        with pool.connection() as conn:
            batch = conn.execute(statement, {"before": before, "limit": PRUNE_BATCH}).rowcount
        removed += batch
        if batch < PRUNE_BATCH:
            break
    if removed:
        log.info("history pruned", extra={"table": table, "rows": removed})
    return removed
