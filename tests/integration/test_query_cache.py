"""The Redis cache of the query function: file hits, invalidation by the real processing,
reconcile and dead-letter code, the guard against a read racing a change, cached API keys, and
Redis being down."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from redis import Redis

from filepipe import runtime
from filepipe.auth import hash_key
from filepipe.config import Settings
from filepipe.files.cache import entry_key, invalidate
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.dead_letters import DeadLetter, record_dead_letter
from filepipe.process.reconcile import reconcile
from filepipe.process.verify import process_notification
from filepipe.query.cache import CachedFile, Lookup, ReadCache, api_key_entry, forget_api_key
from filepipe.runtime import Runtime
from tests.support.files import add_file
from tests.support.functions import function_app
from tests.support.uploads import put, request_upload
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"cached " * 100 + b"\n%%EOF\n"


@pytest.fixture
def client(function_env: dict[str, str]) -> FlaskClient:
    return function_app("query").test_client()


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    """The process function's runtime, in this process (no K_SINK: events stay in the outbox)."""
    built = Runtime.from_settings(replace(settings, reconcile_batch=1))
    yield built
    built.close()


def read(client: FlaskClient, key: str, file_id: Any, etag: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    if etag:
        headers["If-None-Match"] = etag
    return client.get(f"/files/{file_id}", headers=headers)


def test_a_read_is_cached_and_served_from_redis_until_invalidated(
    client: FlaskClient, conn: Conn, redis: Redis, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    file_id = add_file(conn, tenant, filename="before.pdf")["id"]
    assert not redis.exists(entry_key(file_id))

    assert read(client, key, file_id).get_json()["filename"] == "before.pdf"
    assert redis.exists(entry_key(file_id))
    assert 0 < redis.pttl(entry_key(file_id)) <= 300_000  # FILEPIPE_CACHE_TTL's default

    # A change behind the cache's back (no invalidation) is not seen: the answer is a hit.
    conn.execute("UPDATE files SET filename = 'after.pdf' WHERE id = %s", (file_id,))
    assert read(client, key, file_id).get_json()["filename"] == "before.pdf"

    invalidate(redis, file_id)
    assert not redis.exists(entry_key(file_id))
    assert read(client, key, file_id).get_json()["filename"] == "after.pdf"


def test_status_changes_show_at_once_after_processing_dead_letters_and_expiry(
    client: FlaskClient,
    conn: Conn,
    rt: Runtime,
    redis: Redis,
    make_tenant: Callable[[], tuple[str, str]],
) -> None:
    tenant, key = make_tenant()
    presign = function_app("presign").test_client()

    def upload() -> dict[str, Any]:
        return request_upload(presign, key, PDF)

    processed = upload()
    pending = read(client, key, processed["id"])
    assert pending.get_json()["status"] == "PENDING"
    assert redis.exists(entry_key(processed["id"]))
    put(processed, PDF)
    record = ObjectCreated(
        "s3:ObjectCreated:Put", processed["bucket"], processed["key"], None, None
    )
    assert process_notification(rt, record) == "PROCESSED"

    answer = read(client, key, processed["id"], etag=pending.headers["ETag"])
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "PROCESSED"
    assert answer.get_json()["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert answer.headers["ETag"] != pending.headers["ETag"]

    failed = upload()
    assert read(client, key, failed["id"]).get_json()["status"] == "PENDING"
    record = ObjectCreated("s3:ObjectCreated:Put", failed["bucket"], failed["key"], None, None)
    assert record_dead_letter(rt, record, DeadLetter(400, "refused")) == "FAILED"
    assert read(client, key, failed["id"]).get_json()["status"] == "FAILED"

    # The oldest PENDING row of the database, so reconcile (batch of 1) picks this one.
    old = datetime(1990, 1, 1, tzinfo=UTC)
    expired = add_file(conn, tenant, created_at=old, upload_expires_at=old)["id"]
    assert read(client, key, expired).get_json()["status"] == "PENDING"
    assert reconcile(rt).expired == 1
    assert read(client, key, expired).get_json()["status"] == "EXPIRED"


def test_a_read_that_raced_a_change_is_not_stored(redis: Redis) -> None:
    cache = ReadCache(redis, ttl=60)
    key_hash, file_id = hash_key("a key"), uuid.uuid4()
    tenant, before = cache.read(key_hash, file_id)
    assert before.file is None and tenant is None
    assert before.guard is not None

    invalidate(redis, file_id)  # a writer commits while the reader queries PostgreSQL
    assert not cache.store_file(file_id, CachedFile("t", "v1", b"{}"), before.guard)
    assert not redis.exists(entry_key(file_id))

    after = cache.lookup(file_id)
    assert cache.store_file(file_id, CachedFile("t", "v2", b'{"a":\n1}'), after.guard or "")
    assert cache.read(key_hash, file_id)[1].file == CachedFile("t", "v2", b'{"a":\n1}')


def test_an_entry_of_another_format_is_a_miss(redis: Redis) -> None:
    cache, file_id = ReadCache(redis, ttl=60), uuid.uuid4()
    redis.set(entry_key(file_id), b'{"tenant": "t", "file": {}}', px=60_000)
    assert cache.lookup(file_id) == Lookup(guard="")


def test_the_tenant_of_a_key_is_cached_briefly_and_forgotten_on_revocation(
    client: FlaskClient, conn: Conn, redis: Redis, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    file_id = add_file(conn, tenant)["id"]
    assert read(client, key, file_id).status_code == 200
    assert redis.get(api_key_entry(hash_key(key))) == tenant.encode()
    assert 0 < redis.pttl(api_key_entry(hash_key(key))) <= 60_000

    conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_hash = %s", (hash_key(key),))
    assert read(client, key, file_id).status_code == 200  # until the entry expires, or:
    forget_api_key(redis, hash_key(key))
    assert read(client, key, file_id).status_code == 401
    assert redis.get(api_key_entry(hash_key(key))) == b""  # a tombstone, not the tenant


def test_a_lookup_that_raced_a_revocation_cannot_cache_the_key_again(redis: Redis) -> None:
    cache = ReadCache(redis, ttl=60)
    key_hash = hash_key(f"a key {uuid.uuid4()}")
    # The reader found the key valid in PostgreSQL; the revocation commits and is announced
    # before the reader stores what it found.
    forget_api_key(redis, key_hash)
    cache.store_key(key_hash, "t")
    assert cache.key_tenant(key_hash) is None
    assert 59_000 < redis.pttl(api_key_entry(key_hash)) <= 60_000


def test_a_key_is_never_cached_past_its_expiry(
    client: FlaskClient, conn: Conn, redis: Redis, make_tenant: Callable[[], tuple[str, str]]
) -> None:
    tenant, key = make_tenant()
    file_id = add_file(conn, tenant)["id"]
    conn.execute(
        "UPDATE api_keys SET expires_at = now() + interval '1.5 seconds' WHERE key_hash = %s",
        (hash_key(key),),
    )
    assert read(client, key, file_id).status_code == 200
    assert 0 < redis.pttl(api_key_entry(hash_key(key))) <= 1_500
    wait_until(lambda: read(client, key, file_id).status_code == 401, timeout=5, what="expiry")
    assert not redis.exists(api_key_entry(hash_key(key)))


def test_with_redis_down_the_api_answers_from_postgresql(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    conn: Conn,
    make_tenant: Callable[[], tuple[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("FILEPIPE_REDIS_URL", down)
    runtime.reset()
    client = function_app("query").test_client()
    tenant, key = make_tenant()
    file_id = add_file(conn, tenant)["id"]

    with caplog.at_level(logging.WARNING, logger="filepipe.cache"):
        first = read(client, key, file_id)
        again = read(client, key, file_id, etag=first.headers["ETag"])
    assert (first.status_code, again.status_code) == (200, 304)
    assert any("answering from PostgreSQL" in r.getMessage() for r in caplog.records)
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get("/files", headers=auth).status_code == 200
    assert client.get(f"/files/{file_id}/logs", headers=auth).status_code == 200

    broken = Redis.from_url(down)
    with caplog.at_level(logging.ERROR, logger="filepipe.cache"):
        invalidate(broken, file_id)  # never raises
    broken.close()
    assert any("invalidation failed" in r.getMessage() for r in caplog.records)
