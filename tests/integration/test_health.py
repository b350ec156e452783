"""``GET /healthz`` and ``GET /readyz`` of every function (``filepipe.health``), through the
real entry points: liveness without touching a dependency, readiness checking each dependency
the function uses, reachable without the broker's token, quick when a dependency is down."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.functions import function_app
from tests.support.receiver import Receiver

pytestmark = pytest.mark.integration

TARGETS = {
    "presign": ("presign", {"postgres", "redis", "s3", "broker"}),
    "query": ("query", {"postgres", "redis", "s3", "broker"}),
    "webhooks": ("notify", {"postgres"}),
    "notify": ("notify", {"postgres", "redis"}),
    "process": ("process", {"postgres", "redis", "s3", "broker"}),
}
EVENT_TOKEN = "health-test-event-token-0123456789"


def client_of(target: str, monkeypatch: pytest.MonkeyPatch, **settings: str) -> FlaskClient:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FILEPIPE_EVENT_TOKEN", EVENT_TOKEN)
    return function_app(TARGETS[target][0], target).test_client()


def readiness(client: FlaskClient) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = client.get("/readyz")
    took = time.monotonic() - started
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.get_json()
    return response.status_code, body, took


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_function_reports_each_of_its_dependencies(
    target: str,
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    event_receiver: Receiver,
) -> None:
    client = client_of(target, monkeypatch, K_SINK=event_receiver.url)
    live = client.get("/healthz")
    assert (live.status_code, live.get_json()) == (200, {"status": "ok"})

    status, body, _ = readiness(client)
    assert (status, body["status"]) == (200, "ok"), body
    assert set(body["checks"]) == TARGETS[target][1]
    for check in body["checks"].values():
        assert check["ok"] is True and check["latency_ms"] >= 0 and "error" not in check


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_another_method_is_a_405(
    path: str, function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    response = client_of("query", monkeypatch).delete(path)
    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("target", ["process", "notify"])
def test_internal_functions_answer_health_without_the_token_and_nothing_else(
    target: str, function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_of(target, monkeypatch)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.post("/healthz", data=b"{}").status_code == 405  # no event is taken there
    assert client.post("/", data=b"{}").status_code == 401


def test_without_a_broker_configured_there_is_no_broker_check(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("K_SINK", raising=False)
    _, body, _ = readiness(client_of("presign", monkeypatch))
    assert set(body["checks"]) == {"postgres", "redis", "s3"}


@pytest.mark.parametrize(
    ("setting", "dependency"),
    [
        ("FILEPIPE_REDIS_URL", "redis"),
        ("FILEPIPE_DATABASE_URL", "postgres"),
        ("FILEPIPE_S3_ENDPOINT_URL", "s3"),
        ("K_SINK", "broker"),
    ],
)
def test_a_dependency_down_is_a_quick_503_naming_it(
    setting: str,
    dependency: str,
    function_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    event_receiver: Receiver,
    closed_port_url: str,
) -> None:
    scheme = {"FILEPIPE_REDIS_URL": "redis", "FILEPIPE_DATABASE_URL": "postgresql"}.get(setting)
    down = closed_port_url.replace("http", scheme, 1) if scheme else closed_port_url
    if setting == "FILEPIPE_DATABASE_URL":
        down += "filepipe"
    settings = {"K_SINK": event_receiver.url, setting: down}
    status, body, took = readiness(client_of("process", monkeypatch, **settings))
    assert (status, body["status"]) == (503, "unavailable")
    failed = {name for name, check in body["checks"].items() if not check["ok"]}
    assert failed == {dependency}
    assert body["checks"][dependency]["error"]
    assert "127.0.0.1" not in str(body)
    assert took < 3.5
