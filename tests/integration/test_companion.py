"""Companion's S3 routes driven as ``@uppy/aws-s3`` 5.1.0 drives them (``tests.support.uppy``):
the presign function as a real process over HTTP, uploads to the local S3 server over HTTP (which
checks POST policies and signatures as MinIO does), and the process function settling each file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests

from filepipe import auth
from tests.support import multipart as mp
from tests.support.files import event_types, row_of, settled
from tests.support.pipeline import pipeline
from tests.support.processes import running
from tests.support.uppy import Uppy, form_post, meta_of, put_parts
from tests.support.waiting import free_port

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
MIB = 1024**2
MAX_SIZE = 12 * MIB
"""The size limit of this module's functions: 11 MiB in three parts fit, 15 MiB do not."""
PDF = mp.pdf_bytes(300 * 1024, seed=b"companion")
BIG = mp.pdf_bytes(11 * MIB, seed=b"companion-multipart")


@pytest.fixture(scope="module")
def endpoint(service_env: dict[str, str]) -> Iterator[str]:
    """The presign function's URL (Uppy's ``endpoint``), with its pipeline behind it."""
    port = free_port()
    with pipeline(service_env, FILEPIPE_MAX_UPLOAD_BYTES=str(MAX_SIZE)) as pipe:
        args = ["-m", "filepipe.server", "--target", "presign"]
        args += ["--source", "functions/presign/main.py", "--host", "127.0.0.1"]
        with running([*args, "--port", str(port)], port=port, env=pipe.env):
            yield f"http://127.0.0.1:{port}"


@pytest.fixture
def uppy(endpoint: str, conn: Conn) -> Uppy:
    return Uppy(endpoint, auth.create_key(conn, "companion-tenant"))


def file_id_of(key: str) -> str:
    return key.split("/")[1]


def test_a_single_file_goes_by_params_and_a_form_post_and_is_processed(
    uppy: Uppy, conn: Conn
) -> None:
    meta = meta_of("report.pdf", "application/pdf", caption="Q3")
    answer = uppy.params("report.pdf", "application/pdf", meta)
    assert answer.status_code == 200, answer.text
    signature = answer.json()
    assert set(signature) == {"method", "url", "fields", "headers"}
    assert signature["method"] == "POST" and signature["headers"] == {}
    key = signature["fields"]["key"]
    assert key.endswith("/report.pdf") and signature["fields"]["Content-Type"] == "application/pdf"
    file_id = file_id_of(key)
    pending = row_of(conn, file_id)
    assert pending["status"] == "PENDING" and pending["declared_size"] is None
    assert pending["metadata"] == {"caption": "Q3"}
    assert event_types(conn, file_id) == ["file.created"]

    posted = form_post(signature, "report.pdf", PDF)

    assert posted.status_code == 204, posted.text
    assert posted.headers["ETag"]
    row = settled(conn, file_id)
    assert (row["status"], row["size_bytes"], row["error"]) == ("PROCESSED", len(PDF), None)
    assert event_types(conn, file_id)[-1] == "file.processed"


def test_a_multipart_upload_goes_by_the_multipart_routes_and_is_processed(
    uppy: Uppy, conn: Conn
) -> None:
    created = uppy.create("big.pdf", "application/pdf", meta_of("big.pdf", "application/pdf"))
    assert created.status_code == 200, created.text
    assert set(created.json()) == {"key", "uploadId"}
    key, upload_id = created.json()["key"], created.json()["uploadId"]
    file_id = file_id_of(key)
    pending = row_of(conn, file_id)
    assert (pending["status"], pending["upload_id"], pending["declared_size"]) == (
        "PENDING",
        upload_id,
        None,
    )
    signed = uppy.sign_part(upload_id, key, 1)
    assert signed.status_code == 200 and set(signed.json()) == {"url", "method", "headers"}

    parts = put_parts(uppy, upload_id, key, BIG)
    listed = uppy.list_parts(upload_id, key)
    assert listed.status_code == 200, listed.text
    assert listed.json() == [
        {"PartNumber": p["PartNumber"], "Size": size, "ETag": p["ETag"]}
        for p, size in zip(parts, [5 * MIB, 5 * MIB, MIB], strict=True)
    ]
    completed = uppy.complete(upload_id, key, parts)

    assert completed.status_code == 200, completed.text
    assert completed.json() == {"location": f"/files/{file_id}", "key": key}
    row = settled(conn, file_id)
    assert (row["status"], row["declared_size"], row["size_bytes"]) == (
        "PROCESSED",
        len(BIG),
        len(BIG),
    )
    again = uppy.complete(upload_id, key, parts)  # Uppy retries: the same answer
    assert again.status_code == 200 and again.json() == completed.json()


def test_an_aborted_multipart_upload_is_cancelled(uppy: Uppy, conn: Conn) -> None:
    created = uppy.create("big.pdf", "application/pdf", {}).json()
    key, upload_id = created["key"], created["uploadId"]
    put_parts(uppy, upload_id, key, BIG[: 5 * MIB])

    aborted = uppy.abort(upload_id, key)

    assert aborted.status_code == 200 and aborted.json() == {}
    row = row_of(conn, file_id_of(key))
    assert row["status"] == "CANCELLED"
    assert event_types(conn, file_id_of(key))[-1] == "file.cancelled"
    assert uppy.abort(upload_id, key).json() == {}
    assert uppy.list_parts(upload_id, key).status_code == 409


def test_a_type_not_allowed_is_a_415(uppy: Uppy) -> None:
    meta = meta_of("run.exe", "application/x-msdownload")
    for answer in (
        uppy.params("run.exe", "application/x-msdownload", meta),
        uppy.create("run.exe", "application/x-msdownload", meta),
    ):
        assert answer.status_code == 415
        assert answer.headers["Content-Type"] == "application/problem+json"


def test_a_form_post_over_the_size_limit_is_refused_by_the_policy(uppy: Uppy, conn: Conn) -> None:
    signature = uppy.params("big.pdf", "application/pdf", {}).json()
    too_big = mp.pdf_bytes(MAX_SIZE + 1, seed=b"too-big")

    posted = form_post(signature, "big.pdf", too_big)

    assert posted.status_code == 400 and "<Code>EntityTooLarge</Code>" in posted.text
    assert row_of(conn, file_id_of(signature["fields"]["key"]))["status"] == "PENDING"


def test_parts_adding_up_over_the_size_limit_are_a_413_at_completion(
    uppy: Uppy, conn: Conn
) -> None:
    created = uppy.create("big.pdf", "application/pdf", {}).json()
    key, upload_id = created["key"], created["uploadId"]
    parts = put_parts(uppy, upload_id, key, mp.pdf_bytes(15 * MIB, seed=b"over"))

    completed = uppy.complete(upload_id, key, parts)

    assert completed.status_code == 413, completed.text
    assert completed.headers["Content-Type"] == "application/problem+json"
    assert row_of(conn, file_id_of(key))["status"] == "PENDING"


def test_another_tenants_upload_or_a_mismatched_key_is_a_404(
    uppy: Uppy, endpoint: str, conn: Conn
) -> None:
    created = uppy.create("big.pdf", "application/pdf", {}).json()
    key, upload_id = created["key"], created["uploadId"]
    stranger = Uppy(endpoint, auth.create_key(conn, "companion-stranger"))
    other_key = key.rsplit("/", 1)[0] + "/other.pdf"
    answers = [
        stranger.list_parts(upload_id, key),
        stranger.sign_part(upload_id, key, 1),
        stranger.complete(upload_id, key, [{"PartNumber": 1, "ETag": '"x"'}]),
        stranger.abort(upload_id, key),
        uppy.list_parts("not-this-upload", key),
        uppy.list_parts(upload_id, other_key),
        uppy.list_parts(upload_id, "no-file-id"),
    ]
    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert row_of(conn, file_id_of(key))["status"] == "PENDING"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "s3/params?type=application%2Fpdf", None),  # no filename
        ("GET", "s3/params?filename=a.pdf&type=application%2Fpdf&size=3", None),
        ("GET", "s3/params?filename=a.pdf&type=application%2Fpdf&metadata%5Bx=1", None),
        ("POST", "s3/multipart", {"filename": "a.pdf"}),  # no type
        ("POST", "s3/multipart", {"filename": "a.pdf", "type": "application/pdf", "size": 3}),
        ("GET", "s3/multipart/u/0?key=t%2Fx%2Fa.pdf", None),
        ("GET", "s3/multipart/u", None),  # no key
        ("POST", "s3/multipart/u/complete?key=t%2Fx%2Fa.pdf", {"parts": [{"PartNumber": 1}]}),
    ],
)
def test_bad_requests_are_400s(uppy: Uppy, method: str, path: str, body: Any) -> None:
    answer = uppy.call(method, path, body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_the_completion_path_is_no_part_number(uppy: Uppy) -> None:
    answer = uppy.call("GET", "s3/multipart/u/complete?key=t%2Fx%2Fa.pdf")
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"


def token_uppy(endpoint: str, api_key: str, **scope: Any) -> tuple[Uppy, str]:
    """An Uppy sending an upload token minted with ``scope``, and the token's id."""
    minted = requests.post(
        f"{endpoint}/upload-tokens",
        json=scope,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    assert minted.status_code == 201, minted.text
    return Uppy(endpoint, minted.json()["token"]), minted.json()["id"]


@pytest.fixture
def api_key_of_tenant(conn: Conn) -> str:
    return auth.create_key(conn, "companion-token-tenant")


def test_a_token_uploads_by_form_post_and_by_parts_and_both_are_processed(
    endpoint: str, api_key_of_tenant: str, conn: Conn
) -> None:
    uppy, token_id = token_uppy(endpoint, api_key_of_tenant, metadata={"order": "7"})

    signature = uppy.params("report.pdf", "application/pdf", meta_of("report.pdf", "x")).json()
    posted = form_post(signature, "report.pdf", PDF)
    created = uppy.create("big.pdf", "application/pdf", {"caption": "big"}).json()
    key, upload_id = created["key"], created["uploadId"]
    completed = uppy.complete(upload_id, key, put_parts(uppy, upload_id, key, BIG))

    assert posted.status_code == 204, posted.text
    assert completed.status_code == 200, completed.text
    single = settled(conn, file_id_of(signature["fields"]["key"]))
    multipart = settled(conn, file_id_of(key))
    assert (single["status"], single["size_bytes"]) == ("PROCESSED", len(PDF))
    assert (multipart["status"], multipart["declared_size"]) == ("PROCESSED", len(BIG))
    assert {str(single["upload_token_id"]), str(multipart["upload_token_id"])} == {token_id}
    assert single["metadata"] == {"order": "7"}
    assert multipart["metadata"] == {"caption": "big", "order": "7"}


def test_a_tokens_max_file_bytes_bounds_the_form_post_and_the_completion(
    endpoint: str, api_key_of_tenant: str, conn: Conn
) -> None:
    limit = 6 * MIB  # under the server's MAX_SIZE: the token's limit is the one that refuses
    uppy, _ = token_uppy(endpoint, api_key_of_tenant, max_file_bytes=limit)
    signature = uppy.params("big.pdf", "application/pdf", {}).json()
    created = uppy.create("big.pdf", "application/pdf", {}).json()
    key, upload_id = created["key"], created["uploadId"]

    posted = form_post(signature, "big.pdf", mp.pdf_bytes(limit + 1, seed=b"token-over"))
    completed = uppy.complete(upload_id, key, put_parts(uppy, upload_id, key, BIG))

    assert posted.status_code == 400 and "<Code>EntityTooLarge</Code>" in posted.text
    assert completed.status_code == 413, completed.text
    assert completed.json()["max_size"] == limit
    for file_key in (signature["fields"]["key"], key):
        assert row_of(conn, file_id_of(file_key))["status"] == "PENDING"


def test_a_tokens_types_and_max_files_hold_on_the_companion_routes(
    endpoint: str, api_key_of_tenant: str
) -> None:
    uppy, _ = token_uppy(endpoint, api_key_of_tenant, max_files=1, content_types=["text/plain"])

    refused_type = uppy.params("a.pdf", "application/pdf", {})
    first = uppy.params("a.txt", "text/plain", {})
    second = uppy.create("b.txt", "text/plain", {})

    assert refused_type.status_code == 415, refused_type.text
    assert first.status_code == 200, first.text
    assert second.status_code == 403, second.text
    assert second.headers["Content-Type"] == "application/problem+json"


def test_a_token_on_another_tokens_upload_is_a_404(
    endpoint: str, api_key_of_tenant: str, conn: Conn
) -> None:
    owner, _ = token_uppy(endpoint, api_key_of_tenant)
    other, _ = token_uppy(endpoint, api_key_of_tenant)
    created = owner.create("big.pdf", "application/pdf", {}).json()
    key, upload_id = created["key"], created["uploadId"]

    answers = [
        other.list_parts(upload_id, key),
        other.sign_part(upload_id, key, 1),
        other.complete(upload_id, key, [{"PartNumber": 1, "ETag": '"x"'}]),
        other.abort(upload_id, key),
    ]

    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert owner.list_parts(upload_id, key).status_code == 200
    assert row_of(conn, file_id_of(key))["status"] == "PENDING"
