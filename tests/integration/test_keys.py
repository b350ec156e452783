"""The API-key lifecycle end to end: the real ``filepipe`` CLI as a process, the query function
(Flask test client, with its Redis key cache), a real gateway process, PostgreSQL and Redis.

Revoking, rotating and expiring a key take effect at once: the next request is a 401 even when
the query function had cached the key, and the key's open WebSockets are closed with 4401
while another key's stay open.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis
from flask.testing import FlaskClient
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from filepipe import auth
from filepipe.db import create_pool
from filepipe.notify import realtime
from filepipe.query.cache import api_key_entry
from tests.integration.test_gateway import event, receive
from tests.support.cli import filepipe_cli, last_line
from tests.support.files import add_file
from tests.support.functions import function_app
from tests.support.processes import running
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
CLOSE_DEADLINE = 5.0
"""Seconds within which a revoked key's WebSocket must be closed."""


@pytest.fixture(scope="module")
def gateway_process(service_env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The gateway's address and process id."""
    port = free_port()
    env = {**service_env, "FILEPIPE_REDIS_URL": "redis://127.0.0.1:6379/0"}
    args = ["-m", "filepipe.notify.gateway", "--host", "127.0.0.1", "--port", str(port)]
    with running(args, port=port, env=env) as proc:
        yield f"127.0.0.1:{port}", proc.pid


@pytest.fixture
def gateway(gateway_process: tuple[str, int]) -> str:
    return gateway_process[0]


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    client.close()


@pytest.fixture
def query(function_env: dict[str, str]) -> FlaskClient:
    return function_app("query").test_client()


@pytest.fixture
def tenant() -> str:
    return f"keys-{uuid.uuid4().hex[:12]}"


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return filepipe_cli(env, *args, check=check)


def new_key(env: dict[str, str], tenant: str, *options: str) -> tuple[str, str]:
    """A key made by ``create-key``, and its id."""
    key = last_line(cli(env, "create-key", "--tenant", tenant, *options))
    listed = {row["prefix"]: row["id"] for row in list_keys(env, tenant)}
    return key, listed[key[: auth.PREFIX_LENGTH]]


def list_keys(env: dict[str, str], tenant: str) -> list[dict[str, Any]]:
    return list(json.loads(cli(env, "list-keys", "--tenant", tenant, "--json").stdout))


def get(query: FlaskClient, key: str, file_id: uuid.UUID) -> int:
    response = query.get(f"/files/{file_id}", headers={"Authorization": f"Bearer {key}"})
    return int(response.status_code)


def open_ws(gateway: str, key: str) -> ClientConnection:
    return connect(f"ws://{gateway}/ws?token={key}")


def assert_closed_with_4401(ws: ClientConnection, within: float = CLOSE_DEADLINE) -> str:
    """The gateway closes ``ws`` with 4401 within ``within`` seconds; the close reason."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=within)
    assert closed.value.rcvd is not None, "closed without a close frame"
    assert closed.value.rcvd.code == 4401
    return closed.value.rcvd.reason


def assert_refused(gateway: str, key: str, status: int = 401) -> None:
    with pytest.raises(InvalidStatus) as refused:
        open_ws(gateway, key)
    assert refused.value.response.status_code == status


def assert_open(ws: ClientConnection, redis_client: redis.Redis, tenant: str) -> None:
    sent = event(tenant)
    realtime.publish(redis_client, sent)
    assert receive(ws)["id"] == sent["id"]


def test_revocation_takes_effect_at_once_everywhere(
    service_env: dict[str, str],
    conn: Conn,
    query: FlaskClient,
    gateway: str,
    redis_client: redis.Redis,
    tenant: str,
) -> None:
    revoked, revoked_id = new_key(service_env, tenant, "--name", "laptop")
    kept, _ = new_key(service_env, tenant)
    file_id = add_file(conn, tenant)["id"]
    assert get(query, revoked, file_id) == 200
    assert redis_client.get(api_key_entry(auth.hash_key(revoked))) == tenant.encode()

    with open_ws(gateway, revoked) as doomed, open_ws(gateway, kept) as survivor:
        prefix = revoked[: auth.PREFIX_LENGTH]
        result = cli(service_env, "revoke-key", prefix)
        assert revoked_id in result.stdout and "revoked" in result.stdout
        assert get(query, revoked, file_id) == 401  # at once, although it was cached
        assert assert_closed_with_4401(doomed) == "API key revoked"
        assert_open(survivor, redis_client, tenant)
        assert get(query, kept, file_id) == 200
    assert_refused(gateway, revoked)

    (row,) = [row for row in list_keys(service_env, tenant) if row["id"] == revoked_id]
    assert row["status"] == "revoked" and row["revoked_at"] is not None
    assert row["name"] == "laptop"
    again = cli(service_env, "revoke-key", revoked_id)
    assert "already revoked" in again.stdout


def test_an_expired_key_is_refused_and_its_websocket_closed(
    service_env: dict[str, str],
    conn: Conn,
    query: FlaskClient,
    gateway: str,
    redis_client: redis.Redis,
    tenant: str,
) -> None:
    key, key_id = new_key(service_env, tenant, "--expires-in", "3s")
    file_id = add_file(conn, tenant)["id"]
    assert get(query, key, file_id) == 200  # and cached, for less than its remaining life
    assert 0 < redis_client.pttl(api_key_entry(auth.hash_key(key))) <= 3000
    with open_ws(gateway, key) as ws:
        assert assert_closed_with_4401(ws, within=3 + CLOSE_DEADLINE) == "API key expired"
    assert get(query, key, file_id) == 401
    assert_refused(gateway, key)
    (row,) = list_keys(service_env, tenant)
    assert (row["id"], row["status"]) == (key_id, "expired")


def test_an_expiry_in_the_past_or_a_bad_duration_is_refused(
    service_env: dict[str, str], tenant: str
) -> None:
    past = cli(
        service_env, "create-key", "--tenant", tenant, "--expires-at", "2001-01-01T00:00:00Z",
        check=False,
    )  # fmt: skip
    assert past.returncode == 1 and "has passed" in past.stderr
    for bad in ("0", "soon", "-5s"):
        refused = cli(
            service_env, "create-key", "--tenant", tenant, "--expires-in", bad, check=False
        )
        assert refused.returncode == 2, bad  # argparse's usage error
    naive = cli(
        service_env, "create-key", "--tenant", tenant, "--expires-at", "2031-01-01T00:00:00",
        check=False,
    )  # fmt: skip
    assert naive.returncode == 2 and "offset" in naive.stderr
    assert list_keys(service_env, tenant) == []


def test_rotation_with_grace(
    service_env: dict[str, str],
    conn: Conn,
    query: FlaskClient,
    gateway: str,
    redis_client: redis.Redis,
    tenant: str,
) -> None:
    old, old_id = new_key(service_env, tenant, "--name", "ci", "--expires-in", "30d")
    file_id = add_file(conn, tenant)["id"]
    assert get(query, old, file_id) == 200
    with open_ws(gateway, old) as ws:
        started = time.monotonic()
        result = cli(service_env, "rotate-key", old_id, "--grace", "4s")
        new = last_line(result)
        assert new.startswith("fpk_") and new != old
        assert get(query, new, file_id) == 200
        assert get(query, old, file_id) == 200  # during the grace period
        assert_open(ws, redis_client, tenant)
        assert assert_closed_with_4401(ws, within=4 + CLOSE_DEADLINE) == "API key revoked"
        assert time.monotonic() - started > 3  # not before the grace ran out
    assert get(query, old, file_id) == 401
    assert_refused(gateway, old)
    assert get(query, new, file_id) == 200

    rows = {row["id"]: row for row in list_keys(service_env, tenant)}
    assert rows[old_id]["status"] == "expired" and rows[old_id]["revoked_at"] is None
    (new_row,) = [row for row in rows.values() if row["id"] != old_id]
    assert new_row["name"] == "ci" and new_row["status"] == "active"
    expires = datetime.fromisoformat(new_row["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)


def test_rotation_without_grace_revokes_the_old_key_now(
    service_env: dict[str, str],
    conn: Conn,
    query: FlaskClient,
    gateway: str,
    redis_client: redis.Redis,
    tenant: str,
) -> None:
    old, old_id = new_key(service_env, tenant)
    file_id = add_file(conn, tenant)["id"]
    assert get(query, old, file_id) == 200
    with open_ws(gateway, old) as ws:
        new = last_line(cli(service_env, "rotate-key", old[: auth.PREFIX_LENGTH]))
        assert get(query, old, file_id) == 401
        assert assert_closed_with_4401(ws) == "API key revoked"
    with open_ws(gateway, new) as ws:
        assert_open(ws, redis_client, tenant)
    refused = cli(service_env, "rotate-key", old_id, check=False)
    assert refused.returncode == 1 and "revoked" in refused.stderr


def test_list_keys_shows_every_column_and_never_a_key(
    service_env: dict[str, str], conn: Conn, query: FlaskClient, tenant: str
) -> None:
    used, used_id = new_key(service_env, tenant, "--name", "build server")
    unused, _ = new_key(service_env, tenant, "--expires-at", "2031-05-01T12:00:00+02:00")
    assert get(query, used, add_file(conn, tenant)["id"]) == 200

    rows = list_keys(service_env, tenant)
    assert [set(row) for row in rows] == [
        {
            "id", "tenant", "prefix", "name", "created_at", "last_used_at", "expires_at",
            "revoked_at", "status",
        }
    ] * 2  # fmt: skip
    first, second = rows
    assert (first["id"], first["name"], first["status"]) == (used_id, "build server", "active")
    assert first["last_used_at"] is not None and second["last_used_at"] is None
    assert second["expires_at"] == "2031-05-01T10:00:00Z"
    assert {first["tenant"], second["tenant"]} == {tenant}

    table = cli(service_env, "list-keys", "--tenant", tenant).stdout
    header, *lines = table.splitlines()
    assert header.split() == [
        "id", "tenant", "prefix", "name", "created", "last", "used", "expires", "revoked",
        "status",
    ]  # fmt: skip
    assert len(lines) == 2 and used_id in lines[0] and "build server" in lines[0]
    everything = cli(service_env, "list-keys").stdout
    for key in (used, unused):
        assert key[: auth.PREFIX_LENGTH] in table
        assert key not in table and key not in everything


def test_keys_are_named_by_id_or_prefix_never_by_the_key(
    service_env: dict[str, str], tenant: str
) -> None:
    key, _ = new_key(service_env, tenant)
    for reference, error in (
        (key, "never the key itself"),
        (str(uuid.uuid4()), "no API key"),
        ("nonsense", "neither a key id"),
    ):
        result = cli(service_env, "revoke-key", reference, check=False)
        assert result.returncode == 1 and error in result.stderr, reference
        assert key not in result.stdout + result.stderr
    assert list_keys(service_env, tenant)[0]["status"] == "active"


def test_a_revocation_missed_while_redis_was_away_is_caught_on_resubscribing(
    service_env: dict[str, str],
    conn: Conn,
    gateway_process: tuple[str, int],
    redis_client: redis.Redis,
    tenant: str,
) -> None:
    gateway, pid = gateway_process
    revoked, revoked_id = new_key(service_env, tenant)
    kept, _ = new_key(service_env, tenant)

    def subscription() -> int | None:
        for client in redis_client.client_list(_type="pubsub"):
            if client.get("name") == f"filepipe-gateway-{pid}" and client.get("sub") == "1":
                return int(client["id"])
        return None

    with open_ws(gateway, revoked) as doomed, open_ws(gateway, kept) as survivor:
        # Revoked in PostgreSQL without a word on Redis, as if the message had been lost.
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (revoked_id,))
        before = wait_until(subscription, what="the gateway's subscription")
        redis_client.client_kill_filter(_id=str(before))
        assert assert_closed_with_4401(doomed, within=10) == "API key revoked"

        def delivered() -> bool:  # once resubscribed for good (see test_gateway)
            sent = event(tenant)
            realtime.publish(redis_client, sent)
            try:
                while json.loads(survivor.recv(timeout=0.5))["id"] != sent["id"]:
                    pass
            except TimeoutError:
                return False
            return True

        wait_until(delivered, what="the other key's connection to get events")


def test_last_used_is_written_at_most_once_a_minute(
    database_url: str, conn: Conn, tenant: str
) -> None:
    key = auth.create_key(conn, tenant)
    pool = create_pool(database_url, max_size=2)
    try:

        def last_used() -> Any:
            row = conn.execute(
                "SELECT last_used_at, xmin::text AS xmin FROM api_keys WHERE key_hash = %s",
                (auth.hash_key(key),),
            ).fetchone()
            assert row is not None
            return row["last_used_at"], row["xmin"]

        assert last_used()[0] is None
        auth.identify(pool, key)
        first = last_used()
        assert first[0] is not None
        for _ in range(5):
            auth.identify(pool, key)
        assert last_used() == first  # same value, same row version: nothing written
        backdated = first[0] - timedelta(seconds=61)
        conn.execute(
            "UPDATE api_keys SET last_used_at = %s WHERE key_hash = %s",
            (backdated, auth.hash_key(key)),
        )
        auth.identify(pool, key)
        assert last_used()[0] >= first[0]
    finally:
        pool.close()
