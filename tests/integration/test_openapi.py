"""Contract: each HTTP function serves its own OpenAPI document, and the document describes what
its live responses really are (status, media type, body schema, required headers). The documents
themselves are checked in ``tests/contract/test_document.py``."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from psycopg.types.json import Jsonb

from filepipe import openapi
from tests.support.contract import conforms
from tests.support.files import add_file, tenants
from tests.support.functions import function_app

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"contract " * 50 + b"\n%%EOF\n"


@pytest.fixture
def presign_client(function_env: dict[str, str]) -> FlaskClient:
    return function_app("presign").test_client()


@pytest.fixture
def query_client(function_env: dict[str, str]) -> FlaskClient:
    return function_app("query").test_client()


@pytest.fixture
def key(conn: Conn) -> Iterator[tuple[str, str]]:
    with tenants(conn) as make:
        yield make()


@pytest.fixture
def webhooks_client(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.setenv("FILEPIPE_WEBHOOK_ALLOW_LOOPBACK", "true")
    return function_app("notify", "webhooks").test_client()


def test_each_function_serves_its_own_document(
    presign_client: FlaskClient, query_client: FlaskClient, webhooks_client: FlaskClient
) -> None:
    clients = {"presign": presign_client, "query": query_client, "webhooks": webhooks_client}
    for function, client in clients.items():
        response = client.get("/openapi.json")
        conforms(response, function, "/openapi.json", "GET")
        assert response.get_json() == openapi.document(function)
        assert response.headers["Cache-Control"] == "public, max-age=300"
        assert response.get_data() == openapi.response(function).get_data()


def test_presign_answers_as_documented(
    presign_client: FlaskClient, key: tuple[str, str], conn: Conn
) -> None:
    auth = {"Authorization": f"Bearer {key[1]}"}
    body = {
        "filename": "contract.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "metadata": {"project": "apollo"},
    }
    created = presign_client.post("/uploads", json=body, headers=auth)
    assert created.status_code == 201
    conforms(created, "presign", "/uploads", "POST")
    replay = presign_client.post("/uploads", json=body, headers={**auth, "Idempotency-Key": "k1"})
    again = presign_client.post("/uploads", json=body, headers={**auth, "Idempotency-Key": "k1"})
    assert again.headers["Idempotency-Replayed"] == "true"
    conforms(again, "presign", "/uploads", "POST")
    conflict = presign_client.post(
        "/uploads", json={**body, "size": 5}, headers={**auth, "Idempotency-Key": "k1"}
    )
    assert replay.status_code == 201 and conflict.status_code == 422

    for response, status in (
        (conflict, 422),
        (presign_client.post("/uploads", json={"size": 0}, headers=auth), 400),
        (presign_client.post("/uploads", data="{", headers=auth, mimetype="application/json"), 400),
        (presign_client.post("/uploads", json=body), 401),
        (presign_client.post("/uploads", json={**body, "size": 6 * 1024**4}, headers=auth), 413),
        (presign_client.post("/uploads", json={**body, "content_type": "x/y"}, headers=auth), 415),
    ):
        assert response.status_code == status, response.get_json()
        conforms(response, "presign", "/uploads", "POST")


def test_the_multipart_routes_answer_as_documented(
    presign_client: FlaskClient, key: tuple[str, str]
) -> None:
    auth = {"Authorization": f"Bearer {key[1]}"}
    body = {"filename": "parts.pdf", "content_type": "application/pdf", "size": 6 * 1024**2}
    created = presign_client.post("/uploads", json={**body, "multipart": True}, headers=auth)
    conforms(created, "presign", "/uploads", "POST")
    file_id = created.get_json()["id"]
    single = presign_client.post("/uploads", json={**body, "multipart": False}, headers=auth)
    single_id = single.get_json()["id"]
    digest = {"1": hashlib.sha256(b"part").hexdigest()}
    parts = f"/uploads/{file_id}/parts"
    complete = f"/uploads/{file_id}/complete"
    answers = [
        (presign_client.post(parts, json={"part_numbers": [1], "sha256": digest}, headers=auth),
         parts, "POST", 200),
        (presign_client.post(parts, json={"part_numbers": [3]}, headers=auth), parts, "POST", 400),
        (presign_client.get(parts, headers=auth), parts, "GET", 200),
        (presign_client.post(complete, json={"parts": [{"number": 1, "etag": '"x"'}]},
                             headers=auth), complete, "POST", 422),
        (presign_client.delete(f"/uploads/{file_id}", headers=auth), "/uploads/{id}", "DELETE",
         204),
        (presign_client.get(parts, headers=auth), parts, "GET", 409),
        (presign_client.delete(f"/uploads/{single_id}", headers=auth), "/uploads/{id}", "DELETE",
         409),
        (presign_client.get(f"/uploads/{uuid.uuid4()}/parts", headers=auth), parts, "GET", 404),
    ]  # fmt: skip
    for response, path, method, status in answers:
        assert response.status_code == status, response.get_json()
        conforms(response, "presign", path.replace(file_id, "{id}"), method)


def test_query_answers_as_documented(
    query_client: FlaskClient, key: tuple[str, str], conn: Conn
) -> None:
    tenant, api_key = key
    auth = {"Authorization": f"Bearer {api_key}"}
    rows = [add_file(conn, tenant, metadata=Jsonb({"a": "b"})) for _ in range(3)]
    processed = add_file(
        conn,
        tenant,
        status="PROCESSED",
        sha256="ab" * 32,
        declared_sha256="ab" * 32,
        size_bytes=10,
        content_type="application/pdf",
        etag="0123abcd",
        processed_at=rows[0]["created_at"],
    )
    conn.execute(
        "INSERT INTO processing_logs (file_id, tenant, from_status, to_status, message)"
        " VALUES (%s, %s, NULL, 'PENDING', 'x'), (%s, %s, 'PENDING', 'UPLOADED', 'y')",
        (processed["id"], tenant, processed["id"], tenant),
    )
    page = query_client.get("/files?limit=2", headers=auth)
    assert page.get_json()["next_cursor"]
    last = query_client.get(f"/files?limit=2&cursor={page.get_json()['next_cursor']}", headers=auth)
    assert last.get_json()["next_cursor"] is None
    for response in (page, last):
        conforms(response, "query", "/files", "GET")
    for bad in ("limit=500", "status=NOPE&sha256=1", "cursor=x.y", "colour=red"):
        response = query_client.get(f"/files?{bad}", headers=auth)
        assert response.status_code == 400
        conforms(response, "query", "/files", "GET")
    conforms(query_client.get("/files"), "query", "/files", "GET")

    one = query_client.get(f"/files/{processed['id']}", headers=auth)
    assert one.status_code == 200 and one.get_json()["status"] == "PROCESSED"
    not_modified = query_client.get(
        f"/files/{processed['id']}", headers={**auth, "If-None-Match": one.headers["ETag"]}
    )
    assert not_modified.status_code == 304
    logs = query_client.get(f"/files/{processed['id']}/logs", headers=auth)
    assert len(logs.get_json()["items"]) == 2
    for suffix, template in (("", "/files/{id}"), ("/logs", "/files/{id}/logs")):
        expected = [
            (query_client.get(f"/files/{processed['id']}{suffix}", headers=auth), 200),
            (query_client.get(f"/files/{uuid.uuid4()}{suffix}", headers=auth), 404),
            (query_client.get(f"/files/nope{suffix}", headers=auth), 400),
            (query_client.get(f"/files/{processed['id']}{suffix}"), 401),
        ]
        for response, status in expected:
            assert response.status_code == status
            conforms(response, "query", template, "GET")
    conforms(not_modified, "query", "/files/{id}", "GET")


def test_webhooks_answer_as_documented(webhooks_client: FlaskClient, key: tuple[str, str]) -> None:
    auth = {"Authorization": f"Bearer {key[1]}"}
    created = webhooks_client.post(
        "/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["file.processed"]},
        headers=auth,
    )
    conforms(created, "webhooks", "/webhooks", "POST")
    endpoint = created.get_json()["id"]
    conforms(webhooks_client.get("/webhooks", headers=auth), "webhooks", "/webhooks", "GET")
    conforms(
        webhooks_client.get(f"/webhooks/{endpoint}/deliveries", headers=auth),
        "webhooks",
        "/webhooks/{id}/deliveries",
        "GET",
    )
    invalid = webhooks_client.post("/webhooks", json={"url": "ftp://x", "events": []}, headers=auth)
    assert invalid.status_code == 400
    conforms(invalid, "webhooks", "/webhooks", "POST")
    conforms(webhooks_client.get("/webhooks"), "webhooks", "/webhooks", "GET")
    missing = webhooks_client.delete(f"/webhooks/{uuid.uuid4()}", headers=auth)
    conforms(missing, "webhooks", "/webhooks/{id}", "DELETE")
    deleted = webhooks_client.delete(f"/webhooks/{endpoint}", headers=auth)
    assert deleted.status_code == 204
    conforms(deleted, "webhooks", "/webhooks/{id}", "DELETE")
