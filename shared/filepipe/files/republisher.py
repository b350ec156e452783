"""Publishing soon what the broker refused: a background thread, woken when a publish fails.

``outbox.publish`` leaves an event the broker did not take in the outbox, where the next
reconcile run would find it a minute or more later. The republisher goes sooner: ``wake()``
(which never blocks: it sets a flag, and starts the thread the first time) makes a daemon
thread publish the outbox's unpublished events ``first_delay`` seconds later, then again after
twice as long each time, up to ``max_delay``, until none is left; then it sleeps until woken
again. The runtime has one (so a process has one), wakes it from its publisher's failures, and
stops it in ``Runtime.close``. Several processes' republishers may publish the same event:
consumers dedupe on its id, as for reconcile.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from filepipe.events import Publisher
from filepipe.files import outbox

log = logging.getLogger(__name__)


class Republisher:
    """Retries the outbox's unpublished events in a background thread, with backoff."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        publisher: Publisher,
        *,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
        batch: int = 200,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.batch = batch
        self._woken = threading.Event()
        self._stopping = threading.Event()
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Ask for a retry soon (from any thread; returns at once)."""
        if self._stopping.is_set():
            return
        self._woken.set()
        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="filepipe-republisher", daemon=True
                )
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (a publish under way finishes first) and wait for it."""
        self._stopping.set()
        self._woken.set()
        with self._started:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while self._woken.wait() and not self._stopping.is_set():
            delay = self.first_delay
            while not self._stopping.wait(delay):
                self._woken.clear()
                if self._drained():
                    break
                delay = min(delay * 2, self.max_delay)

    def _drained(self) -> bool:
        """Publish unpublished events, a batch at a time; whether none is left."""
        while not self._stopping.is_set():
            try:
                with self.pool.connection() as conn:
                    ids = outbox.unpublished(conn, datetime.now(UTC), self.batch)
            except psycopg.Error as exc:
                log.warning("outbox unreadable; retrying later", extra={"error": str(exc)})
                return False
            if not ids:
                return True
            published = outbox.publish(self.pool, self.publisher, ids)
            log.info("outbox retried", extra={"published": published, "unpublished": len(ids)})
            if published < len(ids):
                return False
        return False
