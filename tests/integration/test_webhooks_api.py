"""The webhook subscription API (``webhooks`` target) against real PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from filepipe import auth, runtime
from tests.support.functions import function_app
from tests.support.webhooks import ALL_TYPES, register

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
HOOK = "http://127.0.0.1:9/hook"


def auth_header(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.setenv("FILEPIPE_WEBHOOK_ALLOW_LOOPBACK", "true")
    runtime.reset()
    return function_app("notify", "webhooks").test_client()


@pytest.fixture
def strict_api(function_env: dict[str, str]) -> FlaskClient:
    """The API with the default: loopback receivers refused too."""
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
        "http://localhost:8080/",
        "ftp://example.com/",
        "http://[::ffff:127.0.0.1]/",
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
