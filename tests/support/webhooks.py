"""Helpers for webhook tests: file events, the notify and webhooks targets, signed requests, the
API's webhook routes, and the secrets as stored."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from cryptography.fernet import Fernet, MultiFernet
from flask.testing import FlaskClient
from standardwebhooks import Webhook
from werkzeug.test import TestResponse

from filepipe.events import Event
from filepipe.files import outbox
from tests.support.files import add_file
from tests.support.receiver import Recorded
from tests.support.waiting import wait_until

Conn = psycopg.Connection[dict[str, Any]]
T = TypeVar("T")

ALL_TYPES = [
    "file.uploaded",
    "file.processed",
    "file.rejected",
    "file.failed",
    "file.quarantined",
    "file.cancelled",
    "file.deleted",
    "file.missing",
]
PING = "dev.knative.sources.ping"
WEBHOOK_ENV = {
    "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "true",
    "FILEPIPE_WEBHOOK_RETRY_SCHEDULE": "0.05,0.1",
    "FILEPIPE_WEBHOOK_TIMEOUT": "1",
    "FILEPIPE_WEBHOOK_MAX_FAILURES": "3",
}
"""What the delivery tests set on top of the test services' environment: fast retries."""


def file_event(
    conn: Conn, tenant: str, event_type: str = "file.processed", **data: Any
) -> CloudEvent:
    """A file of ``tenant`` and its ``event_type`` event, recorded in the outbox as the process
    function records them (notify only sends what the outbox holds), as the broker delivers it."""
    file = add_file(conn, tenant, status="PROCESSED", version=4)
    event = Event(
        id=str(uuid.uuid4()),
        type=event_type,
        source="/filepipe/process",
        subject=str(file["id"]),
        tenant=tenant,
        file_id=file["id"],
        data={"file_id": str(file["id"]), "tenant": tenant, "status": "PROCESSED", "version": 4}
        | data,
        time=datetime.now(UTC),
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    outbox.record(conn, event)
    return event.to_cloudevent()


def ping_event() -> CloudEvent:
    return CloudEvent(
        {"type": PING, "source": "/apis/v1/namespaces/default/pingsources/webhook-retries"},
        {"task": "webhook-retries"},
    )


def send(notify: FlaskClient, event: CloudEvent) -> None:
    """POST ``event`` (binary mode, as the broker does) to the notify target."""
    headers, body = to_binary(event)
    response = notify.post("/", headers=headers, data=body)
    assert response.status_code == 200, response.get_data(as_text=True)


def register(
    api: FlaskClient, key: str, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = api.post(
        "/webhooks",
        json={"url": url, "events": events or ALL_TYPES},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def deliveries(api: FlaskClient, key: str, endpoint_id: str) -> list[dict[str, Any]]:
    response = api.get(
        f"/webhooks/{endpoint_id}/deliveries", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def swept(notify: FlaskClient, probe: Callable[[], T | None], what: str) -> T:
    """Send PingSource events to notify until ``probe`` is satisfied."""

    def ping_then_probe() -> T | None:
        send(notify, ping_event())
        return probe()

    return wait_until(ping_then_probe, what=what)


def message(conn: Conn, endpoint_id: str, event_id: str) -> dict[str, Any]:
    """The queued message of ``event_id`` for the endpoint."""
    row = conn.execute(
        "SELECT * FROM webhook_messages WHERE endpoint_id = %s AND event_id = %s",
        (endpoint_id, event_id),
    ).fetchone()
    assert row is not None
    return row


def endpoint(api: FlaskClient, key: str, endpoint_id: str) -> dict[str, Any]:
    """``GET /webhooks/{id}``'s body."""
    got: dict[str, Any] = api.get(f"/webhooks/{endpoint_id}", headers=auth_header(key)).get_json()
    return got


def verified(secret: str, request: Recorded) -> dict[str, Any]:
    """The body of a webhook request whose Standard Webhooks signature checks out."""
    body: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return body


def auth_header(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def rotate(
    api: FlaskClient, key: str, endpoint_id: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``POST /webhooks/{id}/rotate-secret`` (no body unless ``body``); the 200's body."""
    response = api.post(
        f"/webhooks/{endpoint_id}/rotate-secret", json=body, headers=auth_header(key)
    )
    assert response.status_code == 200, response.get_json()
    rotated: dict[str, Any] = response.get_json()
    return rotated


def replay(api: FlaskClient, key: str, endpoint_id: str, delivery_id: str) -> TestResponse:
    return api.post(
        f"/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay", headers=auth_header(key)
    )


def stored_endpoint(conn: Conn, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's row as PostgreSQL holds it (secret columns included)."""
    row = conn.execute("SELECT * FROM webhook_endpoints WHERE id = %s", (endpoint_id,)).fetchone()
    assert row is not None
    return row


def decrypted(token: str, *keys: str) -> str:
    """A stored secret token opened with ``keys`` (Fernet), as the server would."""
    return MultiFernet([Fernet(key) for key in keys]).decrypt(token.encode()).decode()
