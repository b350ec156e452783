"""Upload quotas of the presign function (``filepipe.upload.quotas``) against the real
PostgreSQL and Redis: the per-tenant rate, the PENDING caps (also under concurrency), replays
never refused, and Redis down letting uploads through at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from filepipe import auth, metrics
from tests.support.files import Conn, add_file, tenants
from tests.support.functions import function_app
from tests.support.metrics import samples_of, value

pytestmark = pytest.mark.integration


@pytest.fixture
def tenant(conn: Conn) -> Iterator[tuple[str, str]]:
    with tenants(conn) as make:
        yield make()


def presign_with(monkeypatch: pytest.MonkeyPatch, **settings: str) -> FlaskClient:
    """The presign function with these ``FILEPIPE_*`` settings (given without the prefix)."""
    for name, setting in settings.items():
        monkeypatch.setenv(f"FILEPIPE_{name.upper()}", setting)
    return function_app("presign").test_client()


def upload(
    client: FlaskClient, api_key: str, *, size: int = 3, idempotency_key: str | None = None
) -> TestResponse:
    headers = {"Authorization": f"Bearer {api_key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    body = {"filename": "a.pdf", "content_type": "application/pdf", "size": size}
    return client.post("/uploads", json=body, headers=headers)


def too_many(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 429, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    body: dict[str, Any] = response.get_json()
    return body


def test_over_the_rate_is_a_429_with_retry_after_and_a_replay_still_succeeds(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tenant: tuple[str, str]
) -> None:
    # one upload per 100 s: no refill however slowly a loaded machine runs the test
    client = presign_with(monkeypatch, upload_rate="0.01", upload_burst="3")
    _, api_key = tenant
    first = upload(client, api_key, idempotency_key="first")
    assert first.status_code == 201
    assert [upload(client, api_key).status_code for _ in range(2)] == [201, 201]

    body = too_many(upload(client, api_key))
    assert body["quota"] == "upload_rate"
    refusals = samples_of(metrics.get().quota_refusals)
    assert value(refusals, "filepipe_quota_refusals_total", quota="upload_rate") == 1
    assert "0.01 per second" in body["detail"]
    assert 60 < refused_after(upload(client, api_key)) <= 100  # the next slot, up to 100 s away

    replay = upload(client, api_key, idempotency_key="first")
    assert replay.status_code == 201
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert replay.get_json()["id"] == first.get_json()["id"]


def refused_after(response: TestResponse) -> int:
    too_many(response)
    return int(response.headers["Retry-After"])


def test_each_tenant_has_its_own_rate(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, conn: Conn
) -> None:
    client = presign_with(monkeypatch, upload_rate="0.1", upload_burst="1")
    with tenants(conn) as make:
        (_, one), (_, other) = make(), make()
        assert upload(client, one).status_code == 201
        too_many(upload(client, one))
        assert upload(client, other).status_code == 201


def test_the_pending_files_cap_names_the_cap_and_the_count(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tenant: tuple[str, str],
    conn: Conn,
) -> None:
    client = presign_with(monkeypatch, max_pending_files="2")
    name, api_key = tenant
    first = upload(client, api_key, idempotency_key="first")
    assert upload(client, api_key).status_code == 201

    body = too_many(upload(client, api_key))
    assert body["quota"] == "pending_files" and body["limit"] == 2 and body["current"] == 2
    assert "max_pending_files" in body["detail"] and "2 PENDING" in body["detail"]
    replay = upload(client, api_key, idempotency_key="first")
    assert replay.status_code == 201 and replay.get_json()["id"] == first.get_json()["id"]
    assert pending_count(conn, name) == 2

    conn.execute("UPDATE files SET status = 'EXPIRED' WHERE id = %s", (first.get_json()["id"],))
    assert upload(client, api_key).status_code == 201


def test_the_pending_bytes_cap_counts_this_upload(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tenant: tuple[str, str]
) -> None:
    client = presign_with(monkeypatch, max_pending_bytes="100")
    _, api_key = tenant
    assert upload(client, api_key, size=60).status_code == 201

    body = too_many(upload(client, api_key, size=41))
    assert body["quota"] == "pending_bytes" and body["limit"] == 100 and body["current"] == 60
    assert "max_pending_bytes (100)" in body["detail"] and "60 bytes" in body["detail"]
    assert upload(client, api_key, size=40).status_code == 201


def test_concurrent_uploads_never_pass_the_cap(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tenant: tuple[str, str],
    conn: Conn,
) -> None:
    client = presign_with(monkeypatch, max_pending_files="5", db_pool_max="8")
    name, api_key = tenant
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: upload(client, api_key).status_code, range(24)))
    assert statuses == [201] * 5 + [429] * 19
    assert pending_count(conn, name) == 5


def test_with_redis_down_uploads_go_on_unchecked_at_once(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tenant: tuple[str, str],
    closed_port_url: str,
) -> None:
    redis_down = closed_port_url.replace("http://", "redis://")
    client = presign_with(monkeypatch, redis_url=redis_down, upload_rate="0.1", upload_burst="1")
    _, api_key = tenant
    started = time.monotonic()
    assert [upload(client, api_key).status_code for _ in range(3)] == [201] * 3
    assert time.monotonic() - started < 5
    unchecked = samples_of(metrics.get().quota_unchecked)
    assert value(unchecked, "filepipe_quota_unchecked_total") == 3


def test_a_companion_upload_counts_against_the_rate(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tenant: tuple[str, str]
) -> None:
    client = presign_with(monkeypatch, upload_rate="0.1", upload_burst="1")
    _, api_key = tenant
    headers = {"Authorization": f"Bearer {api_key}"}
    query = {"filename": "a.pdf", "type": "application/pdf"}
    assert client.get("/s3/params", query_string=query, headers=headers).status_code == 200
    too_many(client.get("/s3/params", query_string=query, headers=headers))


def pending_count(conn: Conn, tenant: str) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM files WHERE tenant = %s AND status = 'PENDING'", (tenant,)
    ).fetchone()
    assert row is not None
    return int(row["n"])


def test_the_pending_counts_follow_every_change_of_a_file(conn: Conn) -> None:
    """The trigger-kept ``pending_counts`` row equals counting the tenant's PENDING files after
    inserts (of known and unknown size), declarations, transitions and deletes."""
    tenant = f"counts-{uuid.uuid4().hex[:8]}"
    auth.create_key(conn, tenant)

    def counted() -> tuple[int, int]:
        row = conn.execute(
            "SELECT files, bytes FROM pending_counts WHERE tenant = %s", (tenant,)
        ).fetchone()
        return (int(row["files"]), int(row["bytes"])) if row else (0, 0)

    def actual() -> tuple[int, int]:
        row = conn.execute(
            "SELECT count(*) AS files, coalesce(sum(declared_size), 0) AS bytes FROM files"
            " WHERE tenant = %s AND status = 'PENDING'",
            (tenant,),
        ).fetchone()
        assert row is not None
        return int(row["files"]), int(row["bytes"])

    one, two = add_file(conn, tenant, declared_size=10), add_file(conn, tenant, declared_size=None)
    three = add_file(conn, tenant, declared_size=5, status="PROCESSED")
    assert counted() == actual() == (2, 10)
    conn.execute("UPDATE files SET declared_size = 7 WHERE id = %s", (two["id"],))
    assert counted() == actual() == (2, 17)
    conn.execute("UPDATE files SET status = 'UPLOADED' WHERE id = %s", (one["id"],))
    conn.execute("UPDATE files SET status = 'PENDING' WHERE id = %s", (three["id"],))
    assert counted() == actual() == (2, 12)
    conn.execute("DELETE FROM files WHERE tenant = %s", (tenant,))
    assert counted() == actual() == (0, 0)
