"""Clean degradation at the HTTP edge: each live function (``python -m filepipe.server``), its
PostgreSQL, Redis or S3 behind a ``FaultProxy``, answers every request made while a dependency is
cut with a quick 503 problem+json carrying ``Retry-After``, and the very first request after the
dependency heals succeeds at once (the pool hands out no dead connection)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from filepipe.config import Settings
from tests.support.faultproxy import FaultProxy, behind
from tests.support.files import Conn, file_with_object, tenants
from tests.support.processes import functions_running, running
from tests.support.waiting import free_port

pytestmark = pytest.mark.integration

QUICKLY = 3.5
"""Seconds within which an outage is answered (checkout timeout 2 s, plus a loaded machine)."""

FUNCTIONS = {
    "presign": ("functions/presign/main.py", "presign"),
    "query": ("functions/query/main.py", "query"),
    "webhooks": ("functions/notify/main.py", "webhooks"),
}


@pytest.fixture(scope="module")
def gates(service_env: dict[str, str]) -> Iterator[dict[str, FaultProxy]]:
    """PostgreSQL, Redis and the S3 server, each behind a proxy of this module."""
    targets = {
        "postgres": service_env["FILEPIPE_DATABASE_URL"],
        "redis": Settings.from_env(service_env).redis_url,
        "s3": service_env["FILEPIPE_S3_ENDPOINT_URL"],
    }
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                FaultProxy(urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or 0)
            )
            for name, url in targets.items()
        }


@pytest.fixture(scope="module")
def live(service_env: dict[str, str], gates: dict[str, FaultProxy]) -> Iterator[dict[str, str]]:
    """Each HTTP function as a real server whose dependencies go through ``gates``."""
    env = {
        **service_env,
        "FILEPIPE_DATABASE_URL": behind(service_env["FILEPIPE_DATABASE_URL"], gates["postgres"]),
        "FILEPIPE_REDIS_URL": behind(Settings.from_env(service_env).redis_url, gates["redis"]),
        "FILEPIPE_S3_ENDPOINT_URL": behind(service_env["FILEPIPE_S3_ENDPOINT_URL"], gates["s3"]),
        "FILEPIPE_DB_POOL_MIN": "1",
    }
    with ExitStack() as stack:
        urls = stack.enter_context(functions_running(FUNCTIONS, env))
        port = free_port()
        args = ["-m", "filepipe.notify.gateway", "--host", "127.0.0.1", "--port", str(port)]
        stack.enter_context(running(args, port=port, env=env))
        urls["gateway"] = f"127.0.0.1:{port}"
        yield urls


@pytest.fixture
def healed(gates: dict[str, FaultProxy]) -> Iterator[dict[str, FaultProxy]]:
    """The gates, healed again whatever the test did."""
    yield gates
    for gate in gates.values():
        gate.heal()


@pytest.fixture
def key(conn: Conn) -> Iterator[tuple[str, str]]:
    with tenants(conn) as make:
        yield make()


@dataclass(frozen=True)
class Answer:
    """What a call answered, whatever the protocol."""

    status_code: int
    headers: Mapping[str, str]
    text: str


Call = Callable[[], Answer]


def _calls(live: dict[str, str], api_key: str, file_id: str) -> dict[str, Call]:
    headers = {"Authorization": f"Bearer {api_key}"}
    single = {"filename": "a.pdf", "content_type": "application/pdf", "size": 3}
    multipart = {**single, "size": 20 * 1024 * 1024, "multipart": True}

    def answer(response: requests.Response) -> Answer:
        return Answer(response.status_code, response.headers, response.text)

    def post(url: str, body: dict[str, Any]) -> Call:
        return lambda: answer(requests.post(url, json=body, headers=headers, timeout=30))

    def get(url: str) -> Call:
        return lambda: answer(requests.get(url, headers=headers, timeout=30))

    return {
        "POST /uploads": post(f"{live['presign']}/uploads", single),
        "POST /uploads multipart": post(f"{live['presign']}/uploads", multipart),
        "GET /files": get(f"{live['query']}/files"),
        "GET /files/{id}": get(f"{live['query']}/files/{file_id}"),
        "GET /files/{id}/download": get(f"{live['query']}/files/{file_id}/download"),
        "GET /webhooks": get(f"{live['webhooks']}/webhooks"),
    }


def _timed(call: Call) -> tuple[Answer, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _assert_quick_503(name: str, call: Call) -> None:
    response, took = _timed(call)
    assert response.status_code == 503, (name, response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/problem+json", name
    assert int(response.headers["Retry-After"]) > 0, name
    assert took < QUICKLY, (name, took)


def _assert_quick_success(name: str, call: Call) -> None:
    response, took = _timed(call)
    assert response.status_code < 400, (name, response.status_code, response.text[:300])
    assert took < QUICKLY, (name, took)


@pytest.mark.parametrize(
    ("dependency", "affected"),
    [
        (
            "postgres",
            [
                "POST /uploads",
                "POST /uploads multipart",
                "GET /files",
                "GET /webhooks",
            ],
        ),
        ("s3", ["POST /uploads multipart"]),
    ],
)
def test_a_cut_dependency_is_a_quick_503_and_the_first_request_after_healing_succeeds(
    live: dict[str, str],
    healed: dict[str, FaultProxy],
    key: tuple[str, str],
    conn: Conn,
    settings: Settings,
    dependency: str,
    affected: list[str],
) -> None:
    tenant, api_key = key
    file = file_with_object(conn, settings, tenant, b"%PDF-1.7\n")
    calls = _calls(live, api_key, str(file["id"]))
    for name in affected:  # every pool holds a live connection before the cut
        _assert_quick_success(name, calls[name])

    healed[dependency].cut()
    for name in affected:
        _assert_quick_503(name, calls[name])

    healed[dependency].heal()
    for name in affected:
        _assert_quick_success(name, calls[name])


def test_with_redis_cut_every_route_still_answers_quickly(
    live: dict[str, str],
    healed: dict[str, FaultProxy],
    key: tuple[str, str],
    conn: Conn,
    settings: Settings,
) -> None:
    """Redis only caches reads and counts upload rates: without it requests go on (fail open)."""
    tenant, api_key = key
    file = file_with_object(conn, settings, tenant, b"%PDF-1.7\n")
    calls = _calls(live, api_key, str(file["id"]))

    healed["redis"].cut()
    for name, call in calls.items():
        _assert_quick_success(name, call)


def _handshake(live: dict[str, str], api_key: str) -> Answer:
    """The gateway's answer to a WebSocket handshake."""
    try:
        with connect(f"ws://{live['gateway']}/ws?token={api_key}", open_timeout=10) as ws:
            assert ws.response is not None
            return Answer(ws.response.status_code, CaseInsensitiveDict(ws.response.headers), "")
    except InvalidStatus as refused:
        response = refused.response
        headers = CaseInsensitiveDict(response.headers)
        return Answer(response.status_code, headers, response.body.decode())


def test_the_gateway_handshake_is_a_quick_503_while_postgresql_is_cut_and_works_after(
    live: dict[str, str], healed: dict[str, FaultProxy], key: tuple[str, str]
) -> None:
    _, api_key = key

    def handshake() -> Answer:
        return _handshake(live, api_key)

    _assert_quick_success("handshake", handshake)

    healed["postgres"].cut()
    _assert_quick_503("handshake", handshake)
    ready = requests.get(f"http://{live['gateway']}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["checks"]["postgres"]["ok"] is False
    assert ready.json()["checks"]["redis"]["ok"] is True

    healed["postgres"].heal()
    _assert_quick_success("handshake", handshake)
    assert requests.get(f"http://{live['gateway']}/readyz", timeout=10).status_code == 200
