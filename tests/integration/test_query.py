"""The query function (functions/query/main.py) against real PostgreSQL and Redis: filters,
keyset pages, parameter validation, tenant isolation, ETags and the processing log."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from psycopg.types.json import Jsonb

from tests.support.files import BASE_TIME, add_file
from tests.support.functions import function_app

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
S1, S2 = "1a" * 32, "2b" * 32


@pytest.fixture
def client(function_env: dict[str, str]) -> FlaskClient:
    return function_app("query").test_client()


def get(client: FlaskClient, key: str | None, path: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get(path, query_string=params, headers=headers)


def listed(client: FlaskClient, key: str, **params: Any) -> list[str]:
    response = get(client, key, "/files", **params)
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def at(minutes: float) -> Any:
    return BASE_TIME + timedelta(minutes=minutes)


def test_each_filter_alone_and_combined(
    client: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    other, _ = make_tenant()
    f0 = add_file(
        conn,
        tenant,
        filename="a.csv",
        created_at=at(0),
        declared_content_type="text/csv; charset=utf-8",
    )
    f1 = add_file(
        conn,
        tenant,
        filename="a.csv",
        created_at=at(1),
        status="PROCESSED",
        declared_content_type="text/csv",
        content_type="text/csv",
        sha256=S1,
    )
    f2 = add_file(
        conn,
        tenant,
        filename="b.pdf",
        created_at=at(2),
        status="REJECTED",
        content_type="text/plain",
    )
    f3 = add_file(
        conn,
        tenant,
        filename="b.pdf",
        created_at=at(3),
        status="PROCESSED",
        content_type="application/pdf",
        sha256=S2,
    )
    f4 = add_file(
        conn,
        tenant,
        filename="c.png",
        created_at=at(4),
        status="FAILED",
        declared_content_type="image/png",
    )
    add_file(
        conn,
        other,
        filename="a.csv",
        created_at=at(1.5),
        status="PROCESSED",
        declared_content_type="text/csv",
        content_type="text/csv",
        sha256=S1,
    )
    i0, i1, i2, i3, i4 = (str(f["id"]) for f in (f0, f1, f2, f3, f4))

    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, [i4, i3, i2, i1, i0]),
        ({"status": "PROCESSED"}, [i3, i1]),
        ({"status": "processed"}, [i3, i1]),
        ({"status": "EXPIRED"}, []),
        ({"content_type": "text/csv"}, [i1, i0]),  # f0 by its declared type's essence
        ({"content_type": "text/plain"}, [i2]),  # the detected type wins over the declared
        ({"content_type": "application/pdf"}, [i3]),
        ({"filename": "b.pdf"}, [i3, i2]),
        ({"sha256": S1}, [i1]),
        ({"sha256": S1.upper()}, [i1]),
        ({"created_after": at(1).isoformat()}, [i4, i3, i2]),  # exclusive bounds
        ({"created_before": at(3).isoformat()}, [i2, i1, i0]),
        ({"created_after": at(0).isoformat(), "created_before": at(4).isoformat()}, [i3, i2, i1]),
        ({"created_after": "2026-01-01T02:01:30+02:00"}, [i4, i3, i2]),  # offsets honoured
        ({"status": "PROCESSED", "content_type": "text/csv"}, [i1]),
        ({"filename": "a.csv", "status": "PENDING"}, [i0]),
        (
            {
                "status": "PROCESSED",
                "content_type": "application/pdf",
                "filename": "b.pdf",
                "sha256": S2,
                "created_after": at(2).isoformat(),
                "created_before": at(4).isoformat(),
            },
            [i3],
        ),
    ]
    for params, expected in cases:
        assert listed(client, key, **params) == expected, params


def test_pages_have_no_duplicates_or_gaps_while_files_arrive(
    client: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    # Files 2-4 share one created_at: the id breaks the tie, also across a page boundary.
    for minute in (0, 1, 2, 2, 2, 3, 4, 5):
        add_file(conn, tenant, created_at=at(minute))
    everything = listed(client, key)
    assert len(everything) == 8

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = get(client, key, "/files", **params).get_json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        add_file(conn, tenant)  # a new file arrives between page requests
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == everything
    assert len(listed(client, key)) == 8 + pages  # the newcomers lead a fresh first page


def test_filtered_pages_keep_their_filter_and_an_exact_last_page_has_no_cursor(
    client: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    for minute in range(8):
        add_file(conn, tenant, created_at=at(minute), status=("PROCESSED", "FAILED")[minute % 2])
    first = get(client, key, "/files", status="PROCESSED", limit=2).get_json()
    second = get(
        client, key, "/files", status="PROCESSED", limit=2, cursor=first["next_cursor"]
    ).get_json()
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == listed(client, key, status="PROCESSED")
    assert second["next_cursor"] is None
    assert all(item["status"] == "PROCESSED" for item in first["items"] + second["items"])

    reused = get(client, key, "/files", status="FAILED", cursor=first["next_cursor"])
    assert reused.status_code == 400
    assert reused.get_json()["errors"][0]["field"] == "cursor"


def test_every_bad_parameter_is_a_400_problem(
    client: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    for minute in range(3):
        add_file(conn, tenant, created_at=at(minute))
    cursor = get(client, key, "/files", limit=1).get_json()["next_cursor"]
    payload, mac = cursor.split(".")
    tampered = f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{mac}"
    file_id = str(uuid.uuid4())
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/files", {"status": "DONE"}, "status"),
        ("/files", {"content_type": "pdf"}, "content_type"),
        ("/files", {"sha256": "abc"}, "sha256"),
        ("/files", {"created_after": "last week"}, "created_after"),
        ("/files", {"created_before": "2026-01-01T00:00:00"}, "created_before"),
        ("/files", {"limit": "201"}, "limit"),
        ("/files", {"limit": "0"}, "limit"),
        ("/files", {"limit": "x"}, "limit"),
        ("/files", {"cursor": tampered}, "cursor"),
        ("/files", {"cursor": "garbage"}, "cursor"),
        ("/files", {"page": "2"}, "page"),
        ("/files", {"filename": "a\x00"}, "filename"),
        ("/files/not-a-uuid", {}, "id"),
        ("/files/not-a-uuid/logs", {}, "id"),
        (f"/files/{file_id}", {"status": "x"}, "status"),
        (f"/files/{file_id}/logs", {"limit": "5"}, "limit"),
    ]
    for path, params, field in cases:
        response = get(client, key, path, **params)
        assert response.status_code == 400, (path, params, response.get_json())
        assert response.mimetype == "application/problem+json"
        assert [e["field"] for e in response.get_json()["errors"]] == [field], (path, params)


def test_tenants_see_only_their_own_files_on_every_route(
    client: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant_a, key_a = make_tenant()
    tenant_b, key_b = make_tenant()
    mine = str(add_file(conn, tenant_a)["id"])
    theirs = str(add_file(conn, tenant_b, filename="secret.pdf")["id"])

    for path in (f"/files/{theirs}", f"/files/{theirs}/logs"):
        assert get(client, key_b, path).status_code == 200  # also warms the cache for B
        response = get(client, key_a, path)
        assert response.status_code == 404, path
        assert b"secret.pdf" not in response.get_data()
    assert listed(client, key_a) == [mine]
    assert listed(client, key_a, filename="secret.pdf") == []
    assert listed(client, key_b) == [theirs]

    for path in ("/files", f"/files/{mine}", f"/files/{mine}/logs"):
        for key in (None, "fpk_" + "x" * 43, "not-a-key"):
            response = get(client, key, path)
            assert response.status_code == 401, (path, key)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_file_has_an_etag_and_if_none_match_answers_304(
    client: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    row = add_file(conn, tenant, metadata=Jsonb({"project": "apollo"}))
    path = f"/files/{row['id']}"
    first = get(client, key, path)
    assert first.status_code == 200
    body = first.get_json()
    assert body["id"] == str(row["id"]) and body["metadata"] == {"project": "apollo"}
    assert body["declared"]["content_type"] == "application/pdf" and body["version"] == 1
    etag = first.headers["ETag"]
    assert etag == f'"{row["id"]}.v1"'
    assert first.headers["Cache-Control"] == "private, no-cache"

    for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(
            path, headers={"Authorization": f"Bearer {key}", "If-None-Match": condition}
        )
        assert response.status_code == 304, condition
        assert response.headers["ETag"] == etag and response.get_data() == b""
    stale = client.get(path, headers={"Authorization": f"Bearer {key}", "If-None-Match": '"x"'})
    assert stale.status_code == 200

    assert get(client, key, f"/files/{uuid.uuid4()}").status_code == 404


def test_the_processing_log_oldest_first(
    client: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    file_id = add_file(conn, tenant)["id"]
    for from_status, to_status, message in (
        (None, "PENDING", "upload URL issued"),
        ("PENDING", "UPLOADED", "object arrived"),
        ("UPLOADED", "PROCESSING", "processing started"),
    ):
        conn.execute(
            "INSERT INTO processing_logs (file_id, tenant, from_status, to_status, message,"
            " trace_id) VALUES (%s, %s, %s, %s, %s, %s)",
            (file_id, tenant, from_status, to_status, message, "ab" * 16),
        )
    body = get(client, key, f"/files/{file_id}/logs").get_json()
    assert body["file_id"] == str(file_id)
    assert [(e["from_status"], e["to_status"]) for e in body["items"]] == [
        (None, "PENDING"),
        ("PENDING", "UPLOADED"),
        ("UPLOADED", "PROCESSING"),
    ]
    assert body["items"][0]["trace_id"] == "ab" * 16
    assert body["items"][0]["created_at"].endswith("Z")
    assert get(client, key, f"/files/{uuid.uuid4()}/logs").status_code == 404


def test_unknown_routes_and_methods(client: FlaskClient) -> None:
    assert client.get("/nope").status_code == 404
    response = client.post("/files")
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"
