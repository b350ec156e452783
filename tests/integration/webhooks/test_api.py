"""The webhook subscription API (``webhooks`` target) against real PostgreSQL: endpoints, secrets
shown once and stored encrypted, rotation, re-enabling, replays, and refusals that name no
address."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from filepipe import auth, runtime
from tests.support.contract import conforms
from tests.support.functions import function_app
from tests.support.webhooks import (
    ALL_TYPES,
    auth_header,
    decrypted,
    register,
    replay,
    rotate,
    stored_endpoint,
)

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
HOOK = "http://127.0.0.1/hook"
DAY = 24 * 3600


@pytest.fixture
def api(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.setenv("FILEPIPE_WEBHOOK_ALLOW_LOOPBACK", "true")
    runtime.reset()
    return function_app("notify", "webhooks").test_client()


@pytest.fixture
def strict_api(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """The API with the defaults: loopback receivers refused, ports 80 and 443 only."""
    monkeypatch.delenv("FILEPIPE_WEBHOOK_PORTS")
    runtime.reset()
    return function_app("notify", "webhooks").test_client()


@pytest.fixture
def key(conn: Conn) -> str:
    return auth.create_key(conn, f"wh-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def other_key(conn: Conn) -> str:
    return auth.create_key(conn, f"wh-{uuid.uuid4().hex[:8]}")


def test_endpoint_lifecycle_with_a_secret_shown_once(api: FlaskClient, key: str) -> None:
    created = register(api, key, HOOK, ["file.failed", "file.uploaded"])
    second = register(api, key, HOOK + "2")

    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) == 32
    assert created["secret"] != second["secret"]
    assert created["events"] == ["file.uploaded", "file.failed"]
    assert (created["url"], created["enabled"], created["disabled_reason"]) == (HOOK, True, None)
    assert created["previous_secret_expires_at"] is None
    assert created["created_at"].endswith("Z")

    listed = api.get("/webhooks", headers=auth_header(key)).get_json()["items"]
    assert [e["id"] for e in listed] == [second["id"], created["id"]]
    assert all("secret" not in e for e in listed)
    one = api.get(f"/webhooks/{created['id']}", headers=auth_header(key))
    assert one.status_code == 200 and "secret" not in one.get_json()
    empty = api.get(f"/webhooks/{created['id']}/deliveries", headers=auth_header(key))
    assert empty.get_json() == {"items": []}

    assert api.delete(f"/webhooks/{created['id']}", headers=auth_header(key)).status_code == 204
    assert api.delete(f"/webhooks/{created['id']}", headers=auth_header(key)).status_code == 404
    listed = api.get("/webhooks", headers=auth_header(key)).get_json()["items"]
    assert [e["id"] for e in listed] == [second["id"]]


def test_another_tenants_endpoint_is_not_found_on_every_route(
    api: FlaskClient, key: str, other_key: str
) -> None:
    mine = register(api, key, HOOK)
    theirs = auth_header(other_key)

    assert api.get("/webhooks", headers=theirs).get_json() == {"items": []}
    for method, path in [
        ("GET", f"/webhooks/{mine['id']}"),
        ("GET", f"/webhooks/{mine['id']}/deliveries"),
        ("POST", f"/webhooks/{mine['id']}/rotate-secret"),
        ("POST", f"/webhooks/{mine['id']}/enable"),
        ("POST", f"/webhooks/{mine['id']}/deliveries/{uuid.uuid4()}/replay"),
        ("DELETE", f"/webhooks/{mine['id']}"),
    ]:
        response = api.open(path, method=method, headers=theirs)
        assert response.status_code == 404, (method, path)
        assert response.mimetype == "application/problem+json"
    assert api.get(f"/webhooks/{mine['id']}", headers=auth_header(key)).status_code == 200


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"url": HOOK, "events": []}, ["events"]),
        ({"url": HOOK, "events": ["file.created"]}, ["events"]),
        ({"url": HOOK, "events": "file.processed"}, ["events"]),
        ({"url": HOOK, "events": [1]}, ["events"]),
        ({"url": HOOK}, ["events"]),
        ({"events": ALL_TYPES}, ["url"]),
        ({"url": "http://127.0.0.1/" + "a" * 2048, "events": ALL_TYPES}, ["url"]),
        ({"url": "hooks.example.com/in", "events": ALL_TYPES}, ["url"]),
        ({"url": HOOK, "events": ALL_TYPES, "secret": "mine"}, ["secret"]),
        ({"url": "ftp://127.0.0.1/", "events": ["nope"]}, ["events", "url"]),
    ],
)
def test_invalid_bodies_are_400_listing_each_field(
    api: FlaskClient, key: str, body: dict[str, Any], fields: list[str]
) -> None:
    response = api.post("/webhooks", json=body, headers=auth_header(key))
    assert response.status_code == 400
    problem = response.get_json()
    assert sorted(e["field"] for e in problem["errors"]) == fields


def test_auth_media_type_method_and_parameters(api: FlaskClient, key: str) -> None:
    assert api.get("/webhooks").status_code == 401
    bad = api.get("/webhooks", headers=auth_header("fpk_" + "x" * 43))
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"].startswith("Bearer")
    text = api.post("/webhooks", data="url=x", headers=auth_header(key), content_type="text/plain")
    assert text.status_code == 415
    not_object = api.post("/webhooks", json=[HOOK], headers=auth_header(key))
    assert not_object.status_code == 400
    put = api.put("/webhooks", headers=auth_header(key))
    assert put.status_code == 405 and put.headers["Allow"] == "GET, HEAD, POST"
    malformed = api.get("/webhooks/not-a-uuid", headers=auth_header(key))
    assert malformed.status_code == 400, "one rule for malformed ids on every route"
    assert malformed.get_json()["errors"] == [{"field": "id", "message": "not a UUID"}]
    endpoint = register(api, key, HOOK)
    unknown = api.get(f"/webhooks/{endpoint['id']}?verbose=1", headers=auth_header(key))
    assert unknown.status_code == 400
    for limit in ("0", "201", "x", "\u00b2"):
        response = api.get(
            f"/webhooks/{endpoint['id']}/deliveries?limit={limit}", headers=auth_header(key)
        )
        assert response.status_code == 400, limit


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://2130706433/",
        "http://localhost/",
        "ftp://example.com/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fec0::1]/",
        "http://[fec0:1:2::3]:443/",
        "https://hooks.example.com:8443/",
        "http://hooks.example.com:25/",
    ],
)
def test_unsafe_urls_are_refused_at_registration(
    strict_api: FlaskClient, key: str, url: str
) -> None:
    response = strict_api.post(
        "/webhooks", json={"url": url, "events": ALL_TYPES}, headers=auth_header(key)
    )
    assert response.status_code == 400, response.get_json()
    assert [e["field"] for e in response.get_json()["errors"]] == ["url"]
    assert strict_api.get("/webhooks", headers=auth_header(key)).get_json() == {"items": []}


def test_a_refusal_says_what_kind_of_address_never_which(strict_api: FlaskClient, key: str) -> None:
    response = strict_api.post(
        "/webhooks",
        json={"url": "http://localhost/in", "events": ALL_TYPES},
        headers=auth_header(key),
    )

    assert response.status_code == 400
    [error] = response.get_json()["errors"]
    assert error == {
        "field": "url",
        "message": "the URL's host resolves to a loopback address; webhooks may only reach"
        " public ones",
    }
    assert "127.0.0.1" not in response.get_data(as_text=True)
    assert "::1" not in response.get_data(as_text=True)


def test_only_ports_80_and_443_by_default_and_the_configured_ones_otherwise(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("FILEPIPE_WEBHOOK_ALLOW_LOOPBACK", "true")
    monkeypatch.delenv("FILEPIPE_WEBHOOK_PORTS")
    runtime.reset()
    default = function_app("notify", "webhooks").test_client()
    refused = default.post(
        "/webhooks",
        json={"url": "http://127.0.0.1:8090/", "events": ALL_TYPES},
        headers=auth_header(key),
    )
    assert refused.status_code == 400
    assert refused.get_json()["errors"] == [
        {"field": "url", "message": "the URL's port 8090 is not allowed; webhooks may use 80, 443"}
    ]
    register(default, key, "http://127.0.0.1:443/tls-port")

    monkeypatch.setenv("FILEPIPE_WEBHOOK_PORTS", "443,8000-8999")
    runtime.reset()
    configured = function_app("notify", "webhooks").test_client()
    register(configured, key, "http://127.0.0.1:8090/")
    refused = configured.post(
        "/webhooks",
        json={"url": "http://127.0.0.1/", "events": ALL_TYPES},
        headers=auth_header(key),
    )
    assert "may use 443, 8000-8999" in refused.get_json()["errors"][0]["message"]


def test_secrets_are_stored_encrypted_with_the_configured_key(
    api: FlaskClient, conn: Conn, key: str, function_env: dict[str, str]
) -> None:
    created = register(api, key, HOOK)

    row = stored_endpoint(conn, created["id"])
    assert row["secret"] is None
    assert (
        decrypted(row["secret_ciphertext"], function_env["FILEPIPE_WEBHOOK_SECRET_KEYS"])
        == (created["secret"])
    )
    assert row["previous_secret_ciphertext"] is None and row["secret_key_id"]
    body = created["secret"].removeprefix("whsec_")
    assert body not in repr(row) and body[:12] not in repr(row)


def test_without_keys_the_api_answers_503_and_logs_why(
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("FILEPIPE_WEBHOOK_SECRET_KEYS")
    runtime.reset()
    api = function_app("notify", "webhooks").test_client()  # the import does not fail

    some = uuid.uuid4()
    with caplog.at_level(logging.ERROR):
        for method, path in [
            ("POST", "/webhooks"),
            ("GET", "/webhooks"),
            ("GET", "/webhooks/{id}"),
            ("DELETE", "/webhooks/{id}"),
            ("GET", "/webhooks/{id}/deliveries"),
            ("POST", "/webhooks/{id}/rotate-secret"),
            ("POST", "/webhooks/{id}/enable"),
            ("POST", "/webhooks/{id}/deliveries/{delivery_id}/replay"),
        ]:
            concrete = path.format(id=some, delivery_id=some)
            response = api.open(concrete, method=method, headers=auth_header(key), json={})
            assert response.status_code == 503, (method, path)
            assert response.headers["Retry-After"] == "60"
            assert "not configured" in response.get_json()["detail"]
            conforms(response, "webhooks", path, method)
    assert any("FILEPIPE_WEBHOOK_SECRET_KEYS is not set" in r.getMessage() for r in caplog.records)
    assert api.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("body", "overlap"),
    [
        (None, DAY),
        ({}, DAY),
        ({"overlap_seconds": 3600}, 3600),
        ({"overlap_seconds": 60.0}, 60),
        ({"overlap_seconds": 7 * DAY}, 7 * DAY),
    ],
)
def test_rotation_shows_a_new_secret_once_and_keeps_the_old_for_the_overlap(
    api: FlaskClient,
    conn: Conn,
    key: str,
    function_env: dict[str, str],
    body: dict[str, Any] | None,
    overlap: int,
) -> None:
    created = register(api, key, HOOK)
    before = datetime.now(UTC)

    response = api.post(
        f"/webhooks/{created['id']}/rotate-secret", json=body, headers=auth_header(key)
    )

    conforms(response, "webhooks", "/webhooks/{id}/rotate-secret", "POST")
    rotated = response.get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert {
        k: v for k, v in rotated.items() if k not in ("secret", "previous_secret_expires_at")
    } == {k: v for k, v in created.items() if k not in ("secret", "previous_secret_expires_at")}
    ends = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert before + timedelta(seconds=overlap - 5) < ends < before + timedelta(seconds=overlap + 5)
    shown = api.get(f"/webhooks/{created['id']}", headers=auth_header(key)).get_json()
    assert (
        "secret" not in shown
        and shown["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    )
    row = stored_endpoint(conn, created["id"])
    keys = function_env["FILEPIPE_WEBHOOK_SECRET_KEYS"]
    assert decrypted(row["secret_ciphertext"], keys) == rotated["secret"]
    assert decrypted(row["previous_secret_ciphertext"], keys) == created["secret"]


def test_rotation_without_overlap_and_rotation_during_one(
    api: FlaskClient, conn: Conn, key: str, function_env: dict[str, str]
) -> None:
    keys = function_env["FILEPIPE_WEBHOOK_SECRET_KEYS"]
    created = register(api, key, HOOK)
    first = rotate(api, key, created["id"], {"overlap_seconds": 3600})
    second = rotate(api, key, created["id"], {"overlap_seconds": 60})

    row = stored_endpoint(conn, created["id"])
    assert decrypted(row["previous_secret_ciphertext"], keys) == first["secret"]
    assert decrypted(row["secret_ciphertext"], keys) == second["secret"]

    now = rotate(api, key, created["id"], {"overlap_seconds": 0})
    assert now["previous_secret_expires_at"] is None
    row = stored_endpoint(conn, created["id"])
    assert row["previous_secret_ciphertext"] is None and row["previous_secret_expires_at"] is None
    assert decrypted(row["secret_ciphertext"], keys) == now["secret"]


def test_a_plain_secret_from_before_the_migration_is_encrypted_when_rotated(
    api: FlaskClient, conn: Conn, key: str, function_env: dict[str, str]
) -> None:
    endpoint = register(api, key, HOOK)
    conn.execute(
        "UPDATE webhook_endpoints SET secret = 'whsec_' || repeat('B', 43) || '=',"
        " secret_ciphertext = NULL, secret_key_id = NULL WHERE id = %s",
        (endpoint["id"],),
    )

    rotated = rotate(api, key, endpoint["id"])

    row = stored_endpoint(conn, endpoint["id"])
    keys = function_env["FILEPIPE_WEBHOOK_SECRET_KEYS"]
    assert row["secret"] is None
    assert decrypted(row["previous_secret_ciphertext"], keys) == "whsec_" + "B" * 43 + "="
    assert decrypted(row["secret_ciphertext"], keys) == rotated["secret"]


@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        ({"overlap_seconds": -1}, 400, ["overlap_seconds"]),
        ({"overlap_seconds": 7 * DAY + 1}, 400, ["overlap_seconds"]),
        ({"overlap_seconds": "3600"}, 400, ["overlap_seconds"]),
        ({"overlap_seconds": 3600.5}, 400, ["overlap_seconds"]),
        ({"overlap_seconds": 1e400}, 400, ["overlap_seconds"]),
        ({"overlap_seconds": True}, 400, ["overlap_seconds"]),
        ({"overlap_seconds": None}, 400, ["overlap_seconds"]),
        ({"overlap": 60}, 400, ["overlap"]),
        ([60], 400, None),
    ],
)
def test_invalid_rotation_bodies_are_400(
    api: FlaskClient, key: str, body: Any, status: int, fields: list[str] | None
) -> None:
    endpoint = register(api, key, HOOK)
    response = api.post(
        f"/webhooks/{endpoint['id']}/rotate-secret", json=body, headers=auth_header(key)
    )
    assert response.status_code == status
    conforms(response, "webhooks", "/webhooks/{id}/rotate-secret", "POST")
    if fields is not None:
        assert [e["field"] for e in response.get_json()["errors"]] == fields


def test_a_rotation_body_must_be_json(api: FlaskClient, key: str) -> None:
    endpoint = register(api, key, HOOK)
    response = api.post(
        f"/webhooks/{endpoint['id']}/rotate-secret",
        data="overlap_seconds=60",
        content_type="application/x-www-form-urlencoded",
        headers=auth_header(key),
    )
    assert response.status_code == 415
    conforms(response, "webhooks", "/webhooks/{id}/rotate-secret", "POST")
    missing = api.post(f"/webhooks/{uuid.uuid4()}/rotate-secret", headers=auth_header(key))
    assert missing.status_code == 404
    conforms(missing, "webhooks", "/webhooks/{id}/rotate-secret", "POST")


def test_enable_resets_a_disabled_endpoint(api: FlaskClient, conn: Conn, key: str) -> None:
    endpoint = register(api, key, HOOK)
    conn.execute(
        "UPDATE webhook_endpoints SET enabled = false, failure_count = 20, disabled_at = now(),"
        " disabled_reason = '20 consecutive failed deliveries' WHERE id = %s",
        (endpoint["id"],),
    )

    response = api.post(f"/webhooks/{endpoint['id']}/enable", headers=auth_header(key))

    conforms(response, "webhooks", "/webhooks/{id}/enable", "POST")
    enabled = response.get_json()
    assert (enabled["enabled"], enabled["failure_count"], enabled["disabled_reason"]) == (
        True,
        0,
        None,
    )
    assert stored_endpoint(conn, endpoint["id"])["disabled_at"] is None
    again = api.post(f"/webhooks/{endpoint['id']}/enable", headers=auth_header(key))
    assert again.status_code == 200 and again.get_json() == enabled
    missing = api.post(f"/webhooks/{uuid.uuid4()}/enable", headers=auth_header(key))
    assert missing.status_code == 404
    conforms(missing, "webhooks", "/webhooks/{id}/enable", "POST")


def _attempt(conn: Conn, endpoint_id: str, state: str) -> str:
    """A delivered (or ``state``) message with one logged attempt; the attempt's public id."""
    event_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO webhook_messages (endpoint_id, event_id, event_type, payload, state,"
        " attempts, next_attempt_at) VALUES (%s, %s, 'file.processed', '{}', %s, 1,"
        " now() + interval '1 hour')",
        (endpoint_id, event_id, state),
    )
    row = conn.execute(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, attempt, status_code,"
        " duration_ms, error, succeeded) VALUES (%s, %s, 1, 500, 3, 'HTTP 500', false)"
        " RETURNING public_id",
        (endpoint_id, event_id),
    ).fetchone()
    assert row is not None
    return str(row["public_id"])


def test_replay_refusals(api: FlaskClient, conn: Conn, key: str, other_key: str) -> None:
    endpoint = register(api, key, HOOK)
    sibling = register(api, key, HOOK + "/sibling")
    path = "/webhooks/{id}/deliveries/{delivery_id}/replay"

    def refused(endpoint_id: str, delivery_id: str, status: int, by: str = key) -> None:
        response = replay(api, by, endpoint_id, delivery_id)
        assert response.status_code == status, response.get_json()
        conforms(response, "webhooks", path, "POST")

    failed = _attempt(conn, endpoint["id"], "failed")
    refused(endpoint["id"], str(uuid.uuid4()), 404)
    refused(sibling["id"], failed, 404)
    refused(endpoint["id"], failed, 404, by=other_key)
    malformed = replay(api, key, endpoint["id"], "12")
    assert malformed.status_code == 400
    assert malformed.get_json()["errors"] == [{"field": "delivery_id", "message": "not a UUID"}]
    refused(endpoint["id"], _attempt(conn, endpoint["id"], "pending"), 409)
    conn.execute("UPDATE webhook_endpoints SET enabled = false WHERE id = %s", (endpoint["id"],))
    refused(endpoint["id"], failed, 409)
    assert "enable it first" in replay(api, key, endpoint["id"], failed).get_json()["detail"]


def test_replay_queues_the_event_again_with_a_fresh_schedule(
    api: FlaskClient, conn: Conn, key: str
) -> None:
    endpoint = register(api, key, HOOK)
    delivery_id = _attempt(conn, endpoint["id"], "failed")

    response = replay(api, key, endpoint["id"], delivery_id)

    conforms(response, "webhooks", "/webhooks/{id}/deliveries/{delivery_id}/replay", "POST")
    queued = response.get_json()
    assert (queued["state"], queued["attempts"], queued["event_type"]) == (
        "pending",
        1,
        "file.processed",
    )
    message = conn.execute(
        "SELECT state, retry_base, next_attempt_at <= now() AS due, last_error"
        " FROM webhook_messages WHERE event_id = %s",
        (queued["event_id"],),
    ).fetchone()
    assert message == {"state": "pending", "retry_base": 1, "due": True, "last_error": None}
    again = replay(api, key, endpoint["id"], delivery_id)
    assert again.status_code == 409 and "already queued" in again.get_json()["detail"]
