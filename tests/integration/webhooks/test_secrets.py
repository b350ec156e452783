"""Webhook secrets in delivery: both signatures while a rotation's overlap lasts, then only the
new one; plain-text secrets from before migration 0007 encrypted by the PingSource sweep; the
encryption key itself rotated; a secret no key opens is not held against the endpoint; the
migration itself."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from psycopg.rows import dict_row
from standardwebhooks import Webhook, WebhookVerificationError
from yoyo import get_backend, read_migrations

from filepipe import db, runtime
from filepipe.db import create_pool
from filepipe.notify.webhooks import encryption
from filepipe.notify.webhooks.encryption import SecretBox
from filepipe.notify.webhooks.signing import new_secret
from tests.support.functions import function_app
from tests.support.receiver import Receiver
from tests.support.webhooks import (
    Conn,
    decrypted,
    endpoint,
    file_event,
    message,
    ping_event,
    register,
    rotate,
    send,
    stored_endpoint,
    swept,
    verified,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def session_key(env: dict[str, str]) -> str:
    return env["FILEPIPE_WEBHOOK_SECRET_KEYS"]


@pytest.fixture
def other_keys(session_key: str, database_url: str) -> Iterator[list[str]]:
    """Fresh Fernet keys for a test that configures them; afterwards every secret of the test
    database is encrypted under the session's key again (a sweep re-encrypts all endpoints)."""
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    yield keys
    pool = create_pool(database_url, max_size=1)
    try:
        encryption.seal_stored(pool, SecretBox([session_key, *keys]))
    finally:
        pool.close()


def configure(monkeypatch: pytest.MonkeyPatch, keys: list[str]) -> FlaskClient:
    """The notify target of a process started with ``keys`` as FILEPIPE_WEBHOOK_SECRET_KEYS."""
    monkeypatch.setenv("FILEPIPE_WEBHOOK_SECRET_KEYS", ",".join(keys))
    runtime.reset()
    return function_app("notify", "notify").test_client()


def test_during_the_overlap_both_secrets_sign_then_only_the_new_one(
    api: FlaskClient, notify: FlaskClient, conn: Conn, receiver: Receiver, tenant: tuple[str, str]
) -> None:
    name, key = tenant
    created = register(api, key, receiver.url + "/rotating")
    rotated = rotate(api, key, created["id"], {"overlap_seconds": 3600})
    old, new = created["secret"], rotated["secret"]
    during = file_event(conn, name)

    send(notify, during)

    [request] = receiver.requests("/rotating")
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (old, new):  # a receiver holding either secret verifies
        assert verified(secret, request)["id"] == during["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)

    conn.execute(
        "UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second'"
        " WHERE id = %s",
        (created["id"],),
    )
    assert endpoint(api, key, created["id"])["previous_secret_expires_at"] is None
    after = file_event(conn, name)
    send(notify, after)

    request = receiver.requests("/rotating")[-1]
    assert request.headers["webhook-id"] == after["id"]
    assert " " not in request.headers["webhook-signature"]
    assert verified(new, request)["id"] == after["id"]
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(old).verify(request.body, request.headers)

    send(notify, ping_event())  # the sweep forgets the expired secret
    row = stored_endpoint(conn, created["id"])
    assert (row["previous_secret_ciphertext"], row["previous_secret_expires_at"]) == (None, None)


def test_without_overlap_only_the_new_secret_signs(
    api: FlaskClient,
    notify: FlaskClient,
    conn: Conn,
    receiver: Receiver,
    tenant: tuple[str, str],
) -> None:
    name, key = tenant
    created = register(api, key, receiver.url + "/switched")
    rotated = rotate(api, key, created["id"], {"overlap_seconds": 0})
    event = file_event(conn, name)

    send(notify, event)

    [request] = receiver.requests("/switched")
    assert verified(rotated["secret"], request)["id"] == event["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret"]).verify(request.body, request.headers)


def test_a_plain_secret_from_before_the_migration_signs_and_is_encrypted_by_the_sweep(
    notify: FlaskClient,
    conn: Conn,
    receiver: Receiver,
    tenant: tuple[str, str],
    session_key: str,
) -> None:
    name, _ = tenant
    endpoint_id, secret = str(uuid.uuid4()), new_secret()
    conn.execute(
        "INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types)"
        " VALUES (%s, %s, %s, %s, %s)",
        (endpoint_id, name, receiver.url + "/legacy", secret, ["file.processed"]),
    )
    first = file_event(conn, name)
    send(notify, first)
    assert verified(secret, receiver.requests("/legacy")[0])["id"] == first["id"]

    send(notify, ping_event())

    row = stored_endpoint(conn, endpoint_id)
    assert row["secret"] is None
    assert decrypted(row["secret_ciphertext"], session_key) == secret
    assert secret.removeprefix("whsec_") not in repr(row)
    second = file_event(conn, name)
    send(notify, second)
    assert verified(secret, receiver.requests("/legacy")[-1])["id"] == second["id"]


def test_the_encryption_key_is_rotated_by_putting_a_new_one_first(
    api: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    conn: Conn,
    receiver: Receiver,
    tenant: tuple[str, str],
    session_key: str,
    other_keys: list[str],
) -> None:
    name, key = tenant
    created = register(api, key, receiver.url + "/rekeyed")
    rotated = rotate(api, key, created["id"], {"overlap_seconds": 3600})
    before = stored_endpoint(conn, created["id"])
    new_key = other_keys[0]

    both = configure(monkeypatch, [new_key, session_key])
    send(both, ping_event())  # the sweep re-encrypts under the first key

    row = stored_endpoint(conn, created["id"])
    assert row["secret_key_id"] != before["secret_key_id"]
    assert row["secret_key_id"] == SecretBox([new_key]).key_id
    assert decrypted(row["secret_ciphertext"], new_key) == rotated["secret"]
    assert decrypted(row["previous_secret_ciphertext"], new_key) == created["secret"]
    assert row["previous_secret_expires_at"] == before["previous_secret_expires_at"]

    only_new = configure(monkeypatch, [new_key])  # the old key can go
    event = file_event(conn, name)
    send(only_new, event)
    [request] = receiver.requests("/rekeyed")
    assert verified(rotated["secret"], request)["id"] == event["id"]
    assert verified(created["secret"], request)["id"] == event["id"]


def test_a_secret_no_key_opens_is_not_sent_nor_held_against_the_endpoint(
    api: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    conn: Conn,
    receiver: Receiver,
    tenant: tuple[str, str],
    session_key: str,
    other_keys: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    name, key = tenant
    created = register(api, key, receiver.url + "/locked")
    wrong = configure(monkeypatch, [other_keys[1]])
    event = file_event(conn, name)

    with caplog.at_level(logging.ERROR):
        send(wrong, event)

    [attempt] = conn.execute(
        "SELECT * FROM webhook_deliveries WHERE endpoint_id = %s", (created["id"],)
    ).fetchall()
    assert attempt["error"] == (
        "not sent: the endpoint's secret cannot be decrypted (server configuration)"
    )
    assert receiver.all_requests() == []
    assert message(conn, created["id"], event["id"])["state"] == "pending"
    assert stored_endpoint(conn, created["id"])["failure_count"] == 0
    assert any("decrypts the endpoint's secret" in r.getMessage() for r in caplog.records)
    assert all(created["secret"] not in r.getMessage() for r in caplog.records)

    fixed = configure(monkeypatch, [session_key])
    swept(fixed, lambda: receiver.requests("/locked"), "the delivery once the key is back")
    assert verified(created["secret"], receiver.requests("/locked")[0])["id"] == event["id"]


SECRETS_MIGRATION = "0007.webhook-secrets"


def test_the_migration_keeps_plain_secrets_and_rolls_back_only_while_none_is_encrypted(
    empty_database: str, session_key: str
) -> None:
    backend = get_backend(db._yoyo_url(empty_database))
    every = read_migrations(str(db.default_migrations_dir()))
    ours = every.filter(lambda migration: migration.id == SECRETS_MIGRATION)
    try:
        backend.apply_migrations(backend.to_apply(every.filter(lambda m: m not in ours)))
        with psycopg.connect(empty_database, autocommit=True, row_factory=dict_row) as conn:
            conn.execute("INSERT INTO tenants (name) VALUES ('old')")
            endpoint_id, secret = uuid.uuid4(), new_secret()
            conn.execute(
                "INSERT INTO webhook_endpoints (id, tenant, url, secret, event_types)"
                " VALUES (%s, 'old', 'https://hooks.example.com/', %s, '{file.processed}')",
                (endpoint_id, secret),
            )
            conn.execute(
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, attempt, succeeded)"
                " VALUES (%s, 'e-1', 1, true)",
                (endpoint_id,),
            )

            backend.apply_migrations(backend.to_apply(ours))
            row = conn.execute("SELECT * FROM webhook_endpoints").fetchone()
            assert row is not None
            assert (row["secret"], row["secret_ciphertext"]) == (secret, None)
            delivery = conn.execute("SELECT public_id FROM webhook_deliveries").fetchone()
            assert delivery is not None and isinstance(delivery["public_id"], uuid.UUID)

            backend.rollback_migrations(backend.to_rollback(ours))  # nothing encrypted yet
            backend.apply_migrations(backend.to_apply(ours))
            pool = create_pool(empty_database, max_size=1)
            try:
                assert encryption.seal_stored(pool, SecretBox([session_key])) == 1
            finally:
                pool.close()
            with pytest.raises(psycopg.errors.RaiseException, match="would lose them"):
                backend.rollback_migrations(backend.to_rollback(ours))
            assert conn.execute("SELECT secret FROM webhook_endpoints").fetchone() == {
                "secret": None
            }
    finally:
        backend.connection.close()
