"""Migrations apply to an empty database, and applying them again changes nothing."""

from __future__ import annotations

import psycopg
import pytest

from filepipe import db

pytestmark = pytest.mark.integration

TABLES = {
    "tenants",
    "api_keys",
    "files",
    "processing_logs",
    "events",
    "webhook_endpoints",
    "webhook_deliveries",
}


def test_migrations_apply_once_and_then_are_a_no_op(empty_database: str) -> None:
    assert db.migrate(empty_database) >= 1
    assert db.migrate(empty_database) == 0

    with psycopg.connect(empty_database) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        indexes = {
            r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'files'")
        }
    assert tables >= TABLES
    assert {
        "files_tenant_created",
        "files_tenant_status_created",
        "files_tenant_type_created",
        "files_tenant_filename_created",
        "files_tenant_sha256_created",
    } <= indexes
