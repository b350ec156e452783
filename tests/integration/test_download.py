"""``GET /files/{id}/download`` against real PostgreSQL and the local S3 server, which checks
presigned signatures and expiry as MinIO does: the URL fetches the verified bytes with the file's
name and type, and only for the caller's PROCESSED files."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
import pytest
import requests
from flask.testing import FlaskClient

from filepipe.config import Settings
from filepipe.storage import content_disposition
from tests.support.files import add_file, file_with_object
from tests.support.functions import function_app
from tests.support.pipeline import Pipeline, pipeline
from tests.support.uploads import put, request_upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"download " * 300 + b"\n%%EOF\n"
CSV = b"name,size\nalpha,1\n"
SAFE_HEADER = re.compile(
    r"attachment; filename=\"(?P<fallback>[A-Za-z0-9 ._()+-]+)\";"
    r" filename\*=UTF-8''(?P<encoded>[A-Za-z0-9!#$&+.^_`|~%-]+)"
)


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    with pipeline(service_env) as running_pipe:
        yield running_pipe


@pytest.fixture
def query(function_env: dict[str, str]) -> FlaskClient:
    return function_app("query").test_client()


def download(client: FlaskClient, key: str, file_id: Any, **params: str) -> Any:
    return client.get(
        f"/files/{file_id}/download",
        query_string=params,
        headers={"Authorization": f"Bearer {key}"},
    )


def test_a_processed_upload_downloads_its_exact_bytes_named_and_typed(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = request_upload(presign, api_key, PDF, filename="Quarterly report.pdf")
    put(upload, PDF)
    wait_until(
        lambda: conn.execute(
            "SELECT 1 FROM files WHERE id = %s AND status = 'PROCESSED'", (upload["id"],)
        ).fetchone(),
        timeout=30,
        what="the upload to be processed",
    )
    query = function_app("query").test_client()  # the same runtime as presign: the pipe's S3

    answer = download(query, api_key, upload["id"])

    assert answer.status_code == 200, answer.get_json()
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.get_json()
    assert set(body) == {"url", "expires_at"}
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert 290 <= (expires_at - datetime.now(expires_at.tzinfo)).total_seconds() <= 300
    fetched = requests.get(body["url"], timeout=10)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == PDF
    assert fetched.headers["Content-Type"] == "application/pdf"
    assert fetched.headers["Content-Disposition"] == (
        "attachment; filename=\"Quarterly report.pdf\"; filename*=UTF-8''Quarterly%20report.pdf"
    )
    signed = parse_qs(urlsplit(body["url"]).query)
    assert signed["X-Amz-Expires"] == ["300"]


def test_redirect_true_answers_302_to_the_url(
    query: FlaskClient, conn: Conn, settings: Settings, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    row = file_with_object(
        conn, settings, tenant, CSV, filename="sizes.csv", content_type="text/csv"
    )

    answer = download(query, key, row["id"], redirect="true")

    assert answer.status_code == 302
    assert answer.headers["Cache-Control"] == "no-store"
    fetched = requests.get(answer.headers["Location"], timeout=10)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == CSV
    assert fetched.headers["Content-Type"] == "text/csv"
    assert download(query, key, row["id"], redirect="false").status_code == 200


@pytest.mark.parametrize("status", ["PENDING", "PROCESSING", "REJECTED", "QUARANTINED"])
def test_a_file_not_processed_is_a_409_naming_its_status(
    query: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]], status: str
) -> None:
    tenant, key = make_tenant()
    row = add_file(conn, tenant, status=status)

    answer = download(query, key, row["id"])

    assert answer.status_code == 409
    assert answer.content_type == "application/problem+json"
    problem = answer.get_json()
    assert problem["file_status"] == status
    assert problem["file_id"] == str(row["id"])
    assert status in problem["detail"]


def test_another_tenants_file_or_an_unknown_one_is_a_404(
    query: FlaskClient, conn: Conn, settings: Settings, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    owner, _ = make_tenant()
    _, stranger_key = make_tenant()
    row = file_with_object(conn, settings, owner, CSV)

    for file_id in (row["id"], uuid.uuid4()):
        answer = download(query, stranger_key, file_id)
        assert answer.status_code == 404
        assert answer.content_type == "application/problem+json"
        assert "url" not in answer.get_json()


@pytest.mark.parametrize("redirect", ["1", "yes", "True", "TRUE"])
def test_redirect_is_true_or_false(
    query: FlaskClient, conn: Conn, make_tenant: Callable[[], tuple[str, str]], redirect: str
) -> None:
    tenant, key = make_tenant()
    row = add_file(conn, tenant, status="PROCESSED")

    answer = download(query, key, row["id"], redirect=redirect)

    assert answer.status_code == 400
    assert answer.get_json()["errors"] == [
        {"field": "redirect", "message": "must be true or false"}
    ]


def test_an_expired_url_is_refused_by_storage(
    conn: Conn,
    settings: Settings,
    make_tenant: Callable[[], tuple[str, str]],
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FILEPIPE_DOWNLOAD_URL_EXPIRES", "1")
    query = function_app("query").test_client()
    tenant, key = make_tenant()
    row = file_with_object(conn, settings, tenant, CSV)

    answer = download(query, key, row["id"])

    assert answer.status_code == 200
    url, expires_at = answer.get_json()["url"], answer.get_json()["expires_at"]
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["1"]

    def refusal() -> str | None:
        response = requests.get(url, timeout=10)  # a 403 Response is falsy: return its text
        return response.text if response.status_code == 403 else None

    refused = wait_until(refusal, timeout=10, interval=0.2, what="the download URL to expire")
    assert "<Code>AccessDenied</Code>" in refused
    assert "Request has expired" in refused
    assert time.time() > datetime.fromisoformat(expires_at).timestamp()


def test_an_unsafe_filename_gives_a_safe_header(
    query: FlaskClient, conn: Conn, settings: Settings, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    # Quotes, a backslash, a semicolon, percent-encoding, non-ASCII, fullwidth letters (NFKC
    # maps them), a Cyrillic look-alike a (U+0430), a division slash and a right-to-left override.
    name = 'say "hi"\\; 100%41 résumé \uff26\uff49\uff4c\uff45 \u0430\u2215b\u202egpj.exe'
    row = file_with_object(
        conn, settings, tenant, CSV, filename=name, content_type="text/plain; charset=utf-8"
    )

    answer = download(query, key, row["id"])

    assert answer.status_code == 200
    fetched = requests.get(answer.get_json()["url"], timeout=10)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == CSV
    assert fetched.headers["Content-Type"] == "text/plain; charset=utf-8"
    header = fetched.headers["Content-Disposition"]
    assert header == content_disposition(name)
    match = SAFE_HEADER.fullmatch(header)
    assert match is not None, header
    assert match["fallback"] == "say _hi___ 100_41 r_sum_ File __b_gpj.exe"
    assert unquote(match["encoded"], errors="strict") == (
        'say "hi"_; 100%41 résumé File \u0430_b_gpj.exe'
    )
