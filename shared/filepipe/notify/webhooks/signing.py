"""Standard Webhooks signatures and the payload they sign.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
- each endpoint has its own secret, ``whsec_`` + base64 of 32 random bytes (the spec allows
  24-64), shown to the tenant once, when the endpoint is created or its secret rotated (stored
  encrypted, see ``encryption.py``);
- every attempt carries ``webhook-id`` (the CloudEvent id, the same on every retry and for a
  re-emitted event, so receivers dedupe on it), ``webhook-timestamp`` (the attempt's Unix time,
  so a retry is signed anew and passes the receiver's staleness check) and ``webhook-signature``
  (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``), computed by the ``standardwebhooks``
  library. While a rotated secret's overlap lasts, the header carries one signature per secret,
  space-separated (``v1,<new> v1,<old>``), as the spec allows, so a receiver holding either
  verifies.

The body is the event as structured-mode CloudEvents JSON (CloudEvents 1.0 JSON format) with
``Content-Type: application/cloudevents+json``: the same document the WebSocket gateway sends,
carrying ``id``, ``type``, ``source``, ``subject`` (file id), ``time`` and ``data``. Transport
extensions (``traceparent``, broker attributes) stay inside.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from cloudevents.conversion import to_json
from cloudevents.http import CloudEvent
from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
SECRET_BYTES = 32
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "filepipe-webhooks/1"
PAYLOAD_ATTRIBUTES = ("specversion", "id", "type", "source", "subject", "time", "datacontenttype")


def new_secret() -> str:
    """A fresh endpoint secret in the spec's ``whsec_<base64>`` form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def payload(event: CloudEvent) -> str:
    """The webhook body of ``event``: structured-mode JSON of its core attributes and data."""
    attributes = {
        name: event[name] for name in PAYLOAD_ATTRIBUTES if event.get(name) not in (None, "")
    }
    return to_json(CloudEvent(attributes, event.get_data())).decode()


def signed_headers(
    signing_secrets: Sequence[str], message_id: str, body: str, at: datetime | None = None
) -> dict[str, str]:
    """The headers of one delivery attempt of ``body`` (signed at ``at``, default now), with a
    signature by each of ``signing_secrets`` (the current one first)."""
    if not signing_secrets or isinstance(signing_secrets, str):
        raise TypeError("signing_secrets must be a non-empty sequence of secrets")
    moment = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    signatures = " ".join(
        Webhook(secret).sign(message_id, moment, body) for secret in signing_secrets
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signatures,
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
    }
