"""POST /uploads against real PostgreSQL, the local S3 server and RabbitMQ."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests
from flask.testing import FlaskClient

from filepipe import auth, runtime
from filepipe.storage import create_s3_client
from tests.support.cli import filepipe_cli, last_line
from tests.support.functions import function_app
from tests.support.inbox import Inbox
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n" + b"0" * 1000 + b"\n%%EOF\n"


@pytest.fixture
def client(function_env: dict[str, str]) -> FlaskClient:
    return function_app("presign").test_client()


@pytest.fixture
def api_key(conn: psycopg.Connection[dict[str, Any]]) -> str:
    return auth.create_key(conn, "tenant-a")


@pytest.fixture
def other_key(conn: psycopg.Connection[dict[str, Any]]) -> str:
    return auth.create_key(conn, "tenant-b")


def upload_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "filename": "report 2026.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "metadata": {"project": "apollo"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def post(client: FlaskClient, key: str | None, body: Any, **headers: str) -> Any:
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return client.post(
        "/uploads", data=json.dumps(body), headers=headers, content_type="application/json"
    )


def counts(conn: psycopg.Connection[dict[str, Any]]) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM files) AS f, (SELECT count(*) FROM events) AS e,"
        " (SELECT count(*) FROM processing_logs) AS l"
    ).fetchone()
    assert row is not None
    return row["f"], row["e"], row["l"]


def test_upload_creates_pending_row_and_url_that_stores_the_object(
    client: FlaskClient,
    api_key: str,
    conn: psycopg.Connection[dict[str, Any]],
    settings: Any,
    notifications: Inbox,
) -> None:
    response = post(client, api_key, upload_body())

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "PENDING"
    assert body["key"].startswith(f"tenant-a/{body['id']}/")
    assert " " not in body["key"]
    row = conn.execute("SELECT * FROM files WHERE id = %s", (body["id"],)).fetchone()
    assert row is not None
    assert (row["tenant"], row["status"], row["filename"]) == (
        "tenant-a",
        "PENDING",
        "report 2026.pdf",
    )
    assert row["declared_size"] == len(PDF)
    assert row["declared_sha256"] == hashlib.sha256(PDF).hexdigest()
    assert row["declared_content_type"] == "application/pdf"
    assert row["metadata"] == {"project": "apollo"}
    event = conn.execute("SELECT * FROM events WHERE file_id = %s", (body["id"],)).fetchone()
    assert event is not None and event["type"] == "file.created"
    assert event["data"]["status"] == "PENDING" and event["data"]["tenant"] == "tenant-a"
    logs = conn.execute("SELECT to_status FROM processing_logs WHERE file_id = %s", (body["id"],))
    assert [r["to_status"] for r in logs] == ["PENDING"]

    upload = body["upload"]
    put = requests.request(
        upload["method"], upload["url"], data=PDF, headers=upload["headers"], timeout=10
    )
    assert put.status_code == 200, put.text
    stored = create_s3_client(settings).get_object(Bucket=row["bucket"], Key=row["key"])
    assert stored["Body"].read() == PDF
    assert stored["ContentType"] == "application/pdf"

    properties, notification = notifications.next()
    assert notification["EventName"] == "s3:ObjectCreated:Put"
    assert notification["Key"] == f"{row['bucket']}/{row['key']}"
    record = notification["Records"][0]
    assert record["s3"]["bucket"]["name"] == row["bucket"]
    assert record["s3"]["object"]["key"] == row["key"].replace("/", "%2F")
    assert record["s3"]["object"]["size"] == len(PDF)
    assert record["s3"]["object"]["eTag"] == stored["ETag"].strip('"')
    assert properties.content_type == "application/json"


def test_presigned_url_signs_type_length_checksum_create_only_and_expiry(
    client: FlaskClient, api_key: str
) -> None:
    body = post(client, api_key, upload_body()).get_json()
    query = parse_qs(urlsplit(body["upload"]["url"]).query)

    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-SignedHeaders"] == [
        "content-length;content-type;host;if-none-match;x-amz-checksum-sha256"
    ]
    checksum = base64.b64encode(hashlib.sha256(PDF).digest()).decode()
    assert body["upload"]["headers"] == {
        "Content-Type": "application/pdf",
        "If-None-Match": "*",
        "x-amz-checksum-sha256": checksum,
    }


def test_the_presigned_url_creates_the_object_once(
    client: FlaskClient, api_key: str, settings: Any, notifications: Inbox
) -> None:
    created = post(client, api_key, upload_body(sha256=None)).get_json()
    upload = created["upload"]
    first = requests.put(upload["url"], data=PDF, headers=upload["headers"], timeout=10)
    assert first.status_code == 200, first.text
    assert notifications.next()[1]["EventName"] == "s3:ObjectCreated:Put"

    other = PDF.replace(b"0", b"1")  # same type and length: only If-None-Match stops it
    again = requests.put(upload["url"], data=other, headers=upload["headers"], timeout=10)

    assert again.status_code == 412, again.text
    assert "<Code>PreconditionFailed</Code>" in again.text
    stored = create_s3_client(settings).get_object(Bucket=settings.s3_bucket, Key=created["key"])
    assert stored["Body"].read() == PDF
    assert notifications.empty()


def test_without_sha256_the_checksum_is_not_signed_and_expiry_is_configurable(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    monkeypatch.setenv("FILEPIPE_UPLOAD_URL_EXPIRES", "120")
    client = function_app("presign").test_client()
    body = post(client, api_key, upload_body(sha256=None)).get_json()
    query = parse_qs(urlsplit(body["upload"]["url"]).query)

    assert query["X-Amz-Expires"] == ["120"]
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host;if-none-match"]
    assert "x-amz-checksum-sha256" not in body["upload"]["headers"]
    assert body["upload"]["headers"]["If-None-Match"] == "*"


INVALID = [
    ("filename missing", upload_body(filename=None), 400),
    ("filename empty", upload_body(filename=""), 400),
    ("filename dot-dot", upload_body(filename=".."), 400),
    ("filename slash", upload_body(filename="../../etc/passwd"), 400),
    ("filename backslash", upload_body(filename="a\\b.pdf"), 400),
    ("filename control char", upload_body(filename="a\nb.pdf"), 400),
    ("filename bidi override", upload_body(filename="invoice\u202efdp.exe"), 400),
    ("filename too long", upload_body(filename="a" * 256), 400),
    ("content type malformed", upload_body(content_type="pdf"), 400),
    ("content type not allowed", upload_body(content_type="application/x-msdownload"), 415),
    ("size zero", upload_body(size=0), 400),
    ("size negative", upload_body(size=-5), 400),
    ("size not integer", upload_body(size="12"), 400),
    ("size float", upload_body(size=1.5), 400),
    ("size boolean", upload_body(size=True), 400),
    ("size over limit", upload_body(size=5 * 1024**4 + 1), 413),
    ("single PUT over 5 GiB", upload_body(size=5 * 1024**3 + 1, multipart=False), 413),
    ("multipart not boolean", upload_body(multipart=1), 400),
    ("part size under 5 MiB", upload_body(multipart=True, part_size=1024), 400),
    ("part size without multipart", upload_body(multipart=False, part_size=8 * 1024**2), 400),
    ("sha256 short", upload_body(sha256="abc"), 400),
    ("sha256 not hex", upload_body(sha256="z" * 64), 400),
    ("metadata not object", upload_body(metadata=["a"]), 400),
    ("metadata value not string", upload_body(metadata={"a": 1}), 400),
    ("metadata bad key", upload_body(metadata={"a b": "c"}), 400),
    ("metadata too big", upload_body(metadata={f"k{i}": "v" * 500 for i in range(8)}), 400),
    ("unknown field", upload_body(owner="me"), 400),
    ("not an object", ["filename"], 400),
]


@pytest.mark.parametrize(("case", "body", "status"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_input_is_refused_with_a_problem_and_writes_nothing(
    client: FlaskClient,
    api_key: str,
    conn: psycopg.Connection[dict[str, Any]],
    case: str,
    body: Any,
    status: int,
) -> None:
    before = counts(conn)
    response = post(client, api_key, body)

    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status and problem["detail"]
    assert counts(conn) == before


def test_protocol_errors_are_problems_and_write_nothing(
    client: FlaskClient, api_key: str, conn: psycopg.Connection[dict[str, Any]]
) -> None:
    before = counts(conn)
    auth_header = {"Authorization": f"Bearer {api_key}"}
    cases = [
        (
            client.post(
                "/uploads", data="{not json", content_type="application/json", headers=auth_header
            ),
            400,
        ),
        (
            client.post(
                "/uploads",
                data=json.dumps(upload_body()),
                content_type="text/plain",
                headers=auth_header,
            ),
            415,
        ),
        (client.get("/uploads", headers=auth_header), 405),
        (client.put("/uploads", headers=auth_header), 405),
        (client.post("/nowhere", headers=auth_header), 404),
        (post(client, None, upload_body()), 401),
        (post(client, "fpk_" + "x" * 43, upload_body()), 401),
        (post(client, "not-a-key", upload_body()), 401),
        (
            client.post(
                "/uploads",
                data=json.dumps(upload_body()),
                content_type="application/json",
                headers={"Authorization": f"Basic {api_key}"},
            ),
            401,
        ),
        (post(client, api_key, upload_body(), **{"Idempotency-Key": "bad key\t"}), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.get_json())
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == status
    assert cases[2][0].headers["Allow"] == "POST"
    assert cases[5][0].headers["WWW-Authenticate"].startswith("Bearer")
    assert counts(conn) == before


def test_idempotency_key_retry_returns_the_same_file(
    client: FlaskClient, api_key: str, other_key: str, conn: psycopg.Connection[dict[str, Any]]
) -> None:
    first = post(client, api_key, upload_body(), **{"Idempotency-Key": "retry-1"})
    again = post(client, api_key, upload_body(), **{"Idempotency-Key": "retry-1"})
    changed = post(client, api_key, upload_body(size=7), **{"Idempotency-Key": "retry-1"})
    other_tenant = post(client, other_key, upload_body(), **{"Idempotency-Key": "retry-1"})

    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["upload"]["expires_at"] == first.get_json()["upload"]["expires_at"]
    assert again.headers["Idempotency-Replayed"] == "true"
    assert changed.status_code == 422
    assert other_tenant.status_code == 201
    assert other_tenant.get_json()["id"] != first.get_json()["id"]
    rows = conn.execute(
        "SELECT tenant, count(*) AS n FROM files WHERE idempotency_key = 'retry-1' GROUP BY tenant"
        " ORDER BY tenant"
    ).fetchall()
    assert [(r["tenant"], r["n"]) for r in rows] == [("tenant-a", 1), ("tenant-b", 1)]
    events = conn.execute(
        "SELECT count(*) AS n FROM events WHERE file_id = %s", (first.get_json()["id"],)
    ).fetchone()
    assert events is not None and events["n"] == 1


def test_rows_are_scoped_to_the_callers_tenant(
    client: FlaskClient, api_key: str, other_key: str, conn: psycopg.Connection[dict[str, Any]]
) -> None:
    mine = post(client, api_key, upload_body()).get_json()
    theirs = post(client, other_key, upload_body()).get_json()

    assert mine["key"].startswith("tenant-a/") and theirs["key"].startswith("tenant-b/")
    tenants = {
        r["id"]: r["tenant"]
        for r in conn.execute(
            "SELECT id::text, tenant FROM files WHERE id = ANY(%s::uuid[])",
            ([mine["id"], theirs["id"]],),
        )
    }
    assert tenants == {mine["id"]: "tenant-a", theirs["id"]: "tenant-b"}


def test_created_event_is_published_in_binary_mode_to_k_sink(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    api_key: str,
    conn: psycopg.Connection[dict[str, Any]],
    event_receiver: Any,
) -> None:
    monkeypatch.setenv("K_SINK", event_receiver.url)
    client = function_app("presign").test_client()
    body = post(client, api_key, upload_body()).get_json()

    [request] = event_receiver.wait_for("/")
    assert request.headers["ce-subject"] == body["id"]
    assert request.headers["ce-type"] == "file.created"
    assert request.headers["ce-source"] == "/filepipe/presign"
    assert request.headers["ce-specversion"] == "1.0"
    assert json.loads(request.body)["file_id"] == body["id"]
    # published after the answer, by the runtime's background publisher
    event = wait_until(
        lambda: conn.execute(
            "SELECT * FROM events WHERE file_id = %s AND published_at IS NOT NULL", (body["id"],)
        ).fetchone(),
        what="the publish to be recorded",
    )
    assert request.headers["ce-id"] == event["id"]


def test_publish_failure_keeps_the_event_and_still_answers_201(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    api_key: str,
    conn: psycopg.Connection[dict[str, Any]],
    closed_port_url: str,
) -> None:
    monkeypatch.setenv("K_SINK", closed_port_url)
    client = function_app("presign").test_client()
    response = post(client, api_key, upload_body())

    assert response.status_code == 201
    file_id = response.get_json()["id"]
    row = conn.execute("SELECT status FROM files WHERE id = %s", (file_id,)).fetchone()
    assert row is not None and row["status"] == "PENDING"
    event = wait_until(  # the background publisher's attempt, after the answer
        lambda: conn.execute(
            "SELECT * FROM events WHERE file_id = %s AND attempts > 0", (file_id,)
        ).fetchone(),
        what="the publish attempt to be recorded",
    )
    assert event["published_at"] is None and "cannot reach the broker" in event["last_error"]


def test_create_key_cli_prints_a_working_key_on_its_last_line(
    service_env: dict[str, str], conn: psycopg.Connection[dict[str, Any]], client: FlaskClient
) -> None:
    result = filepipe_cli(service_env, "create-key", "--tenant", "cli-tenant")
    key = last_line(result)
    assert key.startswith("fpk_")
    row = conn.execute(
        "SELECT tenant FROM api_keys WHERE key_hash = %s", (hashlib.sha256(key.encode()).digest(),)
    ).fetchone()
    assert row is not None and row["tenant"] == "cli-tenant"
    assert key not in json.dumps(conn.execute("SELECT * FROM api_keys").fetchall(), default=str)
    assert key not in result.stderr
    assert post(client, key, upload_body()).status_code == 201


def test_closing_the_runtime_publishes_the_queued_events_first(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    api_key: str,
    conn: psycopg.Connection[dict[str, Any]],
    event_receiver: Any,
) -> None:
    monkeypatch.setenv("K_SINK", event_receiver.url)
    client = function_app("presign").test_client()
    ids = [post(client, api_key, upload_body()).get_json()["id"] for _ in range(3)]

    runtime.reset()  # Runtime.close: the background publisher sends what it holds, then stops

    assert not [t for t in threading.enumerate() if t.name == "filepipe-publisher"]
    row = conn.execute(
        "SELECT count(*) AS published FROM events"
        " WHERE file_id = ANY(%s::uuid[]) AND published_at IS NOT NULL",
        (ids,),
    ).fetchone()
    assert row is not None and row["published"] == 3
