"""Standard Webhooks secrets, payload and signature headers (no I/O)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.http import CloudEvent
from standardwebhooks import Webhook, WebhookVerificationError

from filepipe.notify.webhooks.signing import new_secret, payload, signed_headers

EVENT = CloudEvent(
    {
        "type": "file.processed",
        "source": "/filepipe/process",
        "id": "3f0c6c1e-8d4e-5a43-9a1e-1f2e3d4c5b6a",
        "subject": "f-1",
        "time": "2026-01-02T03:04:05+00:00",
        "datacontenttype": "application/json",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    },
    {"file_id": "f-1", "tenant": "acme", "status": "PROCESSED", "version": 4},
)


def test_secrets_are_whsec_base64_of_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32


def test_payload_is_structured_cloudevent_json_without_transport_extensions() -> None:
    body = json.loads(payload(EVENT))
    assert body == {
        "specversion": "1.0",
        "id": EVENT["id"],
        "type": "file.processed",
        "source": "/filepipe/process",
        "subject": "f-1",
        "time": "2026-01-02T03:04:05+00:00",
        "datacontenttype": "application/json",
        "data": EVENT.get_data(),
    }


def test_headers_verify_with_the_standardwebhooks_library() -> None:
    secret, body = new_secret(), payload(EVENT)
    headers = signed_headers([secret], EVENT["id"], body)

    assert Webhook(secret).verify(body, headers)["id"] == EVENT["id"]
    assert headers["webhook-id"] == EVENT["id"]
    assert headers["webhook-signature"].startswith("v1,")
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("PROCESSED", "REJECTED"), headers)


def test_each_attempt_is_signed_at_its_own_time() -> None:
    secret, body = new_secret(), payload(EVENT)
    earlier = datetime.now(UTC) - timedelta(minutes=10)
    stale = signed_headers([secret], EVENT["id"], body, at=earlier)
    assert stale["webhook-timestamp"] == str(int(earlier.timestamp()))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, stale)


def test_during_an_overlap_a_receiver_holding_either_secret_verifies() -> None:
    new, old, body = new_secret(), new_secret(), payload(EVENT)
    headers = signed_headers([new, old], EVENT["id"], body)

    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(entry.startswith("v1,") for entry in signatures)
    assert signatures[0] == signed_headers([new], EVENT["id"], body)["webhook-signature"]
    for secret in (new, old):
        assert Webhook(secret).verify(body, headers)["id"] == EVENT["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_lone_string_is_not_taken_for_a_list_of_secrets() -> None:
    with pytest.raises(TypeError):
        signed_headers(new_secret(), EVENT["id"], payload(EVENT))
    with pytest.raises(TypeError):
        signed_headers([], EVENT["id"], payload(EVENT))
