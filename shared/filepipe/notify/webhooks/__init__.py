"""Signed webhooks: tenants' endpoints, durable delivery, SSRF guard, the subscription API.

Follows the Standard Webhooks spec
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
per-endpoint ``whsec_`` secrets, ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature``
(HMAC-SHA256, via the ``standardwebhooks`` library), retries with backoff, endpoints disabled
when they answer 410 or keep failing; secret rotation with both signatures during an overlap.

Design (stateless functions, at-least-once everywhere, all state in PostgreSQL):

- The body is the event as structured-mode CloudEvents JSON (``signing.py``); ``webhook-id`` is
  the CloudEvent id, stable across retries and re-emissions, so receivers dedupe on it.
- The ``notify`` CloudEvent target, for each ``file.*`` event, inserts one ``webhook_messages``
  row per subscribed enabled endpoint of ``data.tenant``. The row's key (endpoint, event id)
  dedupes: a CloudEvent the broker delivers twice adds nothing, and a delivered row is not sent
  again unless the tenant replays it, so one endpoint gets one successful delivery per event (bar
  a crash between a 2xx and its commit, or a replay: both carry the same ``webhook-id``).
- It then makes the event's first attempts inline and retries up to a few other due rows.
  Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease (``delivery.py``), so concurrent
  notify instances never send the same attempt and a crash only delays a row.
- Endpoints are isolated: every attempt ends by one deadline (``webhook_timeout``, however
  slowly the receiver trickles: ``transport.py``), attempts to different endpoints run
  concurrently, and each endpoint has at most ``webhook_endpoint_concurrency`` in flight per
  process (``lanes.py``); the rows of an endpoint whose slots are taken are skipped, not waited
  for, so a slow receiver delays only its own deliveries.
- Retries are rows whose ``next_attempt_at`` is due: they survive restarts. They are driven by
  every notify invocation and by the ``webhook-retries`` PingSource
  (``knative/eventing/sources.yaml``, a ``dev.knative.sources.ping`` to notify, every minute;
  locally the broker emulator's timer), which sweeps due rows within a time budget. A schedule
  delay is thus a lower bound: a retry runs at the first sweep after it is due.
- Every attempt is a ``webhook_deliveries`` row (attempt number, status, duration, error),
  written with the row's new state in one transaction.
- URLs pass the SSRF guard at registration and before every attempt, which connects to the
  address the guard checked (``ssrf.py``, ``transport.py``).
- Secrets are stored encrypted with Fernet keys from ``FILEPIPE_WEBHOOK_SECRET_KEYS``
  (``encryption.py``); without keys nothing is signed or sent and the API answers 503.

Modules: ``ssrf`` (URL, port and address rules), ``signing`` (secret, payload, headers),
``encryption`` (secrets at rest), ``transport`` (one pinned POST by a deadline), ``lanes``
(per-endpoint slots), ``store`` (endpoints, rotation, delivery log), ``delivery`` (the queue,
replays), ``api`` (HTTP routes). Errors: ``errors``.
"""

from __future__ import annotations

from filepipe.notify.webhooks.api import EVENT_TYPES
from filepipe.notify.webhooks.delivery import deliver_event, sweep
from filepipe.notify.webhooks.errors import (
    HostNotFound,
    SecretUnreadable,
    UnsafeURL,
    WebhookError,
)

__all__ = [
    "EVENT_TYPES",
    "HostNotFound",
    "SecretUnreadable",
    "UnsafeURL",
    "WebhookError",
    "deliver_event",
    "sweep",
]
