"""Telling every process at once that an API key stopped working (or soon will).

PostgreSQL is the truth about a key (``filepipe.auth``), but two kinds of process remember keys
past the moment they checked them, and both hear of a change through Redis:

- the query function caches a key's tenant under ``api_key_entry(key_hash)`` for at most
  ``KEY_CACHE_SECONDS`` (and never past the key's expiry). ``forget_api_key`` replaces the
  entry with a *tombstone* (an empty value) for as long as an entry may live; the cache stores
  with ``SET NX``, so a reader that checked PostgreSQL just before the revocation committed
  can't put the key back afterwards, and a tombstone reads as a miss (PostgreSQL then refuses).
- each WebSocket gateway keeps connections opened with a key; it listens on ``CHANNEL``
  (``filepipe:keys:revoked``) for JSON messages ``{"key_id": "<uuid>", "ends_in": <seconds>}``
  and closes that key's connections (code 4401) at once when ``ends_in`` is 0, or when the
  rest of a rotation's grace period has run out.

``announce`` does both, after the change is committed. Pub/sub keeps nothing, so a gateway
that was disconnected from Redis re-checks its connections' keys in PostgreSQL when it
subscribes again.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from filepipe.errors import DependencyError

log = logging.getLogger(__name__)

CHANNEL = "filepipe:keys:revoked"
KEY_CACHE_SECONDS = 60.0
"""The longest a key's tenant may be cached; a tombstone lives that long too."""
TOMBSTONE = b""
"""What a forgotten key's cache entry holds (no tenant name is empty)."""
_ENTRY_PREFIX = "filepipe:apikey:v1:"


class RedisWriter(Protocol):
    """The part of ``redis.Redis`` that announcing a revocation uses."""

    def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> Any: ...

    def publish(self, channel: Any, message: Any) -> Any: ...


class AnnouncementFailed(DependencyError):
    """Redis could not be told; the change stands in PostgreSQL but may take effect late."""


@dataclass(frozen=True)
class Revocation:
    """A message on ``CHANNEL``: the key ``key_id`` stops working in ``ends_in`` seconds."""

    key_id: str
    ends_in: float = 0.0

    def encode(self) -> str:
        return json.dumps({"key_id": self.key_id, "ends_in": self.ends_in})

    @classmethod
    def decode(cls, data: str | bytes) -> Revocation | None:
        """The message in ``data``, or ``None`` if it is not one."""
        try:
            body = json.loads(data)
            key_id = str(uuid.UUID(body["key_id"]))
            ends_in = float(body.get("ends_in", 0.0))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not math.isfinite(ends_in):
            return None
        return cls(key_id, max(ends_in, 0.0))


def api_key_entry(key_hash: bytes) -> str:
    """The Redis key of a key's cached tenant: named by the hash PostgreSQL stores, not the key."""
    return f"{_ENTRY_PREFIX}{key_hash.hex()}"


def forget_api_key(redis: RedisWriter, key_hash: bytes) -> None:
    """Replace the key's cached tenant with a tombstone; call right after committing a change
    to the key. Never raises (a failure is logged; the entry then lives out its TTL)."""
    try:
        _tombstone(redis, key_hash)
    except RedisError as exc:
        log.error("cached key not forgotten; it expires with its TTL", extra={"error": str(exc)})


def announce(redis: RedisWriter, key_id: uuid.UUID, key_hash: bytes, ends_in: float = 0.0) -> int:
    """Forget the key's cached tenant and tell the gateways; how many gateways heard it.

    Raises ``AnnouncementFailed`` when Redis can't be reached: the caller should say so (and
    may simply announce again; announcing is idempotent).
    """
    try:
        _tombstone(redis, key_hash)
        heard = redis.publish(CHANNEL, Revocation(str(key_id), ends_in).encode())
    except RedisError as exc:
        raise AnnouncementFailed(f"cannot reach Redis to announce the change: {exc}") from exc
    return int(heard)


def _tombstone(redis: RedisWriter, key_hash: bytes) -> None:
    redis.set(api_key_entry(key_hash), TOMBSTONE, px=int(KEY_CACHE_SECONDS * 1000))
