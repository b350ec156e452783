"""Per-file Redis Redlock (pottery) with a heartbeat: one worker hashes an object at a time.

The lock is an efficiency measure. Correctness comes from PostgreSQL: every status change is a
compare-and-set on (status, version), so a worker whose lock expired changes nothing.

- The lease is short (``FILEPIPE_LOCK_TTL``, 10 s) and a heartbeat thread renews it every third
  of it for as long as the holder works, however long one step takes: a dead worker's lock frees
  itself within one TTL, a live worker's never lapses. A renewal that fails (or hangs) is tried
  again at the next beat; once the lease has run out unrenewed, or was found gone, the lock is
  lost: the holder calls ``check()`` on every chunk and before settling, and stops (``LockLost``).
- Taking a held lock watches it for up to about one TTL (``takeover_wait``): if it frees (its
  holder died), it is taken at once; if its TTL goes up meanwhile, a heartbeat renewed it, the
  holder is alive, and the caller gets ``LockBusy``.
- An unreachable Redis is ``LockUnavailable``, naming the driver's error.

::

    LockError (DependencyError)
    ├── LockBusy          a live worker holds the lock
    ├── LockUnavailable   Redis cannot be reached
    └── LockLost          the heartbeat could not renew the lease
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
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

POLL_SECONDS = 0.25
"""How often a held lock is looked at while waiting to take it over (at most)."""


class LockError(DependencyError):
    """The file lock could not be taken or kept."""


class LockBusy(LockError):
    """Another worker holds the lock on this file and keeps renewing it."""


class LockUnavailable(LockError):
    """Redis cannot be reached, so the lock cannot be taken or kept."""


class LockLost(LockError):
    """The heartbeat could not renew the lease: another worker may take the file over."""


class FileLock:
    """A Redlock on one file id, renewed by a heartbeat thread while it is held."""

    def __init__(
        self, redis: Redis, file_id: str, *, ttl: float = 10.0, takeover_wait: float | None = None
    ) -> None:
        self.file_id = file_id
        self.ttl = ttl
        self.takeover_wait = ttl + POLL_SECONDS if takeover_wait is None else takeover_wait
        self._redis = redis
        self._lock = Redlock(
            key=f"filepipe:file:{file_id}",
            masters={redis},
            auto_release_time=ttl,
            num_extensions=1_000_000,
            raise_on_redis_errors=True,
        )
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._lost: LockLost | None = None
        self._last_error: BaseException | None = None
        self._valid_until = 0.0
        """When the lease runs out unless renewed (monotonic clock, measured before asking)."""

    def __enter__(self) -> FileLock:
        attributes = {"filepipe.file_id": self.file_id}
        with tracer().start_as_current_span("lock file", attributes=attributes):
            self._acquire()
        self._heartbeat = threading.Thread(
            target=self._beat, name=f"lock-heartbeat-{self.file_id}", daemon=True
        )
        self._heartbeat.start()
        return self

    def _acquire(self) -> None:
        recorded, start = metrics.get(), perf_counter()
        try:
            taken = self._take_or_watch()
        except LockUnavailable:
            recorded.lock_wait.labels("unavailable").observe(perf_counter() - start)
            raise
        recorded.lock_wait.labels("acquired" if taken else "busy").observe(perf_counter() - start)
        if not taken:
            recorded.lock_contention.inc()
            raise LockBusy(f"file {self.file_id} is being processed by another worker")

    def _take_or_watch(self) -> bool:
        """Take the lock, waiting while a holder lets it expire; ``False`` if its holder lives."""
        deadline = time.monotonic() + self.takeover_wait
        last_ttl: int | None = None
        while True:
            if self._try_acquire():
                return True
            ttl = self._remaining_ms()
            if ttl == -1 or (last_ttl is not None and ttl > last_ttl):
                return False  # renewed since we last looked (or never expires): a live holder
            now = time.monotonic()
            if now >= deadline:
                return False
            last_ttl = ttl
            time.sleep(min(POLL_SECONDS, max(ttl, 1) / 1000, deadline - now))

    def _try_acquire(self) -> bool:
        asked = time.monotonic()
        try:
            taken = bool(self._lock.acquire(blocking=False))
        except (QuorumIsImpossible, RedisError) as exc:
            raise LockUnavailable(
                f"Redis is unavailable, cannot lock file {self.file_id}: {_cause(exc)}"
            ) from exc
        if taken:
            self._valid_until = asked + self.ttl
        return taken

    def _remaining_ms(self) -> int:
        """The held lock's remaining lease in ms (-2: gone, -1: no expiry), read from Redis."""
        try:
            return int(self._redis.pttl(self._lock.key))
        except RedisError as exc:
            raise LockUnavailable(
                f"Redis is unavailable, cannot lock file {self.file_id}: {_cause(exc)}"
            ) from exc

    def _beat(self) -> None:
        """Renew the lease every third of it until released. A Redis error (or a renewal that
        hangs) is tried again at the next beat: the lease is lost only once it has run out."""
        while not self._stop.wait(self.ttl / 3):
            attempt = time.monotonic()
            try:
                self._lock.extend()
            except ExtendUnlockedLock as exc:  # the lease ran out: someone may hold it now
                self._lost = LockLost(f"lost the lock on file {self.file_id}: {_cause(exc)}")
                log.warning(
                    "file lock lost; the worker stops before settling",
                    extra={"file_id": self.file_id, "error": _cause(exc)},
                )
                return
            except (QuorumIsImpossible, RedisError, TooManyExtensions) as exc:
                self._last_error = exc
                log.warning(
                    "could not renew the file lock; trying again",
                    extra={"file_id": self.file_id, "error": _cause(exc)},
                )
            else:
                self._valid_until = attempt + self.ttl

    def check(self) -> None:
        """Raise ``LockLost`` once the lease is gone or has run out unrenewed (cheap; call it
        before each step, and before settling)."""
        if self._lost is not None:
            raise self._lost
        if time.monotonic() >= self._valid_until:
            cause = "the heartbeat could not renew it in time"
            if self._last_error is not None:
                cause = _cause(self._last_error)
            raise LockLost(f"lost the lock on file {self.file_id}: {cause}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        try:
            self._lock.release()
        except (QuorumIsImpossible, RedisError, ReleaseUnlockedLock) as error:
            log.warning(
                "could not release the file lock; it expires by itself",
                extra={"file_id": self.file_id, "error": repr(error)},
            )


def _cause(exc: BaseException) -> str:
    """The Redis errors behind a pottery error (or the error itself), for a reason to record."""
    errors: Iterable[BaseException] = getattr(exc, "redis_errors", ()) or (exc,)
    return "; ".join(f"{type(error).__name__}: {error}" for error in errors)
