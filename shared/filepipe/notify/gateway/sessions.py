"""Which connections a gateway holds, by tenant and by API key: the per-tenant cap, and ending
the connections of a key that is revoked or expires.

A connection is registered from the moment its key is accepted (before ``101``, so that two
handshakes racing past the cap can't both get in) until its handler ends. ``admit`` refuses a
tenant's connection beyond the cap (429). ``end_key`` ends every connection of a key, at once
or after a delay (the rest of a rotation's grace period); a connection also ends when its key
expires, as the handshake learned. Ending sets the subscriber's ``ended`` event; the connection
handler then closes with 4401.

A key ended lately is remembered (``REMEMBER_SECONDS`` past its end), so a handshake that
checked PostgreSQL just before the revocation committed, and registers just after the message
arrived, is refused as well: both happen on this event loop, one after the other.
"""

from __future__ import annotations

import asyncio

from filepipe.errors import Unauthorized
from filepipe.notify.gateway.handshake import TooManyConnections
from filepipe.notify.gateway.hub import Subscriber

REMEMBER_SECONDS = 300.0
REVOKED = "API key revoked"
EXPIRED = "API key expired"
TOKEN_EXPIRED = "upload token expired"  # noqa: S105 - a reason, not a secret


class Sessions:
    """The connections of one gateway process; used on its event loop only."""

    def __init__(self, max_per_tenant: int) -> None:
        self.max_per_tenant = max_per_tenant
        self._tenants: dict[str, set[Subscriber]] = {}
        self._keys: dict[str, set[Subscriber]] = {}
        self._deadlines: dict[Subscriber, tuple[float, asyncio.TimerHandle]] = {}
        self._ended: dict[str, tuple[float, str]] = {}
        """Key id → (loop time it ends or ended, why), for ``REMEMBER_SECONDS`` past that."""

    def count(self, tenant: str) -> int:
        """The tenant's live connections (those that closed before their handler ran dropped)."""
        subscribers = self._tenants.get(tenant, set())
        for subscriber in [s for s in subscribers if s.is_gone()]:
            self.leave(subscriber)
        return len(self._tenants.get(tenant, ()))

    def key_ids(self) -> list[str]:
        """The keys that hold connections here."""
        return list(self._keys)

    def admit(
        self, subscriber: Subscriber, expires_in: float | None, expiry: str = EXPIRED
    ) -> None:
        """Register a client whose key PostgreSQL accepted (or whose upload token checked) and
        whose credential expires in ``expires_in`` seconds (``None``: never; then it ends with
        ``expiry``); ``TooManyConnections`` over the tenant's cap, ``Unauthorized`` if the key
        was revoked since it was checked."""
        now = _loop().time()
        self._forget_old(now)
        ended = self._ended.get(subscriber.key_id) if subscriber.key_id else None
        if ended is not None and ended[0] <= now:
            raise Unauthorized("invalid API key")
        if self.count(subscriber.tenant) >= self.max_per_tenant:
            raise TooManyConnections(
                f"this tenant already holds {self.max_per_tenant} WebSocket connections here;"
                " close one, then retry"
            )
        self._tenants.setdefault(subscriber.tenant, set()).add(subscriber)
        if subscriber.key_id:
            self._keys.setdefault(subscriber.key_id, set()).add(subscriber)
        if expires_in is not None:
            self._end_at(subscriber, now + expires_in, expiry)
        if ended is not None:
            self._end_at(subscriber, *ended)

    def leave(self, subscriber: Subscriber) -> None:
        """Forget a client (its handler ended, or its handshake failed); idempotent."""
        for index, name in ((self._tenants, subscriber.tenant), (self._keys, subscriber.key_id)):
            if name is None or name not in index:
                continue
            index[name].discard(subscriber)
            if not index[name]:
                del index[name]
        deadline = self._deadlines.pop(subscriber, None)
        if deadline is not None:
            deadline[1].cancel()

    def end_key(self, key_id: str, ends_in: float = 0.0, reason: str = REVOKED) -> int:
        """End the connections of ``key_id`` in ``ends_in`` seconds (0: now), and refuse the
        key's handshakes from then on; how many connections it holds."""
        now = _loop().time()
        self._forget_old(now)
        at = now + max(ends_in, 0.0)
        known = self._ended.get(key_id)
        if known is None or at < known[0]:
            self._ended[key_id] = (at, reason)
        subscribers = list(self._keys.get(key_id, ()))
        for subscriber in subscribers:
            self._end_at(subscriber, at, reason)
        return len(subscribers)

    def _end_at(self, subscriber: Subscriber, at: float, reason: str) -> None:
        """End ``subscriber`` at loop time ``at``, unless it is due to end sooner."""
        loop = _loop()
        current = self._deadlines.get(subscriber)
        if current is not None:
            if current[0] <= at:
                return
            current[1].cancel()
        if at <= loop.time():
            self._deadlines.pop(subscriber, None)
            subscriber.end(reason)
            return
        self._deadlines[subscriber] = (at, loop.call_at(at, subscriber.end, reason))

    def _forget_old(self, now: float) -> None:
        for key_id, (at, _) in list(self._ended.items()):
            if at + REMEMBER_SECONDS < now:
                del self._ended[key_id]


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
