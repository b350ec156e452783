"""Webhook delivery by the ``notify`` target: signed (by both secrets during a rotation's overlap),
retried, deduplicated, SSRF-guarded, replayable, with secrets encrypted at rest."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from contextlib import closing

import pytest
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient
from redis import Redis

from filepipe import auth, runtime
from filepipe.notify.realtime import channel
from filepipe.notify.webhooks.signing import new_secret
from tests.support.functions import function_app
from tests.support.receiver import Receiver, Reply
from tests.support.waiting import wait_until
from tests.support.webhooks import (
    Conn,
    auth_header,
    deliveries,
    endpoint,
    file_event,
    message,
    ping_event,
    register,
    replay,
    send,
    swept,
    verified,
)

pytestmark = pytest.mark.integration


def test_event_is_signed_and_sent_to_its_tenants_subscribed_endpoints_only(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    other_name = f"wh-{uuid.uuid4().hex[:8]}"
    other_key = auth.create_key(conn, other_name)
    wanted = register(api, key, receiver.url + "/wanted", ["file.processed"])
    register(api, key, receiver.url + "/only-failed", ["file.failed"])
    register(api, other_key, receiver.url + "/other-tenant", ["file.processed"])
    event = file_event(conn, name, "file.processed")

    send(notify, event)

    [request] = receiver.requests("/wanted")
    assert request.headers["webhook-id"] == event["id"]
    assert request.headers["content-type"].startswith("application/cloudevents+json")
    body = verified(wanted["secret"], request)
    assert {k: body[k] for k in ("id", "type", "source", "subject", "specversion")} == {
        "id": event["id"],
        "type": "file.processed",
        "source": "/filepipe/process",
        "subject": event["subject"],
        "specversion": "1.0",
    }
    assert body["data"] == event.get_data() and "traceparent" not in body
    assert [r.path for r in receiver.all_requests()] == ["/wanted"]
    [attempt] = deliveries(api, key, wanted["id"])
    assert attempt["event_id"] == event["id"]
    assert (attempt["attempt"], attempt["status_code"], attempt["succeeded"]) == (1, 200, True)
    assert attempt["error"] is None and attempt["duration_ms"] >= 0


def test_failing_receiver_gets_the_same_webhook_id_until_it_succeeds(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/flaky")
    receiver.plan("/flaky", 500, 503)
    event = file_event(conn, name)

    send(notify, event)
    assert message(conn, hook["id"], event["id"])["state"] == "pending"
    swept(notify, lambda: message(conn, hook["id"], event["id"])["state"] == "delivered", "retry")

    requests = receiver.requests("/flaky")
    assert [r.headers["webhook-id"] for r in requests] == [event["id"]] * 3
    assert all(verified(hook["secret"], r)["id"] == event["id"] for r in requests)
    attempts = deliveries(api, key, hook["id"])
    assert [(a["attempt"], a["status_code"], a["succeeded"]) for a in attempts] == [
        (3, 200, True),
        (2, 503, False),
        (1, 500, False),
    ]
    assert attempts[1]["error"] == "HTTP 503"
    assert endpoint(api, key, hook["id"])["failure_count"] == 0


def test_a_duplicate_cloudevent_is_delivered_once(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/once")
    event = file_event(conn, name)

    send(notify, event)
    send(notify, event)
    send(notify, ping_event())

    assert len(receiver.requests("/once")) == 1
    assert [a["succeeded"] for a in deliveries(api, key, hook["id"])] == [True]


def test_410_gone_disables_the_endpoint_at_once(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/gone")
    receiver.plan("/gone", 410)
    first = file_event(conn, name)

    send(notify, first)
    send(notify, file_event(conn, name))

    disabled = endpoint(api, key, hook["id"])
    assert disabled["enabled"] is False and "410" in disabled["disabled_reason"]
    assert len(receiver.requests("/gone")) == 1
    assert message(conn, hook["id"], first["id"])["state"] == "abandoned"


def test_consecutive_failures_disable_the_endpoint(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/down")
    receiver.plan("/down", 500, 500, 500, 500)
    event = file_event(conn, name)

    send(notify, event)
    swept(notify, lambda: not endpoint(api, key, hook["id"])["enabled"], "the endpoint disabled")

    disabled = endpoint(api, key, hook["id"])
    assert disabled["disabled_reason"].startswith("3 consecutive failed deliveries")
    assert len(receiver.requests("/down")) == 3
    assert message(conn, hook["id"], event["id"])["state"] == "failed"
    send(notify, file_event(conn, name))
    assert len(receiver.requests("/down")) == 3


def test_a_timeout_is_a_failed_attempt_that_is_retried(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/slow")
    release = threading.Event()
    receiver.plan("/slow", Reply(200, hold=release))
    event = file_event(conn, name)
    try:
        send(notify, event)
    finally:
        release.set()
    swept(notify, lambda: message(conn, hook["id"], event["id"])["state"] == "delivered", "retry")

    timed_out, succeeded = reversed(deliveries(api, key, hook["id"]))
    assert (timed_out["status_code"], timed_out["error"]) == (None, "timed out after 1 s")
    assert timed_out["duration_ms"] >= 1000
    assert succeeded["succeeded"] is True


def test_redirects_are_not_followed(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/moved")
    receiver.plan("/moved", Reply(307, headers={"Location": receiver.url + "/elsewhere"}))

    send(notify, file_event(conn, name))

    [attempt] = deliveries(api, key, hook["id"])
    assert (attempt["status_code"], attempt["error"]) == (307, "redirect not followed")
    assert receiver.requests("/elsewhere") == []


def test_loopback_is_refused_at_delivery_unless_allowed(
    function_env: dict[str, str], conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    """An endpoint stored with a loopback URL (e.g. registered while allowed) gets nothing."""
    name, _ = tenant
    endpoint_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types)"
        " VALUES (%s, %s, %s, %s, %s)",
        (endpoint_id, name, receiver.url + "/internal", new_secret(), ["file.processed"]),
    )
    event = file_event(conn, name)

    send(function_app("notify", "notify").test_client(), event)

    [attempt] = conn.execute(
        "SELECT * FROM webhook_deliveries WHERE endpoint_id = %s", (endpoint_id,)
    ).fetchall()
    assert (attempt["succeeded"], attempt["status_code"]) == (False, None)
    assert attempt["error"] == (
        "refused: the URL's host is a loopback address; webhooks may only reach public ones"
    )
    assert message(conn, str(endpoint_id), event["id"])["state"] == "failed"
    assert receiver.all_requests() == []


def test_a_pending_retry_survives_a_restart(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/later")
    receiver.plan("/later", 500)
    event = file_event(conn, name)
    send(notify, event)

    runtime.reset()  # the process's pool and clients are gone; only PostgreSQL remembers
    restarted = function_app("notify", "notify").test_client()
    swept(
        restarted, lambda: message(conn, hook["id"], event["id"])["state"] == "delivered", "retry"
    )

    assert [r.headers["webhook-id"] for r in receiver.requests("/later")] == [event["id"]] * 2
    assert [a["attempt"] for a in deliveries(api, key, hook["id"])] == [2, 1]


def test_an_endpoint_disabled_by_failures_delivers_again_once_enabled(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/revived")
    receiver.plan("/revived", 500, 500, 500)
    send(notify, file_event(conn, name))
    swept(notify, lambda: not endpoint(api, key, hook["id"])["enabled"], "the endpoint disabled")

    enabled = api.post(f"/webhooks/{hook['id']}/enable", headers=auth_header(key)).get_json()
    assert (enabled["enabled"], enabled["failure_count"], enabled["disabled_reason"]) == (
        True,
        0,
        None,
    )
    later = file_event(conn, name)
    send(notify, later)

    assert receiver.requests("/revived")[-1].headers["webhook-id"] == later["id"]
    assert verified(hook["secret"], receiver.requests("/revived")[-1])["id"] == later["id"]
    assert message(conn, hook["id"], later["id"])["state"] == "delivered"
    assert endpoint(api, key, hook["id"])["failure_count"] == 0


def test_a_replayed_delivery_is_sent_again_with_the_same_webhook_id(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, receiver.url + "/again")
    event = file_event(conn, name)
    send(notify, event)
    [first] = deliveries(api, key, hook["id"])

    response = replay(api, key, hook["id"], first["id"])
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["event_id"] == event["id"]
    swept(notify, lambda: len(receiver.requests("/again")) == 2, "the replay")

    requests = receiver.requests("/again")
    assert [r.headers["webhook-id"] for r in requests] == [event["id"]] * 2
    assert requests[0].body == requests[1].body
    assert verified(hook["secret"], requests[1])["id"] == event["id"]
    assert [(a["attempt"], a["succeeded"]) for a in deliveries(api, key, hook["id"])] == [
        (2, True),
        (1, True),
    ]
    assert message(conn, hook["id"], event["id"])["state"] == "delivered"


def test_a_replayed_failed_delivery_gets_the_whole_retry_schedule_again(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    conn: Conn,
    receiver: Receiver,
    tenant: tuple[str, str],
) -> None:
    monkeypatch.setenv("FILEPIPE_WEBHOOK_MAX_FAILURES", "10")
    runtime.reset()
    api = function_app("notify", "webhooks").test_client()
    notify = function_app("notify", "notify").test_client()
    name, key = tenant
    hook = register(api, key, receiver.url + "/later")
    receiver.plan("/later", 500, 500, 500, 503, 503)
    event = file_event(conn, name)
    send(notify, event)
    swept(notify, lambda: message(conn, hook["id"], event["id"])["state"] == "failed", "failed")
    failed = deliveries(api, key, hook["id"])[0]
    assert failed["attempt"] == 3

    assert replay(api, key, hook["id"], failed["id"]).status_code == 202
    swept(notify, lambda: message(conn, hook["id"], event["id"])["state"] == "delivered", "retry")

    attempts = deliveries(api, key, hook["id"])
    assert [(a["attempt"], a["status_code"]) for a in attempts[:3]] == [
        (6, 200),
        (5, 503),
        (4, 503),
    ]


def test_a_port_not_allowed_is_refused_at_delivery(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    conn: Conn,
    receiver: Receiver,
    tenant: tuple[str, str],
) -> None:
    """An endpoint stored when its port was allowed gets nothing once it is not."""
    name, key = tenant
    hook = register(function_app("notify", "webhooks").test_client(), key, receiver.url + "/p")
    monkeypatch.delenv("FILEPIPE_WEBHOOK_PORTS")
    runtime.reset()
    notify = function_app("notify", "notify").test_client()
    event = file_event(conn, name)

    send(notify, event)

    [attempt] = conn.execute(
        "SELECT * FROM webhook_deliveries WHERE endpoint_id = %s", (hook["id"],)
    ).fetchall()
    port = receiver.url.rsplit(":", 1)[1]
    assert attempt["error"] == (
        f"refused: the URL's port {port} is not allowed; webhooks may use 80, 443"
    )
    assert message(conn, hook["id"], event["id"])["state"] == "failed"
    assert receiver.all_requests() == []

    monkeypatch.setenv("FILEPIPE_WEBHOOK_PORTS", f"443,{port}")
    runtime.reset()
    later = file_event(conn, name)
    send(function_app("notify", "notify").test_client(), later)
    assert [r.headers["webhook-id"] for r in receiver.requests("/p")] == [later["id"]]


def test_the_delivery_log_says_what_failed_without_the_address(
    api: FlaskClient, notify: FlaskClient, conn: Conn, closed_port_url: str, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    hook = register(api, key, closed_port_url + "hook")

    send(notify, file_event(conn, name))

    [attempt] = deliveries(api, key, hook["id"])
    assert attempt["error"] == "connection failed: connection refused"
    assert attempt["status_code"] is None


def test_without_keys_events_wait_queued_until_keys_are_set(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    conn: Conn,
    receiver: Receiver,
    tenant: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    name, key = tenant
    hook = register(function_app("notify", "webhooks").test_client(), key, receiver.url + "/w")
    keys = env["FILEPIPE_WEBHOOK_SECRET_KEYS"]
    monkeypatch.delenv("FILEPIPE_WEBHOOK_SECRET_KEYS")
    runtime.reset()
    unconfigured = function_app("notify", "notify").test_client()
    event = file_event(conn, name)

    with caplog.at_level(logging.ERROR):
        send(unconfigured, event)
        send(unconfigured, ping_event())

    assert any("deliveries paused" in record.getMessage() for record in caplog.records)
    queued = message(conn, hook["id"], event["id"])
    assert (queued["state"], queued["attempts"]) == ("pending", 0)
    assert receiver.all_requests() == []

    monkeypatch.setenv("FILEPIPE_WEBHOOK_SECRET_KEYS", keys)
    runtime.reset()
    configured = function_app("notify", "notify").test_client()
    swept(configured, lambda: receiver.requests("/w"), "the queued event")
    assert verified(hook["secret"], receiver.requests("/w")[0])["id"] == event["id"]


def test_a_forged_event_claiming_another_tenant_reaches_no_webhook_and_no_websocket(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    """Even from inside the event plane, an event is only what the outbox says it is."""
    victim, key = tenant
    register(api, key, receiver.url + "/victim")
    real = file_event(conn, victim)  # a real file of the victim, with its recorded event
    forged = CloudEvent(
        {**real.get_attributes(), "id": str(uuid.uuid4()), "type": "file.processed"},
        {**(real.get_data() or {}), "status": "PROCESSED", "note": "forged"},
    )
    redis = Redis.from_url(runtime.current().settings.redis_url, socket_timeout=5)
    with closing(redis.pubsub()) as frames:  # type: ignore[no-untyped-call]
        frames.subscribe(channel(victim))
        wait_until(lambda: frames.get_message(timeout=0.1), what="the subscription")

        send(notify, forged)  # acknowledged (retrying cannot fix it) and dropped
        send(notify, real)

        first = wait_until(lambda: frames.get_message(timeout=0.1), what="a real-time frame")
    assert json.loads(first["data"])["id"] == real["id"], "the forged event came first"
    assert [r.headers["webhook-id"] for r in receiver.requests("/victim")] == [real["id"]]
