"""Webhook endpoints and their delivery log in PostgreSQL, always scoped to one tenant.

An endpoint's secret is returned by ``create_endpoint`` and ``rotate_secret`` only (the API shows
it once) and stored encrypted (``encryption.py``); every other read leaves it out. Another
tenant's endpoint is indistinguishable from a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import sql
from psycopg_pool import ConnectionPool

from filepipe.errors import Conflict, NotFound
from filepipe.notify.webhooks.encryption import SecretBox
from filepipe.notify.webhooks.signing import new_secret
from filepipe.web.bodies import iso

MAX_ENDPOINTS_PER_TENANT = 20

_COLUMNS = sql.SQL(
    """id, url, event_types, enabled, disabled_reason, failure_count, created_at,
    CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
        AS previous_secret_expires_at"""
)
"""What an endpoint's representation shows (an expired overlap shows as none)."""


def create_endpoint(
    pool: ConnectionPool[Any], box: SecretBox, tenant: str, url: str, event_types: Sequence[str]
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
            sql.SQL(
                """
                INSERT INTO webhook_endpoints
                    (id, tenant, url, secret_ciphertext, secret_key_id, event_types)
                VALUES (%s, %s, %s, %s, %s, %s)
                RETURNING {}
                """
            ).format(_COLUMNS),
            (uuid.uuid4(), tenant, url, box.seal(secret), box.key_id, list(event_types)),
        ).fetchone()
    assert row is not None
    return {**endpoint_representation(row), "secret": secret}


def rotate_secret(
    pool: ConnectionPool[Any],
    box: SecretBox,
    tenant: str,
    endpoint_id: uuid.UUID,
    *,
    overlap_seconds: int,
) -> dict[str, Any]:
    """Give the endpoint a new secret; the old one keeps signing too for ``overlap_seconds``
    (0: not at all). A secret replaced earlier whose overlap still lasts is dropped. The
    representation includes the new secret."""
    secret = new_secret()
    with pool.connection() as conn, conn.transaction():
        current = conn.execute(
            "SELECT secret, secret_ciphertext FROM webhook_endpoints"
            " WHERE id = %s AND tenant = %s FOR UPDATE",
            (endpoint_id, tenant),
        ).fetchone()
        if current is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        previous = None
        if overlap_seconds > 0:
            plain = current["secret"]
            previous = box.seal(plain) if plain else box.reseal(current["secret_ciphertext"])
        row = conn.execute(
            sql.SQL(
                """
                UPDATE webhook_endpoints
                SET secret = NULL, secret_ciphertext = %(sealed)s, secret_key_id = %(key_id)s,
                    previous_secret_ciphertext = %(previous)s,
                    previous_secret_expires_at = CASE WHEN %(previous)s::text IS NOT NULL
                        THEN now() + make_interval(secs => %(overlap)s) END
                WHERE id = %(id)s
                RETURNING {}
                """
            ).format(_COLUMNS),
            {
                "sealed": box.seal(secret),
                "key_id": box.key_id,
                "previous": previous,
                "overlap": overlap_seconds,
                "id": endpoint_id,
            },
        ).fetchone()
    assert row is not None
    return {**endpoint_representation(row), "secret": secret}


def enable_endpoint(
    pool: ConnectionPool[Any], tenant: str, endpoint_id: uuid.UUID
) -> dict[str, Any]:
    """Enable the endpoint again with no failures counted (also when it is enabled)."""
    with pool.connection() as conn:
        row = conn.execute(
            sql.SQL(
                """
                UPDATE webhook_endpoints
                SET enabled = true, disabled_reason = NULL, disabled_at = NULL, failure_count = 0
                WHERE id = %s AND tenant = %s
                RETURNING {}
                """
            ).format(_COLUMNS),
            (endpoint_id, tenant),
        ).fetchone()
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint_representation(row)


def list_endpoints(pool: ConnectionPool[Any], tenant: str) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM webhook_endpoints WHERE tenant = %s"
                " ORDER BY created_at DESC, id DESC"
            ).format(_COLUMNS),
            (tenant,),
        ).fetchall()
    return [endpoint_representation(row) for row in rows]


def get_endpoint(pool: ConnectionPool[Any], tenant: str, endpoint_id: uuid.UUID) -> dict[str, Any]:
    with pool.connection() as conn:
        row = conn.execute(
            sql.SQL("SELECT {} FROM webhook_endpoints WHERE id = %s AND tenant = %s").format(
                _COLUMNS
            ),
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
            SELECT d.public_id AS id, d.event_id, d.attempt, d.status_code, d.duration_ms,
                   d.error, d.succeeded, d.created_at
            FROM webhook_deliveries d WHERE d.endpoint_id = %s
            ORDER BY d.id DESC LIMIT %s
            """,
            (endpoint_id, limit),
        ).fetchall()
    return [{**row, "id": str(row["id"]), "created_at": iso(row["created_at"])} for row in rows]


def endpoint_representation(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "url": row["url"],
        "events": list(row["event_types"]),
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "failure_count": row["failure_count"],
        "previous_secret_expires_at": iso(row["previous_secret_expires_at"]),
        "created_at": iso(row["created_at"]),
    }
