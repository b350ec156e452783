"""End to end: an upload through the broker, process and notify reaches its tenant's WebSocket
client through Redis and the gateway, and never another tenant's (nor, to a client of an
upload token, another token's or the API key's); a deletion through the query
function reaches the client and the tenant's webhook."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from filepipe import auth
from filepipe.notify.webhooks.signing import new_secret
from tests.support.functions import function_app
from tests.support.pipeline import Pipeline, pipeline
from tests.support.processes import running
from tests.support.receiver import receiving
from tests.support.uploads import put, request_upload
from tests.support.waiting import free_port, wait_until
from tests.support.webhooks import verified

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    """The pipeline with the real notify function, and the gateway (``pipe.env["GATEWAY"]``)."""
    notify_port, gateway_port = free_port(), free_port()
    env = {
        **service_env,
        "FILEPIPE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "true",
    }
    notify = ["-m", "filepipe.server", "--target", "notify", "--source"]
    with (
        running(
            [*notify, "functions/notify/main.py", "--port", str(notify_port)],
            port=notify_port,
            env=env,
        ),
        running(
            ["-m", "filepipe.notify.gateway", "--host", "127.0.0.1", "--port", str(gateway_port)],
            port=gateway_port,
            env=env,
        ),
        pipeline(service_env, notify_url=f"http://127.0.0.1:{notify_port}") as running_pipe,
    ):
        running_pipe.env["GATEWAY"] = f"ws://127.0.0.1:{gateway_port}/ws"
        yield running_pipe


def listen(pipe: Pipeline, key: str) -> ClientConnection:
    return connect(f"{pipe.env['GATEWAY']}?token={key}")


def upload(client: FlaskClient, key: str, text: str) -> str:
    data = b"%PDF-1.7\n" + text.encode() + b"\n%%EOF\n"
    body = request_upload(client, key, data, filename="live.pdf")
    put(body, data)
    return str(body["id"])


def events_until(ws: ClientConnection, file_id: str, event_type: str) -> list[dict[str, Any]]:
    """Every event the client gets until ``file_id``'s ``event_type`` (10 s each at most)."""
    received = []
    while True:
        event = json.loads(ws.recv(timeout=10))
        received.append(event)
        if event["type"] == event_type and event["subject"] == file_id:
            return received


def test_an_upload_reaches_its_tenants_client_only(
    pipe: Pipeline, presign: FlaskClient, conn: Conn
) -> None:
    mine = auth.create_key(conn, f"live-{uuid.uuid4().hex[:8]}")
    theirs = auth.create_key(conn, f"live-{uuid.uuid4().hex[:8]}")
    with listen(pipe, mine) as my_client, listen(pipe, theirs) as their_client:
        my_file = upload(presign, mine, "mine")
        their_file = upload(presign, theirs, "theirs")  # the marker their client waits for

        mine_seen = events_until(my_client, my_file, "file.processed")
        theirs_seen = events_until(their_client, their_file, "file.processed")

    assert [e["type"] for e in mine_seen if e["subject"] == my_file][-1] == "file.processed"
    assert mine_seen[-1]["data"]["status"] == "PROCESSED"
    assert mine_seen[-1]["specversion"] == "1.0"
    assert all(e["subject"] != my_file for e in theirs_seen)
    assert all(e["data"]["tenant"] != mine_seen[-1]["data"]["tenant"] for e in theirs_seen)


def test_a_deletion_reaches_the_tenants_client_and_webhook(
    pipe: Pipeline, presign: FlaskClient, conn: Conn
) -> None:
    tenant = f"live-{uuid.uuid4().hex[:8]}"
    key, secret = auth.create_key(conn, tenant), new_secret()
    with receiving() as hooks, listen(pipe, key) as client:
        conn.execute(
            "INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types)"
            " VALUES (%s, %s, %s, %s, %s)",
            (uuid.uuid4(), tenant, f"{hooks.url}/hook", secret, ["file.deleted"]),
        )
        file_id = upload(presign, key, "to be deleted")
        events_until(client, file_id, "file.processed")
        query = function_app("query").test_client()  # the presign runtime: the pipe's broker

        answer = query.delete(f"/files/{file_id}", headers={"Authorization": f"Bearer {key}"})

        assert answer.status_code == 204
        deleted = events_until(client, file_id, "file.deleted")[-1]
        [delivered] = hooks.wait_for("/hook")
    assert deleted["source"] == "/filepipe/query"
    assert deleted["data"]["status"] == "DELETED"
    body = verified(secret, delivered)
    assert (body["id"], body["type"]) == (deleted["id"], "file.deleted")
    assert delivered.headers["webhook-id"] == deleted["id"]


def test_an_upload_tokens_client_gets_only_the_events_of_its_files(
    pipe: Pipeline, presign: FlaskClient, conn: Conn
) -> None:
    key = auth.create_key(conn, f"live-{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {key}"}
    tokens = [presign.post("/upload-tokens", json={}, headers=headers) for _ in range(2)]
    mine, theirs = (t.get_json()["token"] for t in tokens)
    with listen(pipe, mine) as my_client, listen(pipe, theirs) as their_client:
        by_key = upload(presign, key, "the tenant's own")
        their_file = upload(presign, theirs, "the other token's")
        events_until(their_client, their_file, "file.processed")
        wait_until(
            lambda: conn.execute(
                "SELECT 1 FROM files WHERE id = %s AND status = 'PROCESSED'", (by_key,)
            ).fetchone(),
            timeout=30,
            what="the API key's file to be processed",
        )
        my_file = upload(presign, mine, "this token's")  # after the others' last events

        mine_seen = events_until(my_client, my_file, "file.processed")

    assert {e["subject"] for e in mine_seen} == {my_file}
    assert mine_seen[-1]["data"]["upload_token_id"] == tokens[0].get_json()["id"]


def test_an_upload_tokens_connection_ends_when_the_token_expires(
    pipe: Pipeline, presign: FlaskClient, conn: Conn
) -> None:
    key = auth.create_key(conn, f"live-{uuid.uuid4().hex[:8]}")
    minted = presign.post(
        "/upload-tokens", json={"expires_in": 2}, headers={"Authorization": f"Bearer {key}"}
    )
    with (
        listen(pipe, minted.get_json()["token"]) as client,
        pytest.raises(ConnectionClosed) as closed,
    ):
        client.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "upload token expired")

    with pytest.raises(InvalidStatus) as refused:
        listen(pipe, minted.get_json()["token"])
    assert refused.value.response.status_code == 401
