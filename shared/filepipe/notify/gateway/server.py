"""The WebSocket gateway server: handshake, per-client sending, the Redis reader, start-up.

One pattern subscription (``PSUBSCRIBE filepipe:events:*``) per gateway process feeds the hub,
rather than one ``SUBSCRIBE`` per tenant: Redis state stays constant as clients come and go, a
reconnect re-subscribes one pattern, and the subscription is live before the gateway listens, so
a client gets every event published after its handshake. The cost is that each gateway replica
receives (and discards) events of tenants it has no client for, cheap at one small message per
file state change.

A client may connect with an upload token instead of an API key (``filepipe.upload_tokens``,
checked without PostgreSQL): it gets only the events of the files made with that token
(``hub``), and is closed with ``CLOSE_KEY_ENDED`` when the token expires.

The same connection subscribes to ``filepipe:keys:revoked`` (``filepipe.revocation``): a
revoked key's connections are closed with ``CLOSE_KEY_ENDED`` (4401) at once, an expiring
key's when it expires. Messages sent while the subscription was down are lost, so on every
re-subscription the gateway re-checks its connections' keys in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import time
import uuid
import weakref
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import redis.asyncio
from psycopg_pool import ConnectionPool
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State

from filepipe import health, metrics, revocation, telemetry, upload_tokens
from filepipe.auth import Credential, active_keys, identify
from filepipe.config import Settings
from filepipe.db import create_pool
from filepipe.errors import ProblemError, ServiceUnavailable
from filepipe.notify import realtime
from filepipe.notify.gateway import handshake
from filepipe.notify.gateway.hub import Hub, Subscriber
from filepipe.notify.gateway.sessions import EXPIRED, TOKEN_EXPIRED, Sessions
from filepipe.origins import AllowedOrigins
from filepipe.runtime import start

log = logging.getLogger(__name__)

DEFAULT_PORT = 8086
MAX_INCOMING_BYTES = 4096
"""Clients have nothing to say; a larger message closes the connection (1009)."""
CLOSE_TIMEOUT = 10.0
CLOSE_KEY_ENDED = 4401
"""Close code for a connection whose API key was revoked or expired (4000-4999 are private
use; 4401 echoes HTTP 401): reconnecting with the same key will be refused."""
REDIS_IDLE_PING = 15.0
"""Seconds without a Redis message after which the reader pings; no answer in twice that means
the connection is dead even if the socket hasn't noticed."""
BACKOFF_FIRST, BACKOFF_MAX = 0.2, 30.0
STARTUP_REDIS_WAIT = 5.0


@dataclass(frozen=True)
class _Caller:
    """Who opens a connection, and when and why it must end."""

    tenant: str
    expires_in: float | None
    expiry: str
    key_id: str | None = None
    upload_token_id: str | None = None


class Gateway:
    """Authenticates WebSocket clients and relays their tenant's events from Redis."""

    def __init__(self, settings: Settings, pool: ConnectionPool[Any]) -> None:
        self.settings = settings
        self.pool = pool
        self.hub = Hub()
        self.sessions = Sessions(settings.gateway_max_connections_per_tenant)
        self.allowed_origins = AllowedOrigins(settings.allowed_origins)
        self.redis_ready = asyncio.Event()
        self._accepted: weakref.WeakKeyDictionary[ServerConnection, Subscriber] = (
            weakref.WeakKeyDictionary()
        )
        self._background: set[asyncio.Task[None]] = set()

    # -- handshake -------------------------------------------------------------------------

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Refuse the upgrade with 404/403/401/400/429/503, or remember who is connecting."""
        path = handshake.route(request.path)
        if path == handshake.HEALTH_PATH:
            return handshake.json_response(200, self.health())
        if path == health.READINESS_PATH:
            readiness = await asyncio.to_thread(health.check, self.probes())
            return handshake.json_response(readiness.status_code, readiness.body)
        try:
            if path != handshake.WS_PATH:
                raise handshake.not_found(path)
            handshake.check_origin(request.headers, self.allowed_origins)
            wanted = handshake.parse(request.path, request.headers)
            caller = await self._identify(wanted.token)
            link = weakref.ref(connection)  # a strong reference would pin the weak-keyed entry
            subscriber = Subscriber(
                tenant=caller.tenant,
                file_id=wanted.file_id,
                queue_size=self.settings.gateway_queue_size,
                is_gone=lambda: (peer := link()) is None or peer.state is State.CLOSED,
                key_id=caller.key_id,
                upload_token_id=caller.upload_token_id,
            )
            self.sessions.admit(subscriber, caller.expires_in, caller.expiry)
        except ProblemError as exc:
            log.info("handshake refused", extra={"path": path, "status": exc.status})
            return handshake.problem_response(exc, path)
        self._accepted[connection] = subscriber
        return None

    def process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        """Join the hub just before ``101`` goes out, so no event after the handshake is missed."""
        subscriber = self._accepted.get(connection)
        if subscriber is None:
            return
        if response.status_code == 101:
            self.hub.add(subscriber)
        else:  # websockets refused the upgrade itself (not a valid WebSocket request)
            self.sessions.leave(subscriber)

    async def _identify(self, bearer: str) -> _Caller:
        """Who an API key (checked in PostgreSQL) or an upload token (by its signature) is."""
        if upload_tokens.is_upload_token(bearer):
            token = upload_tokens.decode(bearer, self.settings.upload_token_secrets)
            return _Caller(
                token.tenant, token.expires_in(), TOKEN_EXPIRED, upload_token_id=str(token.id)
            )
        credential = await self._authenticate(bearer)
        return _Caller(
            credential.tenant, credential.expires_in, EXPIRED, key_id=str(credential.key_id)
        )

    async def _authenticate(self, token: str) -> Credential:
        try:
            return await asyncio.to_thread(identify, self.pool, token)
        except psycopg.Error as exc:
            log.warning("cannot check an API key", extra={"error": str(exc)})
            raise ServiceUnavailable("cannot check the API key right now; retry later") from exc

    def probes(self) -> dict[str, health.Probe]:
        """``/readyz``: PostgreSQL answers a query; Redis: the event subscription is live."""

        def subscribed() -> None:
            if not self.redis_ready.is_set():
                raise ConnectionError("not subscribed to Redis")

        return {"postgres": lambda: health.postgres(self.pool), "redis": subscribed}

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "redis": "connected" if self.redis_ready.is_set() else "disconnected",
            "connections": len(self.hub),
        }

    # -- one client ------------------------------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        """Send the client its events until it leaves, falls behind, its key is revoked or
        expires (closed with 4401), or the server stops."""
        subscriber = self._accepted.pop(connection, None)
        if subscriber is None:  # pragma: no cover - process_request always registers first
            return
        log.info(
            "WebSocket client connected",
            extra={"tenant": subscriber.tenant, "file_id": subscriber.file_id},
        )
        tasks = [
            asyncio.create_task(_send_events(connection, subscriber)),
            asyncio.create_task(_discard_incoming(connection)),
            asyncio.create_task(subscriber.overflowed.wait()),
            asyncio.create_task(subscriber.ended.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.hub.discard(subscriber)
            self.sessions.leave(subscriber)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if tasks[3] in done:
            log.info(
                "closing a WebSocket client whose key stopped working",
                extra={
                    "tenant": subscriber.tenant,
                    "key_id": subscriber.key_id,
                    "reason": subscriber.end_reason,
                },
            )
            await _close(connection, CLOSE_KEY_ENDED, subscriber.end_reason)
        elif tasks[2] in done:
            await _close(connection, CloseCode.TRY_AGAIN_LATER, "too slow; reconnect and resync")
        log.info(
            "WebSocket client disconnected",
            extra={"tenant": subscriber.tenant, "code": connection.close_code},
        )

    # -- Redis -----------------------------------------------------------------------------

    async def read_redis(self) -> None:
        """Relay every tenant's events to the hub; reconnect with backoff, forever."""
        backoff = BACKOFF_FIRST
        while True:
            try:
                await self._relay_once()
            except (RedisError, OSError) as exc:
                log.warning(
                    "Redis subscription lost, reconnecting",
                    extra={"error": str(exc), "retry_in": backoff},
                )
            if self.redis_ready.is_set():
                backoff = BACKOFF_FIRST
            self.redis_ready.clear()
            await asyncio.sleep(backoff)  # reconnect backoff, not synchronisation
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def _relay_once(self) -> None:
        client = redis.asyncio.Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=2,
            socket_keepalive=True,
            client_name=f"filepipe-gateway-{os.getpid()}",
        )
        async with client, client.pubsub() as pubsub:
            # In this order: the revocations are heard before the gateway counts as ready.
            await pubsub.subscribe(revocation.CHANNEL)
            await pubsub.psubscribe(realtime.CHANNEL_PATTERN)
            heard, pinged = time.monotonic(), False
            while True:
                message = await pubsub.get_message(timeout=1.0)
                now = time.monotonic()
                if message is None:
                    if now - heard > 2 * REDIS_IDLE_PING:
                        raise ConnectionError("Redis stopped answering pings")
                    if now - heard > REDIS_IDLE_PING and not pinged:
                        await pubsub.ping()
                        pinged = True
                    continue
                heard, pinged = now, False
                self._on_message(message)
                # Buffered messages don't suspend get_message(): yield so that the senders
                # drain their queues between two events of a burst.
                await asyncio.sleep(0)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "psubscribe":
            self.redis_ready.set()
            log.info("subscribed to Redis", extra={"pattern": realtime.CHANNEL_PATTERN})
            return
        if kind == "subscribe":
            self._in_background(self.recheck_keys())  # revocations may have been missed
            return
        if kind == "message":
            if _text(message["channel"]) == revocation.CHANNEL:
                self._on_revocation(message["data"])
            return
        if kind != "pmessage":
            return
        tenant = realtime.tenant_of(message["channel"])
        data = message["data"]
        try:
            text = data.decode() if isinstance(data, bytes) else str(data)
        except UnicodeDecodeError:
            log.warning("non-UTF-8 event on Redis dropped", extra={"tenant": tenant})
            return
        if tenant is not None:
            attributes = {"filepipe.tenant": tenant}
            with telemetry.span_from("gateway dispatch", _traceparent(text), attributes=attributes):
                self.hub.dispatch(tenant, text)

    def _on_revocation(self, data: bytes | str) -> None:
        ended = revocation.Revocation.decode(data)
        if ended is None:
            log.warning("unreadable key revocation ignored")
            return
        held = self.sessions.end_key(ended.key_id, ended.ends_in)
        if held:
            log.info(
                "API key revoked; ending its connections",
                extra={"key_id": ended.key_id, "connections": held, "ends_in": ended.ends_in},
            )

    async def recheck_keys(self) -> None:
        """End the connections whose key was revoked or shortened while Redis was unheard."""
        held = self.sessions.key_ids()
        if not held:
            return
        try:
            valid = await asyncio.to_thread(active_keys, self.pool, [uuid.UUID(k) for k in held])
        except psycopg.Error as exc:
            log.warning("cannot re-check the connections' keys", extra={"error": str(exc)})
            return
        for key_id in held:
            if uuid.UUID(key_id) not in valid:
                self.sessions.end_key(key_id)
            elif (expires_in := valid[uuid.UUID(key_id)]) is not None:
                self.sessions.end_key(key_id, expires_in, EXPIRED)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)  # a task nobody references may be collected mid-way
        task.add_done_callback(self._background.discard)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _traceparent(message: str) -> str | None:
    """The ``traceparent`` extension of a structured-mode CloudEvent, if it has one."""
    try:
        event = json.loads(message)
    except ValueError:
        return None
    value = event.get("traceparent") if isinstance(event, dict) else None
    return value if isinstance(value, str) else None


async def _send_events(connection: ServerConnection, subscriber: Subscriber) -> None:
    """Send queued events as text frames (structured CloudEvents JSON) until the link breaks
    or the client's key stops working."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            message = await subscriber.queue.get()
            if subscriber.ended.is_set():
                return
            await connection.send(message)


async def _discard_incoming(connection: ServerConnection) -> None:
    """Read (and ignore) what the client sends, so close frames and pongs are processed."""
    with contextlib.suppress(ConnectionClosed):
        async for _ in connection:
            pass


async def _close(connection: ServerConnection, code: int, reason: str) -> None:
    """Close a client (one that fell behind, or whose key ended); abort if even the close frame
    can't go out."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await connection.close(code, reason)
    except TimeoutError:
        connection.transport.abort()


async def run(settings: Settings, pool: ConnectionPool[Any], host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then close every connection (1001) and stop."""
    gateway = Gateway(settings, pool)
    reader = asyncio.create_task(gateway.read_redis())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            async with asyncio.timeout(STARTUP_REDIS_WAIT):
                await gateway.redis_ready.wait()
        except TimeoutError:
            log.warning("Redis not reachable yet; serving, events flow once it is")
        async with serve(
            gateway.handler,
            host,
            port,
            process_request=gateway.process_request,
            process_response=gateway.process_response,
            compression=None,
            max_size=MAX_INCOMING_BYTES,
            close_timeout=CLOSE_TIMEOUT,
        ):
            log.info("WebSocket gateway listening", extra={"host": host, "port": port})
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([stopping, reader], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            log.info("shutting down")
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader  # re-raises what killed the reader, if anything did


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m filepipe.notify.gateway [--host H] [--port P]``: argument > ``PORT`` > 8086."""
    parser = argparse.ArgumentParser(prog="python -m filepipe.notify.gateway", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container listens on all
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    settings = start("gateway")
    port = args.port if args.port is not None else settings.port or DEFAULT_PORT
    # websockets logs every connection with an object repr; ours says who connected and why.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.getLogger().level))
    metrics.serve(settings.metrics_port)
    pool = create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        checkout_timeout=settings.db_checkout_timeout,
        wait=False,
    )
    try:
        asyncio.run(run(settings, pool, args.host, port))
    finally:
        pool.close()
