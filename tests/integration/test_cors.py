"""CORS of the public HTTP functions (``filepipe.web.cors``) through their real entry points:
preflights answered before authentication, actual answers (problems too) marked for allowed
origins, exact or by pattern, nothing for other origins, nothing on internal targets."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from filepipe.web.cors import ALLOWED_HEADERS, EXPOSED_HEADERS
from tests.support.functions import function_app

pytestmark = pytest.mark.integration

ALLOWED = "https://app.example.com"
BY_PATTERN = "http://localhost:5173"
REFUSED = "https://evil.example.com"
Clients = Callable[[str, str], FlaskClient]


@pytest.fixture
def clients(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Clients:
    """``(function, target)`` → its test client, with two exact origins and a pattern allowed."""
    monkeypatch.setenv("FILEPIPE_ALLOWED_ORIGINS", f"{ALLOWED},http://localhost:*")
    return lambda function, target: function_app(function, target).test_client()


def preflight(client: FlaskClient, path: str, origin: str, method: str = "POST") -> TestResponse:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def cors_headers(response: TestResponse) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


SOME_ID = str(uuid.uuid4())
ROUTES = [
    ("presign", "presign", "/uploads", "POST"),
    ("presign", "presign", f"/uploads/{SOME_ID}/parts", "GET, HEAD, POST"),
    ("presign", "presign", f"/uploads/{SOME_ID}", "DELETE"),
    ("query", "query", "/files", "GET, HEAD"),
    ("query", "query", f"/files/{SOME_ID}", "DELETE, GET, HEAD"),
    ("notify", "webhooks", "/webhooks", "GET, HEAD, POST"),
    ("notify", "webhooks", f"/webhooks/{SOME_ID}/rotate-secret", "POST"),
]


@pytest.mark.parametrize(("function", "target", "path", "methods"), ROUTES)
@pytest.mark.parametrize("origin", [ALLOWED, BY_PATTERN])
def test_a_preflight_is_answered_before_authentication(
    clients: Clients, function: str, target: str, path: str, methods: str, origin: str
) -> None:
    response = preflight(clients(function, target), path, origin)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.get_data() == b""
    assert cors_headers(response) == {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
    }
    assert response.headers["Vary"] == "Origin"


@pytest.mark.parametrize(("function", "target", "path", "methods"), ROUTES[::3])
@pytest.mark.parametrize("origin", [REFUSED, "http://localhost.evil.example:5173", "null"])
def test_a_preflight_from_another_origin_is_refused(
    clients: Clients, function: str, target: str, path: str, methods: str, origin: str
) -> None:
    response = preflight(clients(function, target), path, origin)
    assert response.status_code == 403
    assert response.content_type == "application/problem+json"
    assert response.get_json()["title"] == "Forbidden"
    assert cors_headers(response) == {}


def test_actual_answers_are_marked_for_allowed_origins_only(clients: Clients, api_key: str) -> None:
    query = clients("query", "query")
    auth = {"Authorization": f"Bearer {api_key}"}
    for origin in (ALLOWED, BY_PATTERN):
        response = query.get("/files", headers={**auth, "Origin": origin})
        assert response.status_code == 200
        assert cors_headers(response) == {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        }
        assert response.headers["Vary"] == "Origin"
    refused = query.get("/files", headers={**auth, "Origin": REFUSED})
    assert refused.status_code == 200 and cors_headers(refused) == {}
    not_a_browser = query.get("/files", headers=auth)
    assert not_a_browser.status_code == 200 and cors_headers(not_a_browser) == {}
    assert EXPOSED_HEADERS == "ETag, Location, Idempotency-Replayed, Retry-After"


@pytest.mark.parametrize(
    ("function", "target", "method", "path", "status"),
    [
        ("presign", "presign", "POST", "/uploads", 401),  # no key
        ("query", "query", "GET", f"/files/{SOME_ID}", 401),
        ("notify", "webhooks", "GET", "/webhooks", 401),
        ("query", "query", "GET", "/nowhere", 404),
        ("query", "query", "PUT", "/files", 405),
        ("query", "query", "GET", "/files?x=" + "a" * 9000, 414),  # the request limits' own
    ],
)
def test_problems_carry_cors_headers(
    clients: Clients, function: str, target: str, method: str, path: str, status: int
) -> None:
    client = clients(function, target)
    response = client.open(path, method=method, headers={"Origin": BY_PATTERN})
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert response.headers["Access-Control-Allow-Origin"] == BY_PATTERN
    assert response.headers["Access-Control-Expose-Headers"] == EXPOSED_HEADERS


def test_a_preflight_to_no_route_gets_the_404(clients: Clients) -> None:
    response = preflight(clients("query", "query"), "/nowhere", ALLOWED)
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_internal_targets_answer_no_cors(clients: Clients) -> None:
    for function in ("process", "notify"):
        client = clients(function, function)
        response = preflight(client, "/", ALLOWED)
        assert response.status_code != 204
        assert cors_headers(response) == {}


def test_no_origin_is_allowed_by_default(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FILEPIPE_ALLOWED_ORIGINS", raising=False)
    response = preflight(function_app("presign").test_client(), "/uploads", "http://localhost")
    assert response.status_code == 403 and cors_headers(response) == {}
