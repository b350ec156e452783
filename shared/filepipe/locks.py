"""Per-file Redis Redlock (pottery): keeps two workers from hashing the same object at once.

The lock is an efficiency measure. Correctness comes from PostgreSQL: every status change is a
compare-and-set on (status, version), so a worker whose lock expired changes nothing. A held lock
is ``LockBusy``; an unreachable Redis is ``LockUnavailable``; both are retryable errors.
"""

from __future__ import annotations

import logging
import time
from time import perf_counter
from types import TracebackType

from pottery import QuorumIsImpossible, Redlock
from pottery.exceptions import ExtendUnlockedLock, ReleaseUnlockedLock, TooManyExtensions
from redis import Redis
from redis.exceptions import RedisError

from filepipe import metrics
from filepipe.errors import DependencyError
from filepipe.telemetry import tracer

log = logging.getLogger(__name__)


class LockError(DependencyError):
    """The file lock could not be taken or kept."""


class LockBusy(LockError):
    """Another worker holds the lock on this file."""


class LockUnavailable(LockError):
    """Redis cannot be reached, so the lock cannot be taken."""


class FileLock:
    """A Redlock on one file id, renewed by ``keep_alive()`` while the holder works."""

    def __init__(self, redis: Redis, file_id: str, *, ttl: float = 30.0) -> None:
        self.file_id = file_id
        self.ttl = ttl
        self._lock = Redlock(
            key=f"filepipe:file:{file_id}",
            masters={redis},
            auto_release_time=ttl,
            num_extensions=100_000,
            raise_on_redis_errors=True,
        )
        self._renewed_at = 0.0

    def __enter__(self) -> FileLock:
        attributes = {"filepipe.file_id": self.file_id}
        with tracer().start_as_current_span("lock file", attributes=attributes):
            return self._acquire()

    def _acquire(self) -> FileLock:
        recorded, start = metrics.get(), perf_counter()
        try:
            acquired = self._lock.acquire(blocking=False)
        except (QuorumIsImpossible, RedisError) as exc:
            recorded.lock_wait.labels("unavailable").observe(perf_counter() - start)
            raise LockUnavailable(f"Redis is unavailable, cannot lock file {self.file_id}") from exc
        recorded.lock_wait.labels("acquired" if acquired else "busy").observe(
            perf_counter() - start
        )
        if not acquired:
            recorded.lock_contention.inc()
            raise LockBusy(f"file {self.file_id} is being processed by another worker")
        self._renewed_at = time.monotonic()
        return self

    def keep_alive(self) -> None:
        """Extend the lease once a third of it has passed; cheap to call on every chunk."""
        if time.monotonic() - self._renewed_at < self.ttl / 3:
            return
        try:
            self._lock.extend()
        except (QuorumIsImpossible, RedisError, ExtendUnlockedLock, TooManyExtensions) as exc:
            raise LockUnavailable(f"lost the lock on file {self.file_id}") from exc
        self._renewed_at = time.monotonic()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._lock.release()
        except (QuorumIsImpossible, RedisError, ReleaseUnlockedLock) as error:
            log.warning(
                "could not release the file lock; it expires by itself",
                extra={"file_id": self.file_id, "error": repr(error)},
            )
