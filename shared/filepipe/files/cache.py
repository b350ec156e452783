"""The Redis keys of a file's cached API representation, and their invalidation.

The query function caches a file under ``filepipe:file:v1:{<id>}`` beside a *guard* counter
(``filepipe.query.cache`` reads and stores them). Every writer calls ``invalidate`` right after
committing a change: it bumps the guard and deletes the entry, so a reader that raced the change
cannot put the old row back (it stores only if the guard is unchanged).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

GUARD_TTL_SECONDS = 600
"""How long a guard counter outlives its last bump: far longer than any read takes."""
_FILE_PREFIX = "filepipe:file:v1:"


class Pipelining(Protocol):
    """The part of ``redis.Redis`` invalidation uses."""

    def pipeline(self, transaction: bool = True) -> Any: ...


def entry_key(file_id: uuid.UUID | str) -> str:
    """The cache key of a file (the braces keep entry and guard in one Redis Cluster slot)."""
    return f"{_FILE_PREFIX}{{{file_id}}}"


def guard_key(file_id: uuid.UUID | str) -> str:
    return f"{entry_key(file_id)}:guard"


def invalidate(redis: Pipelining, file_id: uuid.UUID | str) -> None:
    """Drop the file's cached representation; call right after committing a change. Never raises.

    An invalidation lost while Redis is down leaves an entry at most one cache TTL old.
    """
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
