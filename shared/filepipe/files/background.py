"""Publishing after the answer: a request hands the events it committed to a daemon thread and
answers without waiting for the broker.

The outbox makes this safe: events are committed before they are handed over, so one the thread
never sends (the process died, the queue was full) stays unpublished in the outbox, where the
republisher (``filepipe.files.republisher``) or reconcile publishes it. The thread sends what is
queued one event after another on the publisher's kept-alive connections, records the publishes
of a batch in one statement (``outbox.publish_events``), and a refused event wakes the
republisher (``Publisher.on_failure``), as a refused publish on the request path does. The
runtime has one per process and stops it in ``Runtime.close``, after sending what is queued.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from typing import Any

from psycopg_pool import ConnectionPool

from filepipe.events import Event, Publisher
from filepipe.files import outbox

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
"""Events waiting for the thread at most; beyond, they are left to the republisher."""
BATCH = 100
"""Events whose publishes are recorded together."""
_STOP = None


class BackgroundPublisher:
    """Publishes submitted events from one daemon thread (started on the first submit)."""

    def __init__(
        self, pool: ConnectionPool[Any], publisher: Publisher, *, max_queued: int = MAX_QUEUED
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self._queue: queue.Queue[Event | None] = queue.Queue(max_queued)
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, events: Iterable[Event]) -> None:
        """Queue committed events for publishing; never blocks. Past ``max_queued`` (the broker
        is slower than the requests), an event stays in the outbox for the republisher."""
        with self._started:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="filepipe-publisher", daemon=True
                )
                self._thread.start()
        for event in events:
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                log.warning(
                    "publish queue full: the event waits in the outbox",
                    extra={"event_id": event.id},
                )
                if self.publisher.on_failure is not None:
                    self.publisher.on_failure()

    def close(self, timeout: float = 10.0) -> None:
        """Publish what is queued, then stop the thread (waiting ``timeout`` seconds at most)."""
        with self._started:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH and batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            events = [event for event in batch if event is not None]
            try:
                outbox.publish_events(self.pool, self.publisher, events)
            except Exception:  # the thread's boundary: the outbox keeps the events
                log.exception("events not published; they wait in the outbox")
            if batch[-1] is _STOP:
                return
