"""Fixtures of the contract tests: a tenant with an API key, and files and webhook endpoints of
its own for the operations that read them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.support.files import add_file, tenants

Conn = psycopg.Connection[dict[str, Any]]


@dataclass(frozen=True)
class Tenant:
    name: str
    key: str
    file_ids: tuple[str, ...]
    """Files of every status, each with a processing log."""
    webhook_ids: tuple[str, ...]
    """Webhook endpoints, each with delivery attempts."""


@pytest.fixture(scope="module")
def contract_conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection


@pytest.fixture(scope="module")
def tenant(contract_conn: Conn) -> Iterator[Tenant]:
    """A tenant of this module's own, with files and endpoints; all removed afterwards."""
    with tenants(contract_conn) as make:
        name, key = make()
        try:
            yield Tenant(
                name,
                key,
                tuple(_add_files(contract_conn, name)),
                tuple(_add_webhooks(contract_conn, name)),
            )
        finally:
            contract_conn.execute("DELETE FROM webhook_endpoints WHERE tenant = %s", (name,))


def _add_files(conn: Conn, tenant: str) -> list[str]:
    now = datetime.now(UTC)
    ids = []
    for n, status in enumerate(
        ("PENDING", "UPLOADED", "PROCESSING", "PROCESSED", "REJECTED", "FAILED", "EXPIRED")
    ):
        done = status in ("PROCESSED", "REJECTED", "FAILED", "EXPIRED")
        row = add_file(
            conn,
            tenant,
            created_at=now - timedelta(minutes=n),
            filename=f"contract {n}.pdf",
            declared_sha256="ab" * 32 if n % 2 else None,
            metadata=Jsonb({"n": str(n), "project": "contract"}),
            status=status,
            version=1 + n,
            sha256="ab" * 32 if status == "PROCESSED" else None,
            size_bytes=10 if status == "PROCESSED" else None,
            content_type="application/pdf" if status == "PROCESSED" else None,
            etag="0123abcd" if status == "PROCESSED" else None,
            error=f"{status.lower()} for the contract"
            if status in ("REJECTED", "FAILED")
            else None,
            processed_at=now if done else None,
        )
        conn.execute(
            "INSERT INTO processing_logs (file_id, tenant, from_status, to_status, message,"
            " trace_id) VALUES (%s, %s, NULL, 'PENDING', 'upload URL issued', NULL),"
            " (%s, %s, 'PENDING', %s, 'moved', %s)",
            (row["id"], tenant, row["id"], tenant, status, "0" * 32),
        )
        ids.append(str(row["id"]))
    multipart = add_file(
        conn,
        tenant,
        filename="contract parts.pdf",
        declared_size=12 * 1024**2,
        upload_id="contract-upload",
        part_size=5 * 1024**2,
        upload_expires_at=now + timedelta(days=1),
    )
    ids.append(str(multipart["id"]))
    return ids


def _add_webhooks(conn: Conn, tenant: str) -> list[str]:
    ids = []
    for n, enabled in enumerate((True, False)):
        endpoint = uuid.uuid4()
        conn.execute(
            "INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types, enabled,"
            " disabled_reason, failure_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                endpoint,
                tenant,
                f"https://hooks.example.com/contract/{n}",
                "whsec_" + "A" * 43 + "=",
                ["file.processed", "file.failed"],
                enabled,
                None if enabled else "too many failed deliveries",
                0 if enabled else 10,
            ),
        )
        conn.execute(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, attempt, status_code,"
            " duration_ms, error, succeeded) VALUES (%s, 'evt-1', 1, 500, 12, 'HTTP 500', false),"
            " (%s, 'evt-1', 2, 204, 8, NULL, true), (%s, 'evt-2', 1, NULL, NULL, 'refused', false)",
            (endpoint, endpoint, endpoint),
        )
        ids.append(str(endpoint))
    return ids
