"""Helpers for webhook tests: file events, the notify and webhooks targets, signed requests."""

from __future__ import annotations

import uuid
from typing import Any

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient
from standardwebhooks import Webhook

from tests.support.receiver import Recorded

ALL_TYPES = ["file.uploaded", "file.processed", "file.rejected", "file.failed"]
PING = "dev.knative.sources.ping"


def file_event(tenant: str, event_type: str = "file.processed", **data: Any) -> CloudEvent:
    file_id = str(uuid.uuid4())
    return CloudEvent(
        {
            "type": event_type,
            "source": "/filepipe/process",
            "id": str(uuid.uuid4()),
            "subject": file_id,
            "datacontenttype": "application/json",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
        {"file_id": file_id, "tenant": tenant, "status": "PROCESSED", "version": 4, **data},
    )


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


def verified(secret: str, request: Recorded) -> dict[str, Any]:
    """The body of a webhook request whose Standard Webhooks signature checks out."""
    body: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return body
