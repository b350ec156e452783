"""Multipart uploads end to end: the presign function's routes, parts PUT over HTTP to the local
S3 server (which checks their signatures, lengths and digests as MinIO does), and the process
function settling the completed object."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from flask.testing import FlaskClient

from filepipe import auth
from filepipe.config import Settings
from filepipe.storage import create_s3_client
from tests.support import multipart as mp
from tests.support.files import settled
from tests.support.pipeline import Pipeline, pipeline
from tests.support.uploads import put, request_upload

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
DATA = mp.pdf_bytes(2 * mp.PART_SIZE + 1024 * 1024)
"""Three parts: two of 5 MiB and a last one of 1 MiB."""


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    with pipeline(service_env) as running_pipe:
        yield running_pipe


def status_of(conn: Conn, file_id: str) -> str:
    row = conn.execute("SELECT status FROM files WHERE id = %s", (file_id,)).fetchone()
    assert row is not None
    return str(row["status"])


def open_upload_ids(settings: Settings, key: str) -> list[str]:
    listed = create_s3_client(settings).list_multipart_uploads(Bucket="uploads", Prefix=key)
    return [upload["UploadId"] for upload in listed.get("Uploads", [])]


def test_a_multipart_upload_is_completed_and_processed_with_its_whole_sha256(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn, settings: Settings
) -> None:
    file = mp.created(presign, api_key, DATA)

    upload = file["upload"]
    assert file["status"] == "PENDING"
    assert upload["method"] == "MULTIPART"
    assert upload["part_size"] == mp.PART_SIZE and upload["part_count"] == 3
    assert open_upload_ids(settings, file["key"]) == [upload["upload_id"]]
    expires_at = datetime.fromisoformat(upload["expires_at"])
    assert 86390 < (expires_at - datetime.now(UTC)).total_seconds() <= 86400
    row = conn.execute("SELECT upload_id, part_size FROM files WHERE id = %s", (file["id"],))
    assert row.fetchone() == {"upload_id": upload["upload_id"], "part_size": mp.PART_SIZE}

    etags = mp.upload_parts(presign, api_key, file["id"], DATA, [1, 2, 3])
    sha256 = hashlib.sha256(DATA).hexdigest()
    answer = mp.complete(presign, api_key, file["id"], etags, sha256=sha256)

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "PENDING"
    assert answer.get_json()["declared"]["sha256"] == sha256
    done = settled(conn, file["id"])
    assert done["status"] == "PROCESSED", done["error"]
    assert done["sha256"] == sha256 and done["size_bytes"] == len(DATA)
    assert done["etag"].endswith("-3")  # S3's multipart ETag: md5 of the parts' md5s, "-N"
    assert open_upload_ids(settings, file["key"]) == []


def test_an_upload_resumes_from_the_parts_storage_lists(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    file = mp.created(presign, api_key, DATA)
    first = mp.upload_parts(presign, api_key, file["id"], DATA, [1, 3])

    listed = mp.stored_parts(presign, api_key, file["id"])

    assert listed.status_code == 200, listed.get_json()
    body = listed.get_json()
    assert body["part_size"] == mp.PART_SIZE and body["part_count"] == 3
    assert [(p["number"], p["etag"], p["size"]) for p in body["parts"]] == [
        (1, first[1], mp.PART_SIZE),
        (3, first[3], len(DATA) - 2 * mp.PART_SIZE),
    ]
    assert all(p["sha256"] in (None, hashlib.sha256(mp.chunk(DATA, p["number"])).hexdigest())
               for p in body["parts"])  # fmt: skip
    rest = mp.upload_parts(presign, api_key, file["id"], DATA, [2])
    etags = {p["number"]: p["etag"] for p in body["parts"]} | rest
    assert mp.complete(presign, api_key, file["id"], etags).status_code == 200
    assert settled(conn, file["id"])["status"] == "PROCESSED"


def test_a_sha256_given_at_completion_that_the_bytes_do_not_have_rejects_the_file(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    file = mp.created(presign, api_key, DATA)
    etags = mp.upload_parts(presign, api_key, file["id"], DATA, [1, 2, 3])

    answer = mp.complete(presign, api_key, file["id"], etags, sha256="ab" * 32)

    assert answer.status_code == 200, answer.get_json()
    done = settled(conn, file["id"])
    assert done["status"] == "REJECTED"
    assert done["error"] == (
        f"sha256 {hashlib.sha256(DATA).hexdigest()} differs from the declared {'ab' * 32}"
    )


def test_completing_twice_answers_the_file_again(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    file = mp.created(presign, api_key, DATA)
    etags = mp.upload_parts(presign, api_key, file["id"], DATA, [1, 2, 3])
    assert mp.complete(presign, api_key, file["id"], etags).status_code == 200

    again = mp.complete(presign, api_key, file["id"], etags)

    assert again.status_code == 200, again.get_json()
    assert again.get_json()["id"] == file["id"]
    settled(conn, file["id"])
    late = mp.complete(presign, api_key, file["id"], etags)
    assert late.status_code == 200 and late.get_json()["status"] == "PROCESSED"


def problem_fields(answer: Any) -> list[str]:
    return [error["field"] for error in answer.get_json()["errors"]]


def test_completion_is_refused_when_the_parts_do_not_make_the_declared_file(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn, settings: Settings
) -> None:
    file = mp.created(presign, api_key, DATA)
    etags = mp.upload_parts(presign, api_key, file["id"], DATA, [1, 2])

    missing = mp.complete(presign, api_key, file["id"], etags)
    wrong_etag = mp.complete(presign, api_key, file["id"], {**etags, 2: '"' + "0" * 32 + '"'})

    assert missing.status_code == 422
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert "missing: 3" in missing.get_json()["detail"]
    assert "not uploaded: 3" in missing.get_json()["detail"]
    assert wrong_etag.status_code == 422
    assert "parts.2.etag" in problem_fields(wrong_etag)
    # A part of the wrong size, stored behind the API's back (its URLs sign the length).
    s3 = create_s3_client(settings)
    short = s3.upload_part(
        Bucket="uploads",
        Key=file["key"],
        UploadId=file["upload"]["upload_id"],
        PartNumber=3,
        Body=b"x" * 10,
    )
    wrong_size = mp.complete(presign, api_key, file["id"], {**etags, 3: short["ETag"]})
    assert wrong_size.status_code == 422
    assert set(problem_fields(wrong_size)) == {"parts.3.size", "size"}
    assert status_of(conn, file["id"]) == "PENDING"
    assert open_upload_ids(settings, file["key"]) == [file["upload"]["upload_id"]]


def test_a_sha256_at_completion_must_be_the_declared_one(
    pipe: Pipeline, presign: FlaskClient, api_key: str
) -> None:
    file = mp.created(presign, api_key, DATA, sha256=hashlib.sha256(DATA).hexdigest())
    etags = mp.upload_parts(presign, api_key, file["id"], DATA, [1, 2, 3])

    answer = mp.complete(presign, api_key, file["id"], etags, sha256="cd" * 32)

    assert answer.status_code == 422
    assert problem_fields(answer) == ["sha256"]


def test_abort_cancels_the_file_emits_file_cancelled_and_removes_the_parts(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn, settings: Settings
) -> None:
    file = mp.created(presign, api_key, DATA)
    mp.upload_parts(presign, api_key, file["id"], DATA, [1])

    answer = mp.abort(presign, api_key, file["id"])

    assert answer.status_code == 204, answer.get_json()
    assert status_of(conn, file["id"]) == "CANCELLED"
    assert open_upload_ids(settings, file["key"]) == []
    event = conn.execute(
        "SELECT id, data, published_at FROM events WHERE file_id = %s AND type = 'file.cancelled'",
        (file["id"],),
    ).fetchone()
    assert event is not None and event["published_at"] is not None
    assert event["data"]["status"] == "CANCELLED"
    received = pipe.notify.wait_for("/", id=event["id"])
    assert json.loads(received[0].body)["file_id"] == file["id"]
    assert mp.abort(presign, api_key, file["id"]).status_code == 204
    for refused in (
        mp.presign(presign, api_key, file["id"], [1]),
        mp.stored_parts(presign, api_key, file["id"]),
        mp.complete(presign, api_key, file["id"], {1: '"x"'}),
    ):
        assert refused.status_code == 409
        assert refused.get_json()["file_status"] == "CANCELLED"


def test_a_completed_upload_cannot_be_aborted(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    file = mp.created(presign, api_key, DATA)
    etags = mp.upload_parts(presign, api_key, file["id"], DATA, [1, 2, 3])
    assert mp.complete(presign, api_key, file["id"], etags).status_code == 200

    answer = mp.abort(presign, api_key, file["id"])

    assert answer.status_code == 409
    assert settled(conn, file["id"])["status"] == "PROCESSED"


def every_route(client: FlaskClient, key: str, file_id: str) -> list[Any]:
    """The answers of the four multipart routes for ``file_id``."""
    return [
        mp.presign(client, key, file_id, [1]),
        mp.stored_parts(client, key, file_id),
        mp.complete(client, key, file_id, {1: '"x"'}),
        mp.abort(client, key, file_id),
    ]


def test_the_multipart_routes_refuse_a_single_put_file(
    pipe: Pipeline, presign: FlaskClient, api_key: str
) -> None:
    single = request_upload(presign, api_key, b"%PDF-1.7\n%%EOF\n")
    assert single["upload"]["method"] == "PUT"

    for answer in every_route(presign, api_key, single["id"]):
        assert answer.status_code == 409
        assert answer.get_json()["file_status"] == "PENDING"
        assert "single-PUT" in answer.get_json()["detail"]


def test_another_tenants_upload_is_a_404(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    file = mp.created(presign, api_key, DATA)
    stranger = auth.create_key(conn, "multipart-stranger")

    for answer in every_route(presign, stranger, file["id"]):
        assert answer.status_code == 404
    assert mp.stored_parts(presign, api_key, file["id"]).status_code == 200


def test_an_idempotent_replay_answers_the_same_upload_and_leaves_no_other_open(
    pipe: Pipeline, presign: FlaskClient, api_key: str, settings: Settings
) -> None:
    headers = {**mp.auth(api_key), "Idempotency-Key": f"mp-{hashlib.sha256(DATA).hexdigest()[:32]}"}
    body = {"filename": "big.pdf", "content_type": "application/pdf", "size": len(DATA),
            "multipart": True}  # fmt: skip

    first = presign.post("/uploads", json=body, headers=headers)
    again = presign.post("/uploads", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotency-Replayed"] == "true"
    upload_id = first.get_json()["upload"]["upload_id"]
    assert again.get_json()["upload"] == first.get_json()["upload"]
    assert open_upload_ids(settings, first.get_json()["key"]) == [upload_id]


def test_part_urls_sign_each_parts_exact_length_and_digest(
    pipe: Pipeline, presign: FlaskClient, api_key: str
) -> None:
    file = mp.created(presign, api_key, DATA)
    digest = hashlib.sha256(mp.chunk(DATA, 3)).hexdigest()

    answer = mp.presign(presign, api_key, file["id"], [3, 1], sha256={"3": digest})

    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    last, first = body["parts"]
    assert (last["number"], first["number"]) == (3, 1)
    assert set(last["headers"]) == {"x-amz-checksum-sha256"}  # a browser may set it
    assert first["headers"] == {}  # the length is signed but sent by the client itself
    for part in (last, first):
        assert "content-length" in parse_qs(urlsplit(part["url"]).query)["X-Amz-SignedHeaders"][0]
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert 890 <= (expires_at - datetime.now(UTC)).total_seconds() <= 900
    wrong = mp.put_part(last, b"y" * (len(DATA) - 2 * mp.PART_SIZE))
    assert wrong.status_code == 400 and "XAmzContentChecksumMismatch" in wrong.text
    longer = mp.put_part(first, mp.chunk(DATA, 1) + b"!")
    assert longer.status_code == 403 and "SignatureDoesNotMatch" in longer.text
    assert mp.stored_parts(presign, api_key, file["id"]).get_json()["parts"] == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"part_size": 5 * mp.MIB - 1}, 400, "part_size"),
        ({"part_size": 5 * 1024**3 + 1}, 400, "part_size"),
        ({"size": 10_001 * 5 * mp.MIB}, 400, "part_size"),
        ({"multipart": "yes"}, 400, "multipart"),
        ({"multipart": False}, 400, "part_size"),
        ({"multipart": False, "part_size": None, "size": 5 * 1024**3 + 1}, 413, None),
        ({"size": 5 * 1024**4 + 1}, 413, None),
    ],
)
def test_part_count_and_size_limits(
    pipe: Pipeline,
    presign: FlaskClient,
    api_key: str,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    answer = mp.create(presign, api_key, DATA, **body)

    assert answer.status_code == status, answer.get_json()
    if field is not None:
        assert [error["field"] for error in answer.get_json()["errors"]] == [field]


def test_the_part_size_is_raised_to_keep_at_most_10000_parts_and_size_picks_the_method(
    pipe: Pipeline, presign: FlaskClient, api_key: str
) -> None:
    huge = mp.created(presign, api_key, DATA, size=200 * 1024**3, part_size=None, multipart=None)
    threshold = mp.created(presign, api_key, DATA, size=64 * mp.MIB, part_size=None, multipart=None)
    small = mp.created(presign, api_key, DATA, size=len(DATA), part_size=None, multipart=None)

    assert huge["upload"]["part_size"] == 21 * mp.MIB  # ceil(200 GiB / 10000) in whole MiB
    assert huge["upload"]["part_count"] == 9753
    assert threshold["upload"]["method"] == "MULTIPART"
    assert threshold["upload"]["part_size"] == 16 * mp.MIB
    assert small["upload"]["method"] == "PUT"
    put(small, DATA)


@pytest.mark.parametrize(
    "body",
    [
        {"part_numbers": [4]},
        {"part_numbers": [0]},
        {"part_numbers": []},
        {"part_numbers": [1, 1]},
        {"part_numbers": list(range(1, 1002))},
        {"part_numbers": [1], "sha256": {"2": "ab" * 32}},
        {"part_numbers": [1], "sha256": {"1": "xyz"}},
    ],
)
def test_invalid_part_requests_are_400s(
    pipe: Pipeline, presign: FlaskClient, api_key: str, body: dict[str, Any]
) -> None:
    file = mp.created(presign, api_key, DATA)

    answer = presign.post(f"/uploads/{file['id']}/parts", json=body, headers=mp.auth(api_key))

    assert answer.status_code == 400
    assert answer.get_json()["errors"]
