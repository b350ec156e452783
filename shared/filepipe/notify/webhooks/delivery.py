"""Durable, idempotent webhook delivery over a PostgreSQL queue (``webhook_messages``).

- ``enqueue``: one row per (endpoint, event) for every enabled endpoint of the event's tenant
  subscribed to its type; the primary key makes a re-delivered CloudEvent a no-op.
- ``claim``: takes one due ``pending`` row (``FOR UPDATE SKIP LOCKED``) of an endpoint not
  saturated in this process (``lanes``), counts the attempt and moves ``next_attempt_at`` past
  it (a lease: the attempt's deadline plus a margin) in one committed statement, so no
  transaction stays open during HTTP and a worker that dies mid-attempt only delays the row
  until the lease ends.
- ``complete``: logs the attempt in ``webhook_deliveries`` and settles the row in one
  transaction (compare-and-set on the attempt number): 2xx → ``delivered``; else retry after the
  next ``webhook_retry_schedule`` delay, or ``failed`` when the schedule is spent or the SSRF
  guard refused the address. 410 Gone disables the endpoint; so does the
  ``webhook_max_failures``-th consecutive failed attempt (a success resets the count). Rows of a
  disabled endpoint become ``abandoned``. An attempt not made because the endpoint's secret
  cannot be decrypted is retried but not counted against the endpoint.
- Attempts run concurrently, on ``WORKERS`` threads per call, each in a slot of its endpoint
  (``lanes``: at most ``webhook_endpoint_concurrency`` per endpoint and process). A slow
  endpoint holds only its own slots; its other rows are skipped while they are taken, and the
  other endpoints' rows are claimed meanwhile. Every attempt ends by ``webhook_timeout``
  (``transport``), so a call lasts about as long as its slowest attempt.
- ``sweep`` (the PingSource): first ``encryption.seal_stored`` (plain-text secrets encrypted,
  expired previous secrets forgotten), then claim-attempt-complete within a row limit and a time
  budget: no attempt starts that could end past the budget.
- ``requeue`` (``POST .../deliveries/{delivery_id}/replay``): a delivered, failed or abandoned
  message back to ``pending``, due now, with the whole retry schedule again (retries count from
  ``retry_base``); the same ``webhook-id``, so receivers dedupe it.

Nothing is signed or sent without ``FILEPIPE_WEBHOOK_SECRET_KEYS``: messages are still queued,
and wait (logged as an error) until the keys are configured.

Standard Webhooks spec (retries, disabling failing endpoints):
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from cloudevents.http import CloudEvent
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from psycopg import Connection
from psycopg.errors import ForeignKeyViolation
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from filepipe import config, metrics
from filepipe.config import Settings
from filepipe.errors import Conflict, NotFound
from filepipe.notify.webhooks import encryption, transport
from filepipe.notify.webhooks.encryption import SecretBox
from filepipe.notify.webhooks.errors import SecretUnreadable
from filepipe.notify.webhooks.lanes import SLOTS, EndpointSlots
from filepipe.notify.webhooks.signing import payload, signed_headers
from filepipe.notify.webhooks.store import MAX_ENDPOINTS_PER_TENANT
from filepipe.telemetry import tracer
from filepipe.web.bodies import iso

log = logging.getLogger(__name__)

LEASE_MARGIN = 30.0
"""Seconds a claimed row stays invisible beyond the attempt's deadline."""
WORKERS = 8
"""Attempts one notify call makes at once (on as many threads, started as needed)."""

_CLAIM = """
WITH due AS (
    SELECT m.endpoint_id, m.event_id
    FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id
    WHERE m.state = 'pending' AND e.enabled AND m.next_attempt_at <= now()
      AND NOT m.endpoint_id = ANY(%(saturated)s) {only_event}
    ORDER BY m.next_attempt_at
    LIMIT 1
    FOR UPDATE OF m SKIP LOCKED
)
UPDATE webhook_messages m
SET attempts = m.attempts + 1, updated_at = now(),
    next_attempt_at = now() + make_interval(secs => %(lease)s)
FROM due, webhook_endpoints e
WHERE m.endpoint_id = due.endpoint_id AND m.event_id = due.event_id AND e.id = m.endpoint_id
RETURNING m.endpoint_id, m.event_id, m.attempts AS attempt,
    m.attempts - m.retry_base AS round_attempt, m.payload, e.url,
    e.secret AS plain_secret, e.secret_ciphertext,
    CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret_ciphertext END
        AS previous_secret_ciphertext
"""
_CLAIM_ANY = _CLAIM.format(only_event="")
_CLAIM_EVENT = _CLAIM.format(only_event="AND m.event_id = %(event_id)s")


@dataclass(frozen=True)
class Claim:
    """A message taken for one attempt (``attempt`` counts from 1; ``round_attempt`` too, but
    from the last replay: it picks the retry delay)."""

    endpoint_id: uuid.UUID
    event_id: str
    attempt: int
    round_attempt: int
    payload: str
    url: str
    plain_secret: str | None = field(repr=False)
    """Set only for an endpoint written before secrets were encrypted (until sealed)."""
    secret_ciphertext: str | None = field(repr=False)
    previous_secret_ciphertext: str | None = field(repr=False)
    """The secret a rotation replaced, while its overlap lasts."""

    def secrets(self, box: SecretBox) -> list[str]:
        """The secrets to sign with, the current one first; ``SecretUnreadable`` if one cannot
        be decrypted."""
        current = self.plain_secret
        if current is None:
            assert self.secret_ciphertext is not None  # a CHECK constraint: exactly one is set
            current = box.open(self.secret_ciphertext)
        previous = self.previous_secret_ciphertext
        return [current] if previous is None else [current, box.open(previous)]


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


def claim(
    pool: ConnectionPool[Any],
    *,
    lease: float,
    event_id: str | None = None,
    saturated: list[uuid.UUID] | None = None,
) -> Claim | None:
    """Take the most overdue pending message (of ``event_id`` only, if given) of an endpoint
    not in ``saturated``, or None."""
    params = {"lease": lease, "event_id": event_id, "saturated": saturated or []}
    with pool.connection() as conn, conn.cursor(row_factory=class_row(Claim)) as cur:
        claimed: Claim | None = cur.execute(
            _CLAIM_ANY if event_id is None else _CLAIM_EVENT, params
        ).fetchone()
    return claimed


def attempt(settings: Settings, box: SecretBox, claimed: Claim) -> transport.Outcome:
    """One signed POST of the claimed message (re-signed: a fresh ``webhook-timestamp``)."""
    try:
        signing_secrets = claimed.secrets(box)
    except SecretUnreadable:
        log.error(
            "webhook not sent: no key of %s decrypts the endpoint's secret",
            config.WEBHOOK_SECRET_KEYS,
            extra={"endpoint_id": str(claimed.endpoint_id), "key_id": box.key_id},
        )
        error = "not sent: the endpoint's secret cannot be decrypted (server configuration)"
        return transport.Outcome(None, 0, error, counts_as_failure=False)
    headers = signed_headers(signing_secrets, claimed.event_id, claimed.payload)
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
            ports=settings.webhook_port_ranges,
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
    if not outcome.retryable or claimed.round_attempt > len(delays):
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
            {**key, "error": outcome.error, "delay": delays[claimed.round_attempt - 1]},
        )
    if outcome.gone:
        _disable(conn, claimed.endpoint_id, "the receiver answered 410 Gone")
        return
    if not outcome.counts_as_failure:
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
) -> int:
    """Seal stored secrets, then attempt due messages, up to ``limit`` attempts, none starting
    that could end after ``budget`` seconds (the PingSource's run). Returns how many were made."""
    box = _box(settings)
    if box is None:
        return 0
    encryption.seal_stored(pool, box)
    return _drain(pool, settings, box, limit=limit, budget=budget)


def deliver_event(
    pool: ConnectionPool[Any], settings: Settings, event: CloudEvent, *, sweep_limit: int = 5
) -> int:
    """Queue ``event``, make its first attempts (concurrently, to endpoints with a free slot),
    then retry up to ``sweep_limit`` due others.

    Returns the number of attempts made.
    """
    enqueue(pool, event)
    box = _box(settings)
    if box is None:
        return 0
    made = _drain(pool, settings, box, limit=MAX_ENDPOINTS_PER_TENANT, event_id=event["id"])
    return made + _drain(pool, settings, box, limit=sweep_limit)


def _box(settings: Settings) -> SecretBox | None:
    box = encryption.box_for(settings)
    if box is None:
        log.error(
            "webhook deliveries paused: %s is not set (queued messages wait for it)",
            config.WEBHOOK_SECRET_KEYS,
        )
    return box


def _drain(
    pool: ConnectionPool[Any],
    settings: Settings,
    box: SecretBox,
    *,
    limit: int,
    budget: float | None = None,
    event_id: str | None = None,
    slots: EndpointSlots = SLOTS,
) -> int:
    """Attempt claimable messages concurrently, up to ``limit`` attempts, starting none that
    could end after ``budget`` seconds; waits for the attempts it started. Returns how many."""
    lease = settings.webhook_timeout + LEASE_MARGIN
    latest_start = None if budget is None else time.monotonic() + budget - settings.webhook_timeout

    def claim_free(saturated: list[uuid.UUID]) -> Claim | None:
        return claim(pool, lease=lease, event_id=event_id, saturated=saturated)

    made = 0
    running: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="webhook") as workers:
        try:
            while made < limit and (latest_start is None or time.monotonic() <= latest_start):
                claimed = None
                if len(running) < WORKERS:
                    claimed = slots.take(settings.webhook_endpoint_concurrency, claim_free)
                if claimed is None:
                    if not running:
                        break
                    # A worker, or a slot of a saturated endpoint, may be free once one ends.
                    ended, running = wait(running, return_when=FIRST_COMPLETED)
                    for attempt_made in ended:
                        attempt_made.result()  # a PostgreSQL failure raises: see below
                    continue
                attempt_in_context = contextvars.copy_context().run  # the trace and log scope
                running.add(
                    workers.submit(
                        attempt_in_context, _deliver, pool, settings, box, claimed, slots
                    )
                )
                made += 1
        finally:
            for attempt_made in wait(running).done:
                attempt_made.result()  # a PostgreSQL failure raises: the broker redelivers
    return made


def _deliver(
    pool: ConnectionPool[Any],
    settings: Settings,
    box: SecretBox,
    claimed: Claim,
    slots: EndpointSlots,
) -> None:
    """One attempt in the claimed endpoint's slot, recorded; the slot is freed after."""
    try:
        complete(pool, settings, claimed, attempt(settings, box, claimed))
    finally:
        slots.release(claimed.endpoint_id)


def requeue(
    pool: ConnectionPool[Any], tenant: str, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> dict[str, Any]:
    """Queue the event of delivery attempt ``delivery_id`` for its endpoint again: due now, with
    a fresh retry schedule. 404 if the attempt is not this tenant's endpoint's; 409 if the
    endpoint is disabled or the event is still queued."""
    with pool.connection() as conn, conn.transaction():
        found = conn.execute(
            """
            SELECT d.event_id, e.enabled, m.state
            FROM webhook_deliveries d
            JOIN webhook_endpoints e ON e.id = d.endpoint_id
            LEFT JOIN webhook_messages m
                ON m.endpoint_id = d.endpoint_id AND m.event_id = d.event_id
            WHERE d.public_id = %s AND d.endpoint_id = %s AND e.tenant = %s
            FOR UPDATE OF e
            """,
            (delivery_id, endpoint_id, tenant),
        ).fetchone()
        if found is None:
            raise NotFound(f"no delivery {delivery_id} of webhook endpoint {endpoint_id}")
        if not found["enabled"]:
            raise Conflict("the endpoint is disabled; enable it first (POST .../enable)")
        if found["state"] is None:
            raise Conflict("the event of this delivery is no longer kept")
        row = conn.execute(
            """
            UPDATE webhook_messages
            SET state = 'pending', next_attempt_at = now(), retry_base = attempts,
                last_error = NULL, updated_at = now()
            WHERE endpoint_id = %s AND event_id = %s AND state <> 'pending'
            RETURNING event_id, event_type, state, attempts, next_attempt_at
            """,
            (endpoint_id, found["event_id"]),
        ).fetchone()
    if row is None:
        raise Conflict("the event is already queued for this endpoint (its retries go on)")
    log.info(
        "webhook delivery replayed",
        extra={"endpoint_id": str(endpoint_id), "event_id": row["event_id"]},
    )
    return {**row, "next_attempt_at": iso(row["next_attempt_at"])}
