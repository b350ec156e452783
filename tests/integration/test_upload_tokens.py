"""Upload tokens against the real services: minted by presign with an API key, then used as a
browser would, for single and multipart uploads that the pipeline processes, with every scope
enforced; and refused wherever a token has no business."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from psycopg.rows import dict_row

from filepipe import upload_tokens
from filepipe.files import store
from filepipe.upload_tokens import Scope, UploadToken
from tests.conftest import UPLOAD_TOKEN_SECRET
from tests.support import multipart as mp
from tests.support.files import add_file, settled
from tests.support.functions import function_app
from tests.support.pipeline import Pipeline, pipeline
from tests.support.uploads import put, request_upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"token upload\n" * 100 + b"%%EOF\n"


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    with pipeline(service_env) as running_pipe:
        yield running_pipe


@pytest.fixture
def query(presign: FlaskClient) -> FlaskClient:
    """The query function (after ``presign``, so with the same environment)."""
    return function_app("query").test_client()


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def mint(presign: FlaskClient, api_key: str, **scope: Any) -> dict[str, Any]:
    answer = presign.post("/upload-tokens", json=scope, headers=bearer(api_key))
    assert answer.status_code == 201, answer.get_json()
    assert answer.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = answer.get_json()
    return body


def upload_body(data: bytes = PDF, **fields: Any) -> dict[str, Any]:
    body = {"filename": "doc.pdf", "content_type": "application/pdf", "size": len(data)}
    return {**body, **fields}


def signed(tenant: str, *, expires: int, scope: Scope | None = None) -> str:
    """A token signed with the session's secret, expiring at ``expires`` (Unix seconds)."""
    scope = scope or Scope(10, 10**6, ("application/pdf",))
    token = UploadToken(uuid.uuid4(), tenant, expires, scope)
    return upload_tokens.encode(token, UPLOAD_TOKEN_SECRET)


def test_a_token_uploads_single_and_multipart_files_that_are_processed(
    pipe: Pipeline, presign: FlaskClient, query: FlaskClient, api_key: str, conn: Conn
) -> None:
    minted = mint(presign, api_key, metadata={"order": "42"}, label="checkout", max_files=2)
    token = minted["token"]
    assert minted["scope"]["max_files"] == 2 and minted["scope"]["label"] == "checkout"

    single = request_upload(presign, token, PDF, metadata={"order": "1", "note": "mine"})
    put(single, PDF)
    data = mp.pdf_bytes(mp.PART_SIZE + 1024)
    multipart = mp.created(presign, token, data)
    etags = mp.upload_parts(presign, token, multipart["id"], data, [1, 2])
    listed = mp.stored_parts(presign, token, multipart["id"])
    completed = mp.complete(
        presign, token, multipart["id"], etags, sha256=hashlib.sha256(data).hexdigest()
    )

    assert listed.status_code == 200 and len(listed.get_json()["parts"]) == 2
    assert completed.status_code == 200, completed.get_json()
    for file in (single, multipart):
        row = settled(conn, file["id"])
        assert row["status"] == "PROCESSED", row["error"]
        assert str(row["upload_token_id"]) == minted["id"]
        seen = query.get(f"/files/{file['id']}", headers=bearer(token))
        assert seen.status_code == 200 and seen.get_json()["status"] == "PROCESSED"
    assert single["metadata"] == {"order": "42", "note": "mine"}
    assert multipart["metadata"] == {"order": "42"}


@pytest.mark.parametrize(
    ("scope", "body", "status"),
    [
        ({"content_types": ["image/png", "text/plain"]}, upload_body(), 415),
        ({"max_file_bytes": 100}, upload_body(), 413),
        ({}, upload_body(metadata={f"k{n}": "v" for n in range(32)}), 400),
    ],
)
def test_an_upload_outside_the_tokens_scope_is_refused(
    pipe: Pipeline,
    presign: FlaskClient,
    api_key: str,
    scope: dict[str, Any],
    body: dict[str, Any],
    status: int,
) -> None:
    token = mint(presign, api_key, metadata={"order": "42"}, **scope)["token"]

    answer = presign.post("/uploads", json=body, headers=bearer(token))

    assert answer.status_code == status
    assert answer.mimetype == "application/problem+json"
    assert "token" in answer.get_json()["detail"]


def test_max_files_is_enforced_and_a_replay_does_not_count(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    minted = mint(presign, api_key, max_files=1)
    headers = {**bearer(minted["token"]), "Idempotency-Key": uuid.uuid4().hex}

    first = presign.post("/uploads", json=upload_body(), headers=headers)
    replay = presign.post("/uploads", json=upload_body(), headers=headers)
    another = presign.post("/uploads", json=upload_body(), headers=bearer(minted["token"]))

    assert first.status_code == 201
    assert replay.status_code == 201 and replay.headers["Idempotency-Replayed"] == "true"
    assert another.status_code == 403
    assert another.get_json()["max_files"] == 1
    count = conn.execute(
        "SELECT count(*) AS n FROM files WHERE upload_token_id = %s", (minted["id"],)
    ).fetchone()
    assert count == {"n": 1}


def test_concurrent_uploads_never_exceed_max_files(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    minted = mint(presign, api_key, max_files=3)

    def create(_: int) -> int:
        client = presign.application.test_client()
        answer = client.post("/uploads", json=upload_body(), headers=bearer(minted["token"]))
        return answer.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(create, range(16)))

    assert statuses == [201] * 3 + [403] * 13
    count = conn.execute(
        "SELECT count(*) AS n FROM files WHERE upload_token_id = %s", (minted["id"],)
    ).fetchone()
    assert count == {"n": 3}


def test_an_expired_token_is_401_expired_and_a_tampered_one_401_invalid(
    pipe: Pipeline, presign: FlaskClient, query: FlaskClient
) -> None:
    expired = signed("pipeline-tenant", expires=int(time.time()) - 1)
    valid = signed("pipeline-tenant", expires=int(time.time()) + 60)
    tampered = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    foreign = upload_tokens.encode(
        upload_tokens.decode(valid, [UPLOAD_TOKEN_SECRET]), "another-secret-of-32-bytes-at-least"
    )

    answers = {
        "expired": presign.post("/uploads", json=upload_body(), headers=bearer(expired)),
        "expired on query": query.get(f"/files/{uuid.uuid4()}", headers=bearer(expired)),
        "tampered": presign.post("/uploads", json=upload_body(), headers=bearer(tampered)),
        "unknown secret": presign.post("/uploads", json=upload_body(), headers=bearer(foreign)),
    }

    reasons = {name: (a.status_code, a.get_json()["reason"]) for name, a in answers.items()}
    assert reasons == {
        "expired": (401, "expired"),
        "expired on query": (401, "expired"),
        "tampered": (401, "invalid"),
        "unknown secret": (401, "invalid"),
    }
    assert answers["expired"].headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_sees_only_the_files_it_made(
    pipe: Pipeline, presign: FlaskClient, query: FlaskClient, api_key: str
) -> None:
    token = mint(presign, api_key)["token"]
    other_token = mint(presign, api_key)["token"]
    by_key = mp.created(presign, api_key, mp.pdf_bytes(mp.PART_SIZE + 1))
    by_other = mp.created(presign, other_token, mp.pdf_bytes(mp.PART_SIZE + 1))

    for file in (by_key, by_other):
        answers = [
            mp.presign(presign, token, file["id"], [1]),
            mp.stored_parts(presign, token, file["id"]),
            mp.complete(presign, token, file["id"], {1: '"etag"'}),
            mp.abort(presign, token, file["id"]),
            query.get(f"/files/{file['id']}", headers=bearer(token)),
        ]
        assert [a.status_code for a in answers] == [404] * 5
    assert mp.stored_parts(presign, other_token, by_other["id"]).status_code == 200
    assert query.get(f"/files/{by_key['id']}", headers=bearer(api_key)).status_code == 200


def test_a_token_is_forbidden_everywhere_else(
    pipe: Pipeline, presign: FlaskClient, query: FlaskClient, api_key: str
) -> None:
    minted = mint(presign, api_key)
    file = request_upload(presign, minted["token"], PDF)
    headers = bearer(minted["token"])
    webhooks = function_app("notify", "webhooks").test_client()

    answers = {
        "mint": presign.post("/upload-tokens", json={}, headers=headers),
        "list": query.get("/files", headers=headers),
        "logs": query.get(f"/files/{file['id']}/logs", headers=headers),
        "download": query.get(f"/files/{file['id']}/download", headers=headers),
        "delete": query.delete(f"/files/{file['id']}", headers=headers),
        "webhooks": webhooks.get("/webhooks", headers=headers),
    }

    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 403)
    assert all(a.mimetype == "application/problem+json" for a in answers.values())
    assert query.get(f"/files/{file['id']}", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("scope", "status"),
    [
        ({"expires_in": 3601}, 400),
        ({"max_files": 0}, 400),
        ({"max_file_bytes": 6 * 1024**4}, 413),
        ({"content_types": ["application/x-msdownload"]}, 415),
    ],
)
def test_a_bad_scope_is_refused_when_minting(
    pipe: Pipeline, presign: FlaskClient, api_key: str, scope: dict[str, Any], status: int
) -> None:
    answer = presign.post("/upload-tokens", json=scope, headers=bearer(api_key))

    assert answer.status_code == status
    assert answer.mimetype == "application/problem+json"


def test_a_tokens_count_waits_for_the_transaction_that_added_one_before(
    database_url: str, conn: Conn, api_key: str
) -> None:
    """The serialisation the concurrent test relies on, step by step: a second transaction's
    count waits on the first's lock, then sees its committed file."""
    token_id, tenant = uuid.uuid4(), "pipeline-tenant"
    # not PENDING: a PENDING insert would already wait for the first on the tenant's pending count
    status = "UPLOADED"
    with (
        psycopg.connect(database_url, row_factory=dict_row) as first,
        psycopg.connect(database_url, row_factory=dict_row) as second,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        add_file(first, tenant, upload_token_id=token_id, status=status)
        assert store.count_of_token(first, token_id) == 1
        add_file(second, tenant, upload_token_id=token_id, status=status)
        pid = second.info.backend_pid
        counted = pool.submit(store.count_of_token, second, token_id)
        wait_until(
            lambda: conn.execute(
                "SELECT 1 FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND NOT granted",
                (pid,),
            ).fetchone(),
            timeout=10,
            what="the second count to wait for the token's lock",
        )
        assert not counted.done()
        first.commit()
        assert counted.result(timeout=10) == 2
        second.rollback()
    conn.execute("DELETE FROM files WHERE upload_token_id = %s", (token_id,))
