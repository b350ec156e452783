"""Per-tenant quotas on creating uploads: a rate limit (Redis) and caps on PENDING files and
bytes (PostgreSQL). Over any of them, a 429 with ``Retry-After``.

Rate: a GCRA (generic cell rate algorithm, the token bucket as one timestamp) per tenant,
``upload_rate`` uploads per second with bursts of ``upload_burst``, run as one Lua script so
concurrent requests of every replica see one count; the clock is Redis's own (``TIME``), so
replicas' clocks don't matter. The key expires once the bucket is full again. If Redis cannot be
reached the upload goes on unchecked (fail open: the caps below still hold, and refusing every
upload because a cache is down would be worse); it is logged and counted
(``filepipe_quota_unchecked``), and the request never waits longer than the client's timeouts.

Caps: checked when the transaction inserting the PENDING row commits, by a deferred trigger on
``files`` that keeps each tenant's PENDING files and bytes in ``pending_counts`` (migration 0014):
one row, whatever the number of PENDING files, locked only while a transaction commits, so
concurrent inserts of one tenant count one after another (each sees those committed before it)
and never overshoot. An upload of unknown size counts as a file but not as bytes (its size is
bounded by the size limit). A replay of an ``Idempotency-Key`` inserts nothing and is neither
counted nor refused.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol

from psycopg import Connection
from psycopg.errors import RaiseException
from redis.exceptions import RedisError

from filepipe import metrics
from filepipe.config import Settings
from filepipe.errors import TooManyRequests

log = logging.getLogger(__name__)

RATE_KEY = "filepipe:quota:uploads:{tenant}"

_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat + interval - burst * interval - now
if wait > 0 then return wait end
local ttl = math.ceil((tat + interval - now) / 1000)
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', ttl)
return 0
"""
"""GCRA in microseconds: the theoretical arrival time ``tat`` moves one ``interval`` per
upload; an upload is allowed while ``tat`` stays within ``burst`` intervals of now. Returns
0 (allowed) or the microseconds until the next one is. ``tat`` is written with ``%d``: Lua
would write a number of 16 digits with 14 (``%.14g``), losing its last 100 µs."""


class ScriptRunner(Protocol):
    """The part of ``redis.Redis`` the rate limit uses."""

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any: ...


def take_upload(redis: ScriptRunner, settings: Settings, tenant: str) -> None:
    """Count one upload of ``tenant`` against its rate, or raise ``TooManyRequests``."""
    interval = max(1, round(1_000_000 / settings.upload_rate))
    try:
        key = RATE_KEY.format(tenant=tenant)
        wait = int(redis.eval(_GCRA, 1, key, interval, settings.upload_burst))
    except RedisError as exc:
        log.warning("upload rate unchecked: Redis unavailable", extra={"error": str(exc)})
        metrics.get().quota_unchecked.inc()
        return
    if wait > 0:
        metrics.get().quota_refusals.labels("upload_rate").inc()
        raise TooManyRequests(
            f"over the upload rate of {settings.upload_rate:g} per second"
            f" (bursts of {settings.upload_burst}); retry later",
            retry_after=math.ceil(wait / 1_000_000),
            quota="upload_rate",
            limit=settings.upload_rate,
        )


CAPS_RETRY_AFTER = 60
"""``Retry-After`` of a cap: PENDING files leave that state as their uploads arrive or expire,
which takes a while; no exact time is known."""


def cap_pending(conn: Connection[Any], settings: Settings) -> None:
    """Have the transaction refuse, at its commit, a PENDING file it inserts over the tenant's
    caps (the trigger of migration 0014 reads them). Wrap the transaction in ``within_caps``."""
    conn.execute(
        "SELECT set_config('filepipe.max_pending_files', %s, true),"
        " set_config('filepipe.max_pending_bytes', %s, true)",
        (str(settings.max_pending_files), str(settings.max_pending_bytes)),
    )


@contextmanager
def within_caps(settings: Settings, size: int | None) -> Iterator[None]:
    """Turn a commit refused by ``cap_pending`` into ``TooManyRequests`` for an upload of
    ``size`` declared bytes: the tenant already holds ``max_pending_files`` PENDING files, or
    their bytes and ``size`` exceed ``max_pending_bytes``."""
    try:
        yield
    except RaiseException as exc:
        quota, current = exc.diag.message_primary, int(exc.diag.message_detail or 0)
        if quota == "pending_files":
            _refuse(
                quota,
                f"the tenant has {current} PENDING files, the most it may hold"
                f" (max_pending_files {settings.max_pending_files}); upload or cancel some first",
                limit=settings.max_pending_files,
                current=current,
            )
        if quota == "pending_bytes":
            _refuse(
                quota,
                f"the tenant's PENDING files declare {current} bytes; {size} more would pass"
                f" max_pending_bytes ({settings.max_pending_bytes}); upload or cancel some first",
                limit=settings.max_pending_bytes,
                current=current,
            )
        raise


def _refuse(quota: str, detail: str, **extensions: int) -> NoReturn:
    metrics.get().quota_refusals.labels(quota).inc()
    raise TooManyRequests(detail, retry_after=CAPS_RETRY_AFTER, quota=quota, **extensions)
