"""The retry timer thread: runs actions in due order, cancels what still waits on stop."""

from __future__ import annotations

import threading
from functools import partial

from local.broker.timers import Timers
from tests.support.waiting import wait_until


def test_actions_run_in_the_order_they_fall_due_not_the_order_scheduled() -> None:
    timers = Timers()
    timers.start()
    ran: list[str] = []
    try:
        for name, delay in (("late", 0.3), ("early", 0.05), ("middle", 0.15)):
            assert timers.schedule(delay, partial(ran.append, name), lambda: None)
        wait_until(lambda: len(ran) == 3, what="every action")
    finally:
        timers.stop()
    assert ran == ["early", "middle", "late"]


def test_stop_cancels_what_waits_and_refuses_new_entries() -> None:
    timers = Timers()
    timers.start()
    ran, cancelled = threading.Event(), []
    assert timers.schedule(60, ran.set, lambda: cancelled.append("waiting"))
    assert timers.waiting() == 1

    timers.stop()

    assert cancelled == ["waiting"]
    assert not ran.is_set()
    assert timers.waiting() == 0
    assert not timers.schedule(0, ran.set, lambda: cancelled.append("late"))
    assert cancelled == ["waiting"]


def test_a_failing_action_does_not_stop_the_others() -> None:
    timers = Timers()
    timers.start()
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("boom")

    try:
        timers.schedule(0, broken, lambda: None)
        timers.schedule(0.01, done.set, lambda: None)
        assert done.wait(5)
    finally:
        timers.stop()
