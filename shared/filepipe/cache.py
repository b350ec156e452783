"""Redis cache-aside for the query function: file representations and API-key → tenant lookups.

So that a cached ``GET /files/{id}`` costs one Redis round trip and no PostgreSQL at all, one
``MGET`` reads the caller's key entry, the file's entry and the file's guard.

- Files: ``{"tenant", "file"}`` JSON under ``filepipe:file:v1:{<id>}``, TTL
  ``FILEPIPE_CACHE_TTL`` (a safety net). The tenant is checked on every hit, so a cached answer
  never reaches another tenant. Writers call ``invalidate_file(redis, file_id)`` right after
  committing: it bumps the file's *guard* counter and deletes the entry. A reader notes the guard
  before reading PostgreSQL and stores what it read only if the guard is unchanged (one Lua
  script), so a read that raced a change can't put the old row back after the invalidation.
- API keys: the tenant of a valid key under ``filepipe:apikey:v1:<sha256 of the key>`` (the hash
  PostgreSQL stores; never the key), for at most ``KEY_TTL_SECONDS``. Whoever revokes a key
  calls ``forget_api_key(redis, key_hash)``; otherwise a revoked key keeps reading for at most
  that long.

Redis is an optimisation: when it fails, reads go to PostgreSQL, failures are logged, the cache
is skipped for a few seconds, and ``invalidate_file``/``forget_api_key`` never raise. An
invalidation lost while Redis was down leaves an entry at most one TTL old. A TTL of 0 turns the
cache off.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from filepipe import metrics

log = logging.getLogger(__name__)

GUARD_TTL_SECONDS = 600
"""How long a guard counter outlives its last bump: far longer than any read takes."""
KEY_TTL_SECONDS = 60.0
"""The longest an API key's tenant is cached (bounds how long a revocation may take)."""
RETRY_AFTER_SECONDS = 5.0
"""How long the cache is skipped after a Redis failure."""

_FILE_PREFIX = "filepipe:file:v1:"
_KEY_PREFIX = "filepipe:apikey:v1:"
_STORE_IF_UNCHANGED = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""


class RedisLike(Protocol):
    """The part of ``redis.Redis`` the cache uses."""

    def mget(self, keys: Any, *args: Any) -> Any: ...

    def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any: ...

    def delete(self, *names: Any) -> Any: ...

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any: ...

    def pipeline(self, transaction: bool = True) -> Any: ...


def entry_key(file_id: uuid.UUID | str) -> str:
    """The cache key of a file (the braces keep entry and guard in one Redis Cluster slot)."""
    return f"{_FILE_PREFIX}{{{file_id}}}"


def guard_key(file_id: uuid.UUID | str) -> str:
    return f"{entry_key(file_id)}:guard"


def api_key_entry(key_hash: bytes) -> str:
    return f"{_KEY_PREFIX}{key_hash.hex()}"


def invalidate_file(redis: RedisLike, file_id: uuid.UUID | str) -> None:
    """Drop the file's cached representation; call right after committing a change. Never raises."""
    try:
        pipe = redis.pipeline(transaction=True)
        pipe.incr(guard_key(file_id))
        pipe.expire(guard_key(file_id), GUARD_TTL_SECONDS)
        pipe.delete(entry_key(file_id))
        pipe.execute()
    except RedisError as exc:
        log.error(
            "cache invalidation failed; the entry expires with its TTL",
            extra={"file_id": str(file_id), "error": str(exc)},
        )


def forget_api_key(redis: RedisLike, key_hash: bytes) -> None:
    """Drop a key's cached tenant; call right after revoking it. Never raises."""
    try:
        redis.delete(api_key_entry(key_hash))
    except RedisError as exc:
        log.error("cached key not forgotten; it expires with its TTL", extra={"error": str(exc)})


@dataclass(frozen=True)
class Lookup:
    """What the cache knows: the key's tenant, the file's entry, the guard to store a miss under."""

    key_tenant: str | None = None
    """The tenant of the caller's API key, if cached."""
    file_tenant: str | None = None
    file: dict[str, Any] | None = None
    guard: str | None = None
    """``None`` when Redis was not asked or failed: a miss must not be stored."""


class ReadCache:
    """Cache-aside of file representations and key lookups; one per process (it remembers
    Redis failures)."""

    def __init__(self, redis: RedisLike, ttl: float) -> None:
        self._redis = redis
        self._ttl_ms = int(ttl * 1000)
        self._key_ttl_ms = int(min(ttl, KEY_TTL_SECONDS) * 1000)
        self._skip_until = 0.0

    @property
    def enabled(self) -> bool:
        return self._ttl_ms > 0 and time.monotonic() >= self._skip_until

    def lookup(self, key_hash: bytes, file_id: uuid.UUID | None = None) -> Lookup:
        """The key's tenant and, if ``file_id`` is given, the file's entry: one round trip."""
        if not self.enabled:
            return Lookup()
        names = [api_key_entry(key_hash)]
        if file_id is not None:
            names += [entry_key(file_id), guard_key(file_id)]
        try:
            values = self._redis.mget(names)
        except RedisError as exc:
            self._failed("read", exc)
            return Lookup()
        key_tenant = values[0].decode() if values[0] is not None else None
        lookups = metrics.get().cache_lookups
        lookups.labels("api_key", "miss" if key_tenant is None else "hit").inc()
        if file_id is None:
            return Lookup(key_tenant=key_tenant)
        raw, guard = values[1], values[2].decode() if values[2] is not None else ""
        lookups.labels("file", "miss" if raw is None else "hit").inc()
        if raw is None:
            return Lookup(key_tenant=key_tenant, guard=guard)
        try:
            entry = json.loads(raw)
            tenant, file = str(entry["tenant"]), dict(entry["file"])
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable cache entry ignored", extra={"file_id": str(file_id)})
            return Lookup(key_tenant=key_tenant, guard=guard)
        return Lookup(key_tenant=key_tenant, file_tenant=tenant, file=file, guard=guard)

    def store_file(self, file_id: uuid.UUID, tenant: str, file: dict[str, Any], guard: str) -> bool:
        """Cache ``file`` unless it changed since ``guard`` was read; whether it was stored."""
        if not self.enabled:
            return False
        entry = json.dumps({"tenant": tenant, "file": file}, separators=(",", ":"))
        names_and_args = (entry_key(file_id), guard_key(file_id), guard, entry, self._ttl_ms)
        try:
            stored = self._redis.eval(_STORE_IF_UNCHANGED, 2, *names_and_args)
        except RedisError as exc:
            self._failed("write", exc)
            return False
        return bool(stored)

    def store_key(self, key_hash: bytes, tenant: str) -> None:
        """Remember the tenant of a key PostgreSQL has just accepted."""
        if not self.enabled:
            return
        try:
            self._redis.set(api_key_entry(key_hash), tenant, px=self._key_ttl_ms)
        except RedisError as exc:
            self._failed("write", exc)

    def _failed(self, what: str, exc: RedisError) -> None:
        self._skip_until = time.monotonic() + RETRY_AFTER_SECONDS
        log.warning(
            "cache %s failed; answering from PostgreSQL",
            what,
            extra={"error": str(exc), "retry_after": RETRY_AFTER_SECONDS},
        )
