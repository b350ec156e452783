"""Durable, idempotent webhook delivery over a PostgreSQL queue (``webhook_messages``).

- ``enqueue``: one row per (endpoint, event) for every enabled endpoint of the event's tenant
  subscribed to its type; the primary key makes a re-delivered CloudEvent a no-op.
- ``claim``: takes one due ``pending`` row (``FOR UPDATE SKIP LOCKED``), counts the attempt and
  moves ``next_attempt_at`` past it (a lease) in one committed statement, so no transaction stays
  open during HTTP and a worker that dies mid-attempt only delays the row until the lease ends.
- ``complete``: logs the attempt in ``webhook_deliveries`` and settles the row in one
  transaction (compare-and-set on the attempt number): 2xx → ``delivered``; else retry after the
  next ``webhook_retry_schedule`` delay, or ``failed`` when the schedule is spent or the SSRF
  guard refused the address. 410 Gone disables the endpoint; so does the
  ``webhook_max_failures``-th consecutive failed attempt (a success resets the count). Rows of a
  disabled endpoint become ``abandoned``.
- ``sweep``: claim-attempt-complete, one row at a time, within a row limit and a time budget.

Standard Webhooks spec (retries, disabling failing endpoints):
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudevents.http import CloudEvent
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from psycopg import Connection
from psycopg.errors import ForeignKeyViolation
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from filepipe import metrics
from filepipe.config import Settings
from filepipe.notify.webhooks import transport
from filepipe.notify.webhooks.signing import payload, signed_headers
from filepipe.notify.webhooks.store import MAX_ENDPOINTS_PER_TENANT
from filepipe.telemetry import tracer

log = logging.getLogger(__name__)

LEASE_MARGIN = 30.0
"""Seconds a claimed row stays invisible beyond the attempt's own timeouts."""

_CLAIM = """
WITH due AS (
    SELECT m.endpoint_id, m.event_id
    FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id
    WHERE m.state = 'pending' AND e.enabled AND m.next_attempt_at <= now() {only_event}
    ORDER BY m.next_attempt_at
    LIMIT 1
    FOR UPDATE OF m SKIP LOCKED
)
UPDATE webhook_messages m
SET attempts = m.attempts + 1, updated_at = now(),
    next_attempt_at = now() + make_interval(secs => %(lease)s)
FROM due, webhook_endpoints e
WHERE m.endpoint_id = due.endpoint_id AND m.event_id = due.event_id AND e.id = m.endpoint_id
RETURNING m.endpoint_id, m.event_id, m.attempts AS attempt, m.payload, e.url, e.secret
"""
_CLAIM_ANY = _CLAIM.format(only_event="")
_CLAIM_EVENT = _CLAIM.format(only_event="AND m.event_id = %(event_id)s")


@dataclass(frozen=True)
class Claim:
    """A message taken for one attempt (``attempt`` counts from 1)."""

    endpoint_id: uuid.UUID
    event_id: str
    attempt: int
    payload: str
    url: str
    secret: str = field(repr=False)


def enqueue(pool: ConnectionPool[Any], event: CloudEvent) -> int:
    """Queue ``event`` for its tenant's subscribed endpoints; returns how many rows are new."""
    data = event.get_data()
    tenant = data.get("tenant") if isinstance(data, Mapping) else None
    if not isinstance(tenant, str) or not tenant:
        log.warning("event without a tenant: no webhooks", extra={"event_id": event["id"]})
        return 0
    with pool.connection() as conn:
        cursor = conn.execute(
            """
            INSERT INTO webhook_messages (endpoint_id, event_id, event_type, payload)
            SELECT id, %s, %s, %s FROM webhook_endpoints
            WHERE tenant = %s AND enabled AND %s = ANY(event_types)
            ON CONFLICT (endpoint_id, event_id) DO NOTHING
            """,
            (event["id"], event["type"], payload(event), tenant, event["type"]),
        )
        return int(cursor.rowcount)


def claim(pool: ConnectionPool[Any], *, lease: float, event_id: str | None = None) -> Claim | None:
    """Take the most overdue pending message (of ``event_id`` only, if given), or None."""
    params = {"lease": lease, "event_id": event_id}
    with pool.connection() as conn, conn.cursor(row_factory=class_row(Claim)) as cur:
        claimed: Claim | None = cur.execute(
            _CLAIM_ANY if event_id is None else _CLAIM_EVENT, params
        ).fetchone()
    return claimed


def attempt(settings: Settings, claimed: Claim) -> transport.Outcome:
    """One signed POST of the claimed message (re-signed: a fresh ``webhook-timestamp``)."""
    headers = signed_headers(claimed.secret, claimed.event_id, claimed.payload)
    attributes: dict[str, str | int] = {
        "filepipe.webhook.endpoint_id": str(claimed.endpoint_id),
        "filepipe.webhook.attempt": claimed.attempt,
        "cloudevents.event_id": claimed.event_id,
    }
    with tracer().start_as_current_span(
        "webhook POST", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        propagate.inject(headers)  # the receiver may continue the trace (not signed)
        outcome = transport.post(
            claimed.url,
            claimed.payload.encode(),
            headers,
            timeout=settings.webhook_timeout,
            allow_loopback=settings.webhook_allow_loopback,
        )
        if outcome.status_code is not None:
            span.set_attribute("http.response.status_code", outcome.status_code)
        return outcome


def complete(
    pool: ConnectionPool[Any], settings: Settings, claimed: Claim, outcome: transport.Outcome
) -> None:
    """Log the attempt and settle its message and endpoint (see the module docstring)."""
    result = _result(outcome)
    recorded = metrics.get()
    recorded.webhook_deliveries.labels(result).inc()
    recorded.webhook_delivery_duration.labels(result).observe(outcome.duration_ms / 1000)
    try:
        with pool.connection() as conn, conn.transaction():
            _settle(conn, settings, claimed, outcome)
    except ForeignKeyViolation:
        log.info("endpoint deleted during a delivery", extra={"endpoint_id": claimed.endpoint_id})
    log.info(
        "webhook attempt",
        extra={
            "endpoint_id": str(claimed.endpoint_id),
            "event_id": claimed.event_id,
            "attempt": claimed.attempt,
            "status_code": outcome.status_code,
            "error": outcome.error,
        },
    )


def _result(outcome: transport.Outcome) -> str:
    """The ``result`` label: ``success`` (2xx), ``failure`` (another status), ``error`` (none)."""
    if outcome.succeeded:
        return "success"
    return "error" if outcome.status_code is None else "failure"


def _settle(
    conn: Connection[Any], settings: Settings, claimed: Claim, outcome: transport.Outcome
) -> None:
    conn.execute(
        """
        INSERT INTO webhook_deliveries (endpoint_id, event_id, attempt, status_code, duration_ms,
                                        error, succeeded)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        """,
        (
            claimed.endpoint_id,
            claimed.event_id,
            claimed.attempt,
            outcome.status_code,
            outcome.duration_ms,
            outcome.error,
            outcome.succeeded,
        ),
    )
    key = {"endpoint": claimed.endpoint_id, "event": claimed.event_id, "n": claimed.attempt}
    if outcome.succeeded:
        conn.execute(
            """
            UPDATE webhook_messages SET state = 'delivered', last_error = NULL, updated_at = now()
            WHERE endpoint_id = %(endpoint)s AND event_id = %(event)s AND attempts = %(n)s
              AND state = 'pending'
            """,
            key,
        )
        conn.execute(
            "UPDATE webhook_endpoints SET failure_count = 0 WHERE id = %s", (claimed.endpoint_id,)
        )
        return
    delays = settings.webhook_retry_schedule
    if not outcome.retryable or claimed.attempt > len(delays):
        conn.execute(
            """
            UPDATE webhook_messages SET state = 'failed', last_error = %(error)s, updated_at = now()
            WHERE endpoint_id = %(endpoint)s AND event_id = %(event)s AND attempts = %(n)s
              AND state = 'pending'
            """,
            {**key, "error": outcome.error},
        )
    else:
        conn.execute(
            """
            UPDATE webhook_messages
            SET last_error = %(error)s, updated_at = now(),
                next_attempt_at = clock_timestamp() + make_interval(secs => %(delay)s)
            WHERE endpoint_id = %(endpoint)s AND event_id = %(event)s AND attempts = %(n)s
              AND state = 'pending'
            """,
            {**key, "error": outcome.error, "delay": delays[claimed.attempt - 1]},
        )
    if outcome.gone:
        _disable(conn, claimed.endpoint_id, "the receiver answered 410 Gone")
        return
    counted = conn.execute(
        "UPDATE webhook_endpoints SET failure_count = failure_count + 1 WHERE id = %s"
        " RETURNING failure_count, enabled",
        (claimed.endpoint_id,),
    ).fetchone()
    if counted and counted["enabled"] and counted["failure_count"] >= settings.webhook_max_failures:
        reason = f"{counted['failure_count']} consecutive failed deliveries (last: {outcome.error})"
        _disable(conn, claimed.endpoint_id, reason)


def _disable(conn: Connection[Any], endpoint_id: uuid.UUID, reason: str) -> None:
    conn.execute(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = %s, disabled_at = now()"
        " WHERE id = %s AND enabled",
        (reason[:500], endpoint_id),
    )
    conn.execute(
        "UPDATE webhook_messages SET state = 'abandoned', updated_at = now(),"
        " last_error = coalesce(last_error, %s) WHERE endpoint_id = %s AND state = 'pending'",
        (reason[:500], endpoint_id),
    )
    log.warning("webhook endpoint disabled", extra={"endpoint_id": str(endpoint_id)})


def sweep(
    pool: ConnectionPool[Any],
    settings: Settings,
    *,
    limit: int,
    budget: float | None = None,
    event_id: str | None = None,
) -> int:
    """Attempt due messages one by one, up to ``limit`` attempts or ``budget`` seconds."""
    lease = 2 * settings.webhook_timeout + LEASE_MARGIN
    deadline = None if budget is None else time.monotonic() + budget
    made = 0
    while made < limit and (deadline is None or time.monotonic() < deadline):
        claimed = claim(pool, lease=lease, event_id=event_id)
        if claimed is None:
            break
        complete(pool, settings, claimed, attempt(settings, claimed))
        made += 1
    return made


def deliver_event(
    pool: ConnectionPool[Any], settings: Settings, event: CloudEvent, *, sweep_limit: int = 5
) -> int:
    """Queue ``event``, make its first attempts, then retry up to ``sweep_limit`` due others.

    Returns the number of attempts made.
    """
    enqueue(pool, event)
    made = sweep(pool, settings, limit=MAX_ENDPOINTS_PER_TENANT, event_id=event["id"])
    return made + sweep(pool, settings, limit=sweep_limit)
