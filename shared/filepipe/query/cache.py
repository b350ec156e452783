"""Redis cache-aside for the query function: file answers and API-key → tenant lookups.

A cached ``GET /files/{id}`` costs one Redis round trip (the caller's key, the file's entry and
its guard in one ``MGET``: ``ReadCache.read``), no PostgreSQL and no JSON: the entry holds the
answer as served.

- Files: ``CachedFile`` (tenant, ETag, the JSON body) under ``filepipe.files.cache.entry_key``,
  TTL ``FILEPIPE_CACHE_TTL`` (a safety net). The tenant is checked on every hit, so a cached
  answer never reaches another tenant. Writers invalidate right after committing
  (``filepipe.files.cache.invalidate``): it bumps the file's *guard* counter and deletes the
  entry. A reader notes the guard before reading PostgreSQL and stores what it read only if the
  guard is unchanged (one Lua script), so a read that raced a change can't put the old row back.
- API keys: the tenant of a valid key under ``filepipe:apikey:v1:<sha256 of the key>`` (the hash
  PostgreSQL stores; never the key), for at most ``KEY_TTL_SECONDS`` and never past the key's
  expiry. Whoever revokes, rotates or shortens a key leaves a tombstone there
  (``filepipe.revocation``, re-exported here: ``api_key_entry``, ``forget_api_key``); entries
  are stored only where nothing is (``SET NX``), so a lookup that raced the revocation can't
  bring the key back, and a tombstone reads as a miss. The entry is read on every request (in
  the same ``MGET`` as the file), so a revocation takes effect at once in every process.

Reads make no span of their own (the request's span covers them; ``filepipe_cache_lookups``
counts hits and misses): the Redis instrumentation's span cost as much as the round trip.
Stores, on misses, are traced.

Redis is an optimisation: when it fails, reads go to PostgreSQL, failures are logged, the cache
is skipped for a few seconds, and ``forget_api_key`` never raises. A TTL of 0 turns the cache off.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.instrumentation.utils import suppress_instrumentation
from redis.exceptions import RedisError

from filepipe import metrics
from filepipe.files.cache import entry_key, guard_key
from filepipe.revocation import KEY_CACHE_SECONDS, TOMBSTONE, api_key_entry, forget_api_key

__all__ = [
    "KEY_TTL_SECONDS",
    "CachedFile",
    "Lookup",
    "ReadCache",
    "api_key_entry",
    "forget_api_key",
]

log = logging.getLogger(__name__)

KEY_TTL_SECONDS = KEY_CACHE_SECONDS
"""The longest an API key's tenant is cached (bounds how long a revocation may take)."""
RETRY_AFTER_SECONDS = 5.0
"""How long the cache is skipped after a Redis failure."""

_STORE_IF_UNCHANGED = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""
_FORMAT = b"filepipe-file-v2"
"""First line of an entry; an entry in any other format (an older release's) is a miss."""


class RedisLike(Protocol):
    """The part of ``redis.Redis`` the cache uses."""

    def get(self, name: Any) -> Any: ...

    def mget(self, keys: Any, *args: Any) -> Any: ...

    def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any: ...

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any: ...


@dataclass(frozen=True)
class CachedFile:
    """A file's answer as served: whose it is, its entity tag and its JSON body."""

    tenant: str
    etag: str
    body: bytes

    def encode(self) -> bytes:
        """Lines of format, tenant and ETag (neither holds a newline), then the body."""
        return b"\n".join((_FORMAT, self.tenant.encode(), self.etag.encode(), self.body))

    @classmethod
    def decode(cls, raw: bytes) -> CachedFile | None:
        parts = raw.split(b"\n", 3)
        if len(parts) != 4 or parts[0] != _FORMAT:
            return None
        try:
            return cls(parts[1].decode(), parts[2].decode(), parts[3])
        except UnicodeDecodeError:
            return None


@dataclass(frozen=True)
class Lookup:
    """What the cache holds of a file: its entry, and the guard to store a miss under."""

    file: CachedFile | None = None
    guard: str | None = None
    """``None`` when Redis was not asked or failed: a miss must not be stored."""


class ReadCache:
    """Cache-aside of file answers and key lookups; one per process (it remembers Redis
    failures)."""

    def __init__(self, redis: RedisLike, ttl: float) -> None:
        self._redis = redis
        self._ttl_ms = int(ttl * 1000)
        self._key_ttl_ms = int(min(ttl, KEY_TTL_SECONDS) * 1000)
        self._skip_until = 0.0

    @property
    def enabled(self) -> bool:
        return self._ttl_ms > 0 and time.monotonic() >= self._skip_until

    def key_tenant(self, key_hash: bytes) -> str | None:
        """The cached tenant of an API key, if any."""
        if not self.enabled:
            return None
        try:
            with suppress_instrumentation():
                value = self._redis.get(api_key_entry(key_hash))
        except RedisError as exc:
            self._failed("read", exc)
            return None
        return _tenant(value)

    def lookup(self, file_id: uuid.UUID) -> Lookup:
        """The file's entry and guard: one round trip."""
        if not self.enabled:
            return Lookup()
        try:
            with suppress_instrumentation():
                raw, guard = self._redis.mget([entry_key(file_id), guard_key(file_id)])
        except RedisError as exc:
            self._failed("read", exc)
            return Lookup()
        return _lookup(file_id, raw, guard)

    def read(self, key_hash: bytes, file_id: uuid.UUID) -> tuple[str | None, Lookup]:
        """``key_tenant`` and ``lookup`` in one round trip."""
        if not self.enabled:
            return None, Lookup()
        names = [api_key_entry(key_hash), entry_key(file_id), guard_key(file_id)]
        try:
            with suppress_instrumentation():
                tenant, raw, guard = self._redis.mget(names)
        except RedisError as exc:
            self._failed("read", exc)
            return None, Lookup()
        return _tenant(tenant), _lookup(file_id, raw, guard)

    def store_file(self, file_id: uuid.UUID, file: CachedFile, guard: str) -> bool:
        """Cache ``file`` unless it changed since ``guard`` was read; whether it was stored."""
        if not self.enabled:
            return False
        names_and_args = (entry_key(file_id), guard_key(file_id), guard, file.encode())
        try:
            stored = self._redis.eval(_STORE_IF_UNCHANGED, 2, *names_and_args, self._ttl_ms)
        except RedisError as exc:
            self._failed("write", exc)
            return False
        return bool(stored)

    def store_key(self, key_hash: bytes, tenant: str, expires_in: float | None = None) -> None:
        """Remember the tenant of a key PostgreSQL has just accepted, at most until it expires
        in ``expires_in`` seconds, and only if no entry (or tombstone) is there."""
        ttl_ms = self._key_ttl_ms
        if expires_in is not None:
            ttl_ms = min(ttl_ms, math.floor(expires_in * 1000))
        if not self.enabled or ttl_ms <= 0:
            return
        try:
            self._redis.set(api_key_entry(key_hash), tenant, px=ttl_ms, nx=True)
        except RedisError as exc:
            self._failed("write", exc)

    def _failed(self, what: str, exc: RedisError) -> None:
        self._skip_until = time.monotonic() + RETRY_AFTER_SECONDS
        log.warning(
            "cache %s failed; answering from PostgreSQL",
            what,
            extra={"error": str(exc), "retry_after": RETRY_AFTER_SECONDS},
        )


def _tenant(value: bytes | None) -> str | None:
    """The tenant in a key's entry; a tombstone (changed lately: PostgreSQL decides) is none."""
    if value is not None and bytes(value) == TOMBSTONE:
        value = None
    metrics.get().cache_lookups.labels("api_key", "miss" if value is None else "hit").inc()
    return None if value is None else bytes(value).decode()


def _lookup(file_id: uuid.UUID, raw: bytes | None, guard: bytes | None) -> Lookup:
    noted = guard.decode() if guard is not None else ""
    metrics.get().cache_lookups.labels("file", "miss" if raw is None else "hit").inc()
    if raw is None:
        return Lookup(guard=noted)
    file = CachedFile.decode(raw)
    if file is None:
        log.warning("unreadable cache entry ignored", extra={"file_id": str(file_id)})
    return Lookup(file=file, guard=noted)
