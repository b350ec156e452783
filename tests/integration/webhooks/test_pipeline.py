"""Webhooks through the real broker emulator and notify as a process: the repository's Triggers
deliver the events, its ``webhook-retries`` PingSource drives retries across a notify restart
and encrypts a plain-text secret left from before migration 0007."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from filepipe import auth
from filepipe.notify import realtime
from filepipe.notify.webhooks.signing import new_secret
from tests.support.broker import broker_emulator
from tests.support.processes import running
from tests.support.receiver import Receiver, receiving
from tests.support.waiting import free_port, wait_until
from tests.support.webhooks import file_event, verified

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
REDIS_URL = "redis://127.0.0.1:6379/0"


def notify_process(port: int, env: dict[str, str]) -> Any:
    return running(
        [
            *("-m", "filepipe.server", "--target", "notify"),
            *("--source", "functions/notify/main.py", "--port", str(port)),
        ],
        port=port,
        env=env,
    )


def publish(ingress: str, event: CloudEvent) -> None:
    headers, body = to_binary(event)
    response = requests.post(ingress, headers=headers, data=body, timeout=10)
    assert response.status_code == 202, response.text


def attempts(conn: Conn, endpoint_id: uuid.UUID) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT attempt, status_code, succeeded FROM webhook_deliveries"
        " WHERE endpoint_id = %s ORDER BY attempt",
        (endpoint_id,),
    ).fetchall()


def plain_secret(conn: Conn, endpoint_id: uuid.UUID) -> str | None:
    row = conn.execute(
        "SELECT secret FROM webhook_endpoints WHERE id = %s", (endpoint_id,)
    ).fetchone()
    assert row is not None
    secret: str | None = row["secret"]
    return secret


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def test_broker_duplicates_and_a_notify_restart_yield_one_success(
    service_env: dict[str, str], conn: Conn, hooks: Receiver
) -> None:
    tenant = f"wh-{uuid.uuid4().hex[:8]}"
    auth.create_key(conn, tenant)
    endpoint_id, secret = uuid.uuid4(), new_secret()
    conn.execute(
        "INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types)"
        " VALUES (%s, %s, %s, %s, %s)",
        (endpoint_id, tenant, hooks.url + "/hook", secret, ["file.processed"]),
    )
    hooks.plan("/hook", 500)
    broker_port, notify_port = free_port(), free_port()
    prefix = f"filepipe-test-{uuid.uuid4().hex[:8]}"
    env = {
        **service_env,
        "FILEPIPE_BROKER_PORT": str(broker_port),
        "FILEPIPE_BROKER_PREFIX": prefix,
        "FILEPIPE_S3_NOTIFY_EXCHANGE": f"{prefix}.minio",
        "FILEPIPE_SUBSCRIBERS": (
            f"process={hooks.url}/process,notify=http://127.0.0.1:{notify_port}"
        ),
        "FILEPIPE_PING_INTERVAL": "0.3",
        "FILEPIPE_BROKER_BACKOFF_SCALE": "0.2",
        "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "true",
        "FILEPIPE_WEBHOOK_RETRY_SCHEDULE": "2",
        "FILEPIPE_WEBHOOK_TIMEOUT": "2",
    }
    event = file_event(conn, tenant)

    with (
        redis.Redis.from_url(service_env.get("FILEPIPE_REDIS_URL", REDIS_URL)) as client,
        client.pubsub(ignore_subscribe_messages=True) as listener,
        broker_emulator(env, port=broker_port, own_source_exchange=True) as ingress,
    ):
        listener.subscribe(realtime.channel(tenant))
        with notify_process(notify_port, env) as first:
            publish(ingress, event)
            publish(ingress, event)
            wait_until(lambda: attempts(conn, endpoint_id), what="the first attempt")
            os.killpg(first.pid, signal.SIGKILL)  # before the retry is due (2 s)
            first.wait(10)
        assert attempts(conn, endpoint_id) == [
            {"attempt": 1, "status_code": 500, "succeeded": False}
        ]

        with notify_process(notify_port, env):
            wait_until(lambda: len(attempts(conn, endpoint_id)) == 2, what="the retry")
            wait_until(lambda: plain_secret(conn, endpoint_id) is None, what="the secret sealed")

        published = wait_until(lambda: listener.get_message(timeout=1.0), what="real time")
        assert json.loads(published["data"])["id"] == event["id"]

    assert attempts(conn, endpoint_id)[1] == {"attempt": 2, "status_code": 200, "succeeded": True}
    requests_ = hooks.requests("/hook")
    assert [r.headers["webhook-id"] for r in requests_] == [event["id"]] * 2
    assert all(verified(secret, r)["id"] == event["id"] for r in requests_)
