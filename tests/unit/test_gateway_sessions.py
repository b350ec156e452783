"""The gateway's connections by tenant and key: the per-tenant cap, ending a key's connections
at once, later (a rotation's grace) or at its expiry, and handshakes racing a revocation.
Also the ``Origin`` check and the revocation messages the gateway reads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from websockets.datastructures import Headers

from filepipe.errors import Forbidden, Unauthorized
from filepipe.notify.gateway import handshake
from filepipe.notify.gateway.handshake import TooManyConnections
from filepipe.notify.gateway.hub import Hub, Subscriber
from filepipe.notify.gateway.sessions import EXPIRED, REVOKED, Sessions
from filepipe.revocation import Revocation

KEY_A, KEY_B = str(uuid.uuid4()), str(uuid.uuid4())


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def client(tenant: str = "acme", key_id: str = KEY_A, gone: bool = False) -> Subscriber:
    return Subscriber(tenant, None, queue_size=4, key_id=key_id, is_gone=lambda: gone)


def test_a_tenant_is_capped_and_a_freed_place_is_given_again() -> None:
    async def scenario() -> None:
        sessions = Sessions(max_per_tenant=2)
        first, second = client(), client()
        sessions.admit(first, None)
        sessions.admit(second, None)
        with pytest.raises(TooManyConnections) as refused:
            sessions.admit(client(), None)
        assert refused.value.status == 429
        sessions.admit(client("globex"), None)  # another tenant has its own places
        sessions.leave(first)
        sessions.leave(first)  # idempotent
        sessions.admit(client(), None)
        assert sessions.count("acme") == 2

    run(scenario)


def test_connections_that_closed_before_their_handler_ran_free_their_place() -> None:
    async def scenario() -> None:
        sessions = Sessions(max_per_tenant=1)
        sessions.admit(client(gone=True), None)
        sessions.admit(client(), None)
        assert sessions.count("acme") == 1

    run(scenario)


def test_revoking_a_key_ends_its_connections_only() -> None:
    async def scenario() -> None:
        sessions = Sessions(max_per_tenant=10)
        mine, also_mine, other = client(), client(), client(key_id=KEY_B)
        for subscriber in (mine, also_mine, other):
            sessions.admit(subscriber, None)
        assert sessions.end_key(KEY_A) == 2
        assert mine.ended.is_set() and also_mine.ended.is_set()
        assert mine.end_reason == REVOKED
        assert not other.ended.is_set()
        assert sessions.end_key(str(uuid.uuid4())) == 0

    run(scenario)


def test_a_handshake_that_raced_a_revocation_is_refused() -> None:
    async def scenario() -> None:
        sessions = Sessions(max_per_tenant=10)
        sessions.end_key(KEY_A)  # the message arrived while PostgreSQL was being asked
        with pytest.raises(Unauthorized):
            sessions.admit(client(), None)
        assert sessions.count("acme") == 0

    run(scenario)


def test_a_grace_period_ends_connections_later_and_a_revocation_cuts_it_short() -> None:
    async def scenario() -> None:
        sessions = Sessions(max_per_tenant=10)
        early, late = client(), client()
        sessions.admit(early, None)
        sessions.end_key(KEY_A, ends_in=0.05)
        sessions.admit(late, None)  # during the grace: admitted, but ends with the others
        assert not early.ended.is_set()
        await asyncio.wait_for(asyncio.gather(early.ended.wait(), late.ended.wait()), 2)
        assert late.end_reason == REVOKED

        waiting = client(key_id=KEY_B)
        sessions.admit(waiting, None)
        sessions.end_key(KEY_B, ends_in=3600)
        sessions.end_key(KEY_B, ends_in=0)
        assert waiting.ended.is_set()

    run(scenario)


def test_a_connection_ends_when_its_key_expires() -> None:
    async def scenario() -> None:
        sessions = Sessions(max_per_tenant=10)
        expiring, leaving = client(), client(key_id=KEY_B)
        sessions.admit(expiring, 0.05)
        sessions.admit(leaving, 0.05)
        sessions.leave(leaving)  # its timer goes with it
        await asyncio.wait_for(expiring.ended.wait(), 2)
        assert expiring.end_reason == EXPIRED
        await asyncio.sleep(0.1)  # the cancelled timer's moment passes: nothing happens
        assert not leaving.ended.is_set()

    run(scenario)


def test_the_hub_stops_delivering_to_an_ended_client() -> None:
    hub = Hub()
    ended, live = client(), client(key_id=KEY_B)
    hub.add(ended)
    hub.add(live)
    ended.end(REVOKED)
    ended.end(EXPIRED)  # the first reason stays
    assert hub.dispatch("acme", '{"subject": "x"}') == 1
    assert ended.queue.empty() and ended.end_reason == REVOKED


@pytest.mark.parametrize(
    ("origins", "allowed", "ok"),
    [
        ([], {"https://app.example.com"}, True),
        (["https://app.example.com"], {"https://app.example.com"}, True),
        (["HTTPS://APP.example.com"], {"https://app.example.com"}, True),
        (["https://evil.example"], {"https://app.example.com"}, False),
        (["https://evil.example"], set(), False),
        (["https://evil.example"], {"*"}, True),
        (["null"], {"https://app.example.com"}, False),
        (["https://app.example.com", "https://evil.example"], {"https://app.example.com"}, False),
    ],
)
def test_origin_check(origins: list[str], allowed: set[str], ok: bool) -> None:
    headers = Headers([("Origin", origin) for origin in origins])
    if ok:
        handshake.check_origin(headers, allowed)
    else:
        with pytest.raises(Forbidden):
            handshake.check_origin(headers, allowed)


def test_revocation_messages() -> None:
    key_id = str(uuid.uuid4())
    message = Revocation(key_id, 30.0).encode()
    assert Revocation.decode(message) == Revocation(key_id, 30.0)
    assert Revocation.decode(message.encode()) == Revocation(key_id, 30.0)
    assert Revocation.decode(f'{{"key_id": "{key_id.upper()}"}}') == Revocation(key_id, 0.0)
    assert Revocation.decode(f'{{"key_id": "{key_id}", "ends_in": -3}}') == Revocation(key_id)
    for bad in ("", "nope", "[]", '{"key_id": "x"}', f'{{"key_id": "{key_id}", "ends_in": "NaN"}}'):
        assert Revocation.decode(bad) is None, bad
