"""One timer thread for every retry the dispatcher has to wait for.

A delivery that failed and will be retried must not sleep in one of its Trigger's delivery
threads: that would let a few failing events hold up every other event of the Trigger
(head-of-line blocking). Instead the attempt hands its next try to ``Timers``, which keeps a
heap ordered by due time and runs the action (which only resubmits the attempt to the Trigger's
pool) when it is due. ``stop`` cancels whatever is still waiting: each entry's ``on_cancel``
runs, so the dispatcher can return its message to the queue instead of losing it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Action = Callable[[], object]
"""What a timer runs; its result is ignored."""


@dataclass(order=True)
class _Entry:
    due: float
    order: int
    action: Action = field(compare=False)
    on_cancel: Action = field(compare=False)


class Timers:
    """Runs actions after a delay, in one thread; actions must be quick (hand work on)."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="retry-timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def schedule(self, delay: float, action: Action, on_cancel: Action) -> bool:
        """Run ``action`` in ``delay`` seconds; False (and nothing scheduled) once stopped."""
        with self._changed:
            if self._stopped:
                return False
            due = time.monotonic() + delay
            heapq.heappush(self._heap, _Entry(due, next(self._order), action, on_cancel))
            self._changed.notify()
            return True

    def waiting(self) -> int:
        with self._changed:
            return len(self._heap)

    def stop(self) -> None:
        """Refuse new entries and run ``on_cancel`` of every waiting one (in this thread)."""
        with self._changed:
            self._stopped = True
            cancelled, self._heap = self._heap, []
            self._changed.notify()
        for entry in sorted(cancelled):
            _run_safely(entry.on_cancel)
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopped and (
                    not self._heap or self._heap[0].due > time.monotonic()
                ):
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._changed.wait(timeout)
                if self._stopped:
                    return
                entry = heapq.heappop(self._heap)
            _run_safely(entry.action)


def _run_safely(action: Action) -> None:
    try:
        action()
    except Exception:  # a timer must outlive a broken action; the action's owner logs it
        log.exception("a scheduled action failed")
