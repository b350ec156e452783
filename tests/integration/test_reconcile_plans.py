"""Reconcile's searches are served by their indexes (EXPLAIN over a few thousand analysed rows,
most of them settled, as in a running system): unsettled files by ``files_unsettled_age``,
PROCESSED files to check by ``files_processed_checked``, objects past their retention by
``files_retained_objects``, and each prune of history by its table's age index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from filepipe.files.store import (
    BACKOFF_CAP,
    RETAINED_STATEMENT,
    UNCHECKED_STATEMENT,
    UNSETTLED_STATEMENT,
)
from filepipe.retention import PRUNE_BATCH, SEARCHES
from tests.integration.test_query_plans import assert_index_plan, plan_nodes
from tests.support.files import add_many, tenants

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
ROWS = 3000
INDEXES = {
    "events": "events_published",
    "processing_logs": "processing_logs_created",
    "webhook_deliveries": "webhook_deliveries_created",
    "webhook_messages": "webhook_messages_settled",
}


@pytest.fixture
def tenant(conn: Conn) -> Iterator[str]:
    """A tenant with ``ROWS`` files one in 97 of which is unsettled, purged or checked long ago,
    and history a few percent of which is older than the retention."""
    with tenants(conn) as make:
        name, _ = make()
        add_many(conn, name, ROWS)
        conn.execute(
            "UPDATE files SET status = 'PROCESSED', checked_at = now() WHERE tenant = %s"
            " AND status IN ('PENDING', 'UPLOADED', 'PROCESSING') AND filename <> 'f5'",
            (name,),
        )
        conn.execute(
            "UPDATE files SET purged_at = updated_at WHERE tenant = %s AND filename <> 'f5'"
            " AND status IN ('REJECTED', 'EXPIRED', 'FAILED')",
            (name,),
        )
        conn.execute(
            "INSERT INTO processing_logs (file_id, tenant, to_status, created_at)"
            " SELECT id, tenant, status, now() - (CASE WHEN filename = 'f5' THEN 40 ELSE 1 END)"
            " * interval '1 day' FROM files WHERE tenant = %s",
            (name,),
        )
        conn.execute(
            "INSERT INTO events (id, type, source, subject, tenant, file_id, data,"
            " published_at)"
            " SELECT 'plan-' || id, 'file.created', '/test', id::text, tenant, id, '{}',"
            " now() - (CASE WHEN filename = 'f5' THEN 40 ELSE 1 END) * interval '1 day'"
            " FROM files WHERE tenant = %s",
            (name,),
        )
        endpoint = conn.execute(
            "INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types)"
            " VALUES (gen_random_uuid(), %s, 'https://example.com/hook', 'whsec_test',"
            " ARRAY['file.created']) RETURNING id",
            (name,),
        ).fetchone()["id"]  # type: ignore[index]
        conn.execute(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, attempt, succeeded,"
            " created_at)"
            " SELECT %s, 'e', g, true, now() - (CASE WHEN mod(g, 97) = 5 THEN 40 ELSE 1 END)"
            " * interval '1 day' FROM generate_series(1, %s) AS g",
            (endpoint, ROWS),
        )
        conn.execute(
            "INSERT INTO webhook_messages (endpoint_id, event_id, event_type, payload, state,"
            " updated_at)"
            " SELECT %s, 'e' || g, 'file.created', '{}',"
            " (ARRAY['pending', 'delivered', 'failed'])[1 + mod(g, 3)],"
            " now() - (CASE WHEN mod(g, 97) = 5 THEN 40 ELSE 1 END) * interval '1 day'"
            " FROM generate_series(1, %s) AS g",
            (endpoint, ROWS),
        )
        for table in INDEXES.keys() | {"files"}:
            conn.execute(f"ANALYZE {table}")
        yield name
        conn.execute("DELETE FROM webhook_endpoints WHERE id = %s", (endpoint,))


def test_unsettled_files_are_found_by_their_age_index(conn: Conn, tenant: str) -> None:
    now = datetime.now(UTC)
    params = {
        "now": now,
        "quiet_since": now - timedelta(seconds=60),
        "grace": timedelta(seconds=60),
        "stuck_after": timedelta(seconds=120),
        "cap": BACKOFF_CAP,
        "limit": 200,
    }
    assert_index_plan(plan_nodes(conn, UNSETTLED_STATEMENT, params), "files_unsettled_age")


def test_processed_files_to_check_and_objects_to_remove_are_found_by_their_indexes(
    conn: Conn, tenant: str
) -> None:
    assert_index_plan(plan_nodes(conn, UNCHECKED_STATEMENT, (50,)), "files_processed_checked")
    now = datetime.now(UTC)
    params = {"now": now, "settled_before": now - timedelta(days=7), "limit": 200}
    assert_index_plan(plan_nodes(conn, RETAINED_STATEMENT, params), "files_retained_objects")


def test_each_prune_of_history_reads_its_age_index(conn: Conn, tenant: str) -> None:
    params = {"before": datetime.now(UTC) - timedelta(days=30), "limit": PRUNE_BATCH}
    for table, search in SEARCHES.items():
        assert_index_plan(plan_nodes(conn, search, params), INDEXES[table])
