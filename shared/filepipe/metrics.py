"""Prometheus metrics (prometheus-client): what every filepipe process counts and serves.

Every metric is named ``filepipe_*`` and defined once in ``Metrics``; code records through
``metrics.get()``. Each process serves them on its own port, ``FILEPIPE_METRICS_PORT`` (0, the
default, disables the server): presign 9081, process 9082, query 9083, notify 9084, webhooks 9085,
gateway 9086 (the function's port + 1000); the broker emulator uses 9090.

Multi-worker gunicorn (functions-framework's ``WORKERS``): functions-framework imports the
function's ``main.py`` in gunicorn's master and only then forks the workers, and it offers no
gunicorn hooks. With ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory per function instance,
set before the process starts: prometheus-client reads it at import) every worker writes its
values to files there, and ``web.start_function()`` (which ``main.py`` calls) starts the
server in the master, before the fork, summing every worker's files with
``MultiProcessCollector``: one server per instance, up from start-up, with correct totals, that
outlives any worker gunicorn restarts (workers inherit "already served" and never bind the port).
A process removes its live-gauge files at exit (``mark_process_dead`` from ``atexit``; gunicorn's
``child_exit`` hook is out of reach). Without the variable a master could not see its worker's
values, so the server starts in the worker, on its first request or event
(``runtime.current()``), and serves that process's own registry: correct for one worker (the
default), the gateway and the broker emulator. A port already taken is left to its owner and
logged. Serving ``/metrics`` as a route of the function instead would mix scrapes into the
function's request metrics and expose them on the public port, so it has a port of its own.

Spec: https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger(__name__)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""Read by prometheus-client itself; set it for functions run with more than one worker."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PROCESSING_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
SIZE_BUCKETS = tuple(float(4**n) for n in range(5, 17))  # 1 KiB … 4 GiB
UNMATCHED_ROUTE = "<unmatched>"
"""The ``route`` label of requests no route matched (raw paths would explode cardinality)."""


class Metrics:
    """Every filepipe metric, registered on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.http_requests = Counter(
            "filepipe_http_requests",
            "HTTP requests by function route pattern, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_request_duration = Histogram(
            "filepipe_http_request_duration_seconds",
            "HTTP request latency by route pattern and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.uploads_requested = Counter(
            "filepipe_uploads_requested",
            "Upload URLs issued by presign (replays of an Idempotency-Key included).",
            ["replayed"],
            registry=r,
        )
        self.quota_refusals = Counter(
            "filepipe_quota_refusals",
            "Uploads refused with 429, by quota (upload_rate, pending_files, pending_bytes).",
            ["quota"],
            registry=r,
        )
        self.quota_unchecked = Counter(
            "filepipe_quota_unchecked",
            "Uploads let through unchecked because Redis (the rate limit's store) was down.",
            registry=r,
        )
        self.files_settled = Counter(
            "filepipe_files",
            "Files settled by the process function, by final status.",
            ["status"],
            registry=r,
        )
        self.processing_duration = Histogram(
            "filepipe_processing_duration_seconds",
            "Time from taking a file's lock to settling it, by final status.",
            ["status"],
            buckets=PROCESSING_BUCKETS,
            registry=r,
        )
        self.processed_bytes = Histogram(
            "filepipe_processed_bytes",
            "Size of the objects the process function read.",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.lock_wait = Histogram(
            "filepipe_lock_wait_seconds",
            "Time spent trying to take a file lock, by result (acquired, busy, unavailable).",
            ["result"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lock_contention = Counter(
            "filepipe_lock_contention",
            "File locks found held by another worker (LockBusy).",
            registry=r,
        )
        self.dead_letters = Counter(
            "filepipe_dead_letters",
            "Dead letters received, by source (process: the dead-letter sink; broker: emulator).",
            ["source"],
            registry=r,
        )
        self.events_published = Counter(
            "filepipe_events_published",
            "Outbox events POSTed to the broker, by type.",
            ["type"],
            registry=r,
        )
        self.event_publish_failures = Counter(
            "filepipe_event_publish_failures",
            "Outbox events the broker did not accept (left for reconcile), by type.",
            ["type"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "filepipe_webhook_deliveries",
            "Webhook delivery attempts by result (success, failure, error).",
            ["result"],
            registry=r,
        )
        self.webhook_delivery_duration = Histogram(
            "filepipe_webhook_delivery_duration_seconds",
            "Webhook delivery attempt latency by result.",
            ["result"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_lookups = Counter(
            "filepipe_cache_lookups",
            "Query cache lookups by kind (file, api_key) and result (hit, miss).",
            ["kind", "result"],
            registry=r,
        )
        self.websocket_connections = Gauge(
            "filepipe_websocket_connections",
            "Open WebSocket connections of the gateway.",
            registry=r,
            multiprocess_mode="livesum",
        )


_lock = threading.Lock()
_serve_lock = threading.Lock()
_metrics: Metrics | None = None
_server: Any = None
_server_thread: threading.Thread | None = None
_serve_attempted = False


def get() -> Metrics:
    """The process's metrics, registered on a registry of their own on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                if multiprocess():
                    atexit.register(_mark_dead)
                _metrics = Metrics(CollectorRegistry())
    return _metrics


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR))


def exposition_registry() -> CollectorRegistry:
    """What ``/metrics`` serves: all workers' files in multiprocess mode, else ``get()``'s."""
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return get().registry


def serve(port: int, addr: str = "0.0.0.0") -> bool:  # noqa: S104 - scraped from outside
    """Serve ``/metrics`` on ``port`` once per process (0: don't); whether this process serves.

    Workers forked after a call inherit the attempt and never retry it. A port already taken is
    left to its owner.
    """
    global _server, _server_thread, _serve_attempted
    if port == 0 or _serve_attempted:
        return _server is not None
    with _serve_lock:
        if _serve_attempted:
            return _server is not None
        _serve_attempted = True
        try:
            _server, _server_thread = start_http_server(port, addr, registry=exposition_registry())
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            log.warning("metrics port already taken; not serving", extra={"port": port})
            return False
    log.info("serving metrics", extra={"port": port, "multiprocess": multiprocess()})
    return True


def serve_before_fork(port: int) -> bool:
    """``serve`` from a process that may fork workers (gunicorn's master): only in multiprocess
    mode, where the master can see the workers' values; otherwise the worker serves on first use.
    """
    return serve(port) if multiprocess() else False


def _mark_dead() -> None:
    """At exit (of the process or of a forked child that inherited this): drop live gauges."""
    mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def reset() -> None:
    """Stop the server and forget the metrics (tests; the next ``get()`` starts afresh)."""
    global _metrics, _server, _server_thread, _serve_attempted
    with _serve_lock, _lock:
        if _server is not None:
            _server.shutdown()
            _server.server_close()
        if _server_thread is not None:
            _server_thread.join(5)
        _metrics, _server, _server_thread, _serve_attempted = None, None, None, False
