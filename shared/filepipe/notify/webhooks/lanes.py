"""Per-endpoint lanes: how many webhook attempts each endpoint has in flight in this process.

A receiver that answers slowly (or trickles until the attempt's deadline) must hold up only its
own deliveries. So every attempt runs in one of its endpoint's slots, at most
``webhook_endpoint_concurrency`` per endpoint and process, and a row is only claimed for an
endpoint with a free slot: the claim passes the saturated endpoints to PostgreSQL, which skips
their rows (``FOR UPDATE SKIP LOCKED`` with an endpoint filter) and hands out another endpoint's
instead. Claiming and taking the slot happen under one lock, so two threads of the process can't
both take an endpoint's last slot. Other processes have slots of their own: the limit is per
process, as the setting says.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Protocol, TypeVar


class ForEndpoint(Protocol):
    @property
    def endpoint_id(self) -> uuid.UUID: ...


C = TypeVar("C", bound=ForEndpoint)


class EndpointSlots:
    """The attempts in flight per endpoint; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: Counter[uuid.UUID] = Counter()

    def take(self, per_endpoint: int, claim: Callable[[list[uuid.UUID]], C | None]) -> C | None:
        """Call ``claim`` with the endpoints that have ``per_endpoint`` attempts in flight (to be
        skipped); hold a slot of the endpoint of what it returns, which ``release`` frees."""
        with self._lock:
            saturated = [e for e, count in self._in_flight.items() if count >= per_endpoint]
            claimed = claim(saturated)
            if claimed is not None:
                self._in_flight[claimed.endpoint_id] += 1
            return claimed

    def release(self, endpoint_id: uuid.UUID) -> None:
        with self._lock:
            self._in_flight[endpoint_id] -= 1
            if self._in_flight[endpoint_id] <= 0:
                del self._in_flight[endpoint_id]


SLOTS = EndpointSlots()
"""This process's slots, shared by every notify call it serves."""
