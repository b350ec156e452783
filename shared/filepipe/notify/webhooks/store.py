"""Webhook endpoints and their delivery log in PostgreSQL, always scoped to one tenant.

An endpoint's secret is returned by ``create_endpoint`` only (the API shows it once); every other
read leaves it out. Another tenant's endpoint is indistinguishable from a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg_pool import ConnectionPool

from filepipe.errors import Conflict, NotFound
from filepipe.notify.webhooks.signing import new_secret
from filepipe.web.bodies import iso

MAX_ENDPOINTS_PER_TENANT = 20


def create_endpoint(
    pool: ConnectionPool[Any], tenant: str, url: str, event_types: Sequence[str]
) -> dict[str, Any]:
    """Register an endpoint with a new secret; the representation includes the secret."""
    secret = new_secret()
    with pool.connection() as conn, conn.transaction():
        # Serialises creations per tenant, so the limit holds under concurrency.
        conn.execute("SELECT 1 FROM tenants WHERE name = %s FOR UPDATE", (tenant,))
        count = conn.execute(
            "SELECT count(*) AS n FROM webhook_endpoints WHERE tenant = %s", (tenant,)
        ).fetchone()
        if count is not None and count["n"] >= MAX_ENDPOINTS_PER_TENANT:
            raise Conflict(
                f"a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints; "
                "delete one first"
            )
        row = conn.execute(
            """
            INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types)
            VALUES (%s, %s, %s, %s, %s)
            RETURNING id, url, event_types, enabled, disabled_reason, failure_count, created_at
            """,
            (uuid.uuid4(), tenant, url, secret, list(event_types)),
        ).fetchone()
    assert row is not None
    return {**endpoint_representation(row), "secret": secret}


def list_endpoints(pool: ConnectionPool[Any], tenant: str) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        rows = conn.execute(
            """
            SELECT id, url, event_types, enabled, disabled_reason, failure_count, created_at
            FROM webhook_endpoints WHERE tenant = %s ORDER BY created_at DESC, id DESC
            """,
            (tenant,),
        ).fetchall()
    return [endpoint_representation(row) for row in rows]


def get_endpoint(pool: ConnectionPool[Any], tenant: str, endpoint_id: uuid.UUID) -> dict[str, Any]:
    with pool.connection() as conn:
        row = conn.execute(
            """
            SELECT id, url, event_types, enabled, disabled_reason, failure_count, created_at
            FROM webhook_endpoints WHERE id = %s AND tenant = %s
            """,
            (endpoint_id, tenant),
        ).fetchone()
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint_representation(row)


def delete_endpoint(pool: ConnectionPool[Any], tenant: str, endpoint_id: uuid.UUID) -> None:
    """Delete the endpoint with its pending messages and delivery log."""
    with pool.connection() as conn:
        deleted = conn.execute(
            "DELETE FROM webhook_endpoints WHERE id = %s AND tenant = %s RETURNING id",
            (endpoint_id, tenant),
        ).fetchone()
    if deleted is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")


def list_deliveries(
    pool: ConnectionPool[Any], tenant: str, endpoint_id: uuid.UUID, *, limit: int
) -> list[dict[str, Any]]:
    """The endpoint's delivery attempts, newest first."""
    with pool.connection() as conn:
        owned = conn.execute(
            "SELECT 1 FROM webhook_endpoints WHERE id = %s AND tenant = %s", (endpoint_id, tenant)
        ).fetchone()
        if owned is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        rows = conn.execute(
            """
            SELECT id, event_id, attempt, status_code, duration_ms, error, succeeded, created_at
            FROM webhook_deliveries WHERE endpoint_id = %s
            ORDER BY id DESC LIMIT %s
            """,
            (endpoint_id, limit),
        ).fetchall()
    return [{**row, "created_at": iso(row["created_at"])} for row in rows]


def endpoint_representation(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "url": row["url"],
        "events": list(row["event_types"]),
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "failure_count": row["failure_count"],
        "created_at": iso(row["created_at"]),
    }
