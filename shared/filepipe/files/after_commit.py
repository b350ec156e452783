"""What follows a committed change to a file: drop its cached representation, then publish.

The order matters: a reader woken by the event must not find the old representation in Redis.
Neither step raises (both are retried by other means: the cache entry's TTL, the reconcile job).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from filepipe.events import Event
from filepipe.files import outbox
from filepipe.files.cache import invalidate

if TYPE_CHECKING:
    from filepipe.runtime import Runtime


def after_commit(
    rt: Runtime,
    file_id: uuid.UUID,
    event_ids: Iterable[str],
    *,
    recorded: Sequence[Event] = (),
) -> None:
    """Invalidate ``file_id``'s cache entry, then publish ``event_ids`` from the outbox and
    ``recorded``, events this process has just committed (published as they are, not read
    back)."""
    invalidate(rt.redis, file_id)
    outbox.publish(rt.pool, rt.publisher, event_ids)
    outbox.publish_events(rt.pool, rt.publisher, recorded)
