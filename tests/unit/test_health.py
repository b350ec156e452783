"""``filepipe.health.check``: parallel probes, failures named, a slow one cut at the deadline."""

from __future__ import annotations

import threading
import time

from filepipe import health


def test_every_probe_passing_is_ok() -> None:
    readiness = health.check({"a": lambda: None, "b": lambda: None})
    assert (readiness.ok, readiness.status_code, readiness.body["status"]) == (True, 200, "ok")
    assert set(readiness.body["checks"]) == {"a", "b"}
    assert all(check["ok"] and "error" not in check for check in readiness.body["checks"].values())


def test_a_failing_probe_is_named_by_its_error_kind_only() -> None:
    def refused() -> None:
        raise ConnectionRefusedError("secret-host:5432 refused")

    readiness = health.check({"ok": lambda: None, "down": refused})
    assert (readiness.ok, readiness.status_code) == (False, 503)
    assert readiness.body["checks"]["down"] == {
        "ok": False,
        "latency_ms": readiness.body["checks"]["down"]["latency_ms"],
        "error": "ConnectionRefusedError",
    }
    assert "secret-host" not in str(readiness.body)


def test_a_hanging_probe_fails_at_the_deadline_without_holding_the_others() -> None:
    release = threading.Event()
    started = time.monotonic()
    readiness = health.check({"hangs": release.wait, "ok": lambda: None}, deadline=0.3)
    took = time.monotonic() - started
    release.set()
    assert 0.3 <= took < 1.5
    assert readiness.body["checks"]["hangs"]["error"] == "timed out"
    assert readiness.body["checks"]["ok"]["ok"] is True
