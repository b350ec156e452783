"""Health of a function: ``GET /healthz`` (liveness) and ``GET /readyz`` (its dependencies).

``/healthz`` answers 200 as long as the process serves requests; it touches no dependency, so an
outage elsewhere never gets a healthy process restarted. ``/readyz`` checks each dependency the
function uses, all at once, each bounded, and answers within ``DEADLINE`` seconds::

    200 {"status": "ok", "checks": {"postgres": {"ok": true, "latency_ms": 1.2}, ...}}
    503 {"status": "unavailable", "checks": {"redis": {"ok": false, "latency_ms": 0.4,
                                                       "error": "ConnectionError"}, ...}}

Errors name the kind of failure, never an address or a credential. The Knative probes use
``/healthz`` for both liveness and readiness: Knative's activator holds requests for a revision
with no ready pod (until its timeout), so failing readiness during an outage would turn each
function's quick 503 with ``Retry-After`` into requests left waiting. ``/readyz`` is for
operators, dashboards and the chaos suite.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from psycopg_pool import ConnectionPool

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from redis import Redis

    from filepipe.runtime import Runtime

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
PATHS = frozenset({LIVENESS_PATH, READINESS_PATH})
DEADLINE = 2.0
"""Seconds ``/readyz`` waits for its checks; one still running then is reported failed."""

Probe = Callable[[], object]
"""Returns once the dependency answered; raises if it did not."""

DEPENDENCIES: Mapping[str, tuple[str, ...]] = {
    "presign": ("postgres", "redis", "s3", "broker"),
    "query": ("postgres", "redis", "s3", "broker"),
    "webhooks": ("postgres",),
    "process": ("postgres", "redis", "s3", "broker"),
    "notify": ("postgres", "redis"),
}
"""What each function's requests or events need (a function not listed: PostgreSQL only)."""


@dataclass(frozen=True)
class Readiness:
    ok: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        return 200 if self.ok else 503


def check(probes: Mapping[str, Probe], deadline: float = DEADLINE) -> Readiness:
    """Run ``probes`` in parallel; each one not done within ``deadline`` seconds failed."""
    executor = ThreadPoolExecutor(max_workers=max(1, len(probes)), thread_name_prefix="readyz")
    started = time.monotonic()
    futures = {name: executor.submit(_timed, probe) for name, probe in probes.items()}
    wait(futures.values(), timeout=deadline)
    executor.shutdown(wait=False)  # a probe past the deadline ends on its client's own timeout
    checks = {name: _result(future, started) for name, future in futures.items()}
    ok = all(result["ok"] for result in checks.values())
    return Readiness(ok, {"status": "ok" if ok else "unavailable", "checks": checks})


def probes_of(rt: Runtime, function: str) -> dict[str, Probe]:
    """The probes of ``function``'s dependencies (the broker only when ``K_SINK`` is set)."""
    available: dict[str, Probe] = {
        "postgres": lambda: postgres(rt.pool),
        "redis": lambda: redis(rt.redis),
        "s3": lambda: s3(rt.s3, rt.settings.s3_bucket),
    }
    if rt.settings.k_sink:
        sink = rt.settings.k_sink
        available["broker"] = lambda: broker(sink)
    return {
        name: available[name]
        for name in DEPENDENCIES.get(function, ("postgres",))
        if name in available
    }


def postgres(pool: ConnectionPool[Any]) -> None:
    with pool.connection(timeout=DEADLINE) as conn:
        conn.execute("SELECT 1")


def redis(client: Redis) -> None:
    client.ping()


def s3(client: S3Client, bucket: str) -> None:
    client.head_bucket(Bucket=bucket)


def broker(url: str) -> None:
    """The broker's ingress accepts connections (no event is sent)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=DEADLINE):
        pass


def _timed(probe: Probe) -> float:
    started = time.monotonic()
    probe()
    return time.monotonic() - started


def _result(future: Future[float], started: float) -> dict[str, Any]:
    if not future.done():
        elapsed = time.monotonic() - started
        return {"ok": False, "latency_ms": _ms(elapsed), "error": "timed out"}
    error = future.exception()
    if error is not None:
        elapsed = time.monotonic() - started
        return {"ok": False, "latency_ms": _ms(elapsed), "error": type(error).__name__}
    return {"ok": True, "latency_ms": _ms(future.result())}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
