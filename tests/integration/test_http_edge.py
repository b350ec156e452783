"""The HTTP edge of the live functions (``python -m filepipe.server``, gunicorn): every refusal is
problem+json with a status that fits, oversized requests are refused before they are read, and a
backing service that goes away is a 503 with ``Retry-After``, never a 500."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.faultproxy import FaultProxy, behind
from tests.support.files import Conn, add_file, tenants
from tests.support.processes import functions_running

pytestmark = pytest.mark.integration

FUNCTIONS = {
    "presign": ("functions/presign/main.py", "presign"),
    "query": ("functions/query/main.py", "query"),
    "webhooks": ("functions/notify/main.py", "webhooks"),
    "process": ("functions/process/main.py", "process"),
}


@pytest.fixture(scope="module")
def database_gate(database_url: str) -> Iterator[FaultProxy]:
    """PostgreSQL behind a proxy the tests can cut."""
    with FaultProxy("127.0.0.1", urlsplit(database_url).port or 5432) as gate:
        yield gate


@pytest.fixture(scope="module")
def live(
    service_env: dict[str, str], database_url: str, database_gate: FaultProxy
) -> Iterator[dict[str, str]]:
    """Each function as a real server process; their PostgreSQL is behind ``database_gate``."""
    gated = behind(database_url, database_gate)
    env = {**service_env, "FILEPIPE_DATABASE_URL": gated, "FILEPIPE_DB_POOL_MIN": "0"}
    with functions_running(FUNCTIONS, env) as urls:
        yield urls


@pytest.fixture
def key(conn: Conn) -> Iterator[tuple[str, str]]:
    with tenants(conn) as make:
        yield make()


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/problem+json", response.text[:300]
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def raw_request(url: str, head: bytes) -> bytes:
    """Send ``head`` (request line and headers, no body) and read the whole answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def upload(live: dict[str, str], api_key: str, body: bytes | str) -> requests.Response:
    return requests.post(
        f"{live['presign']}/uploads",
        data=body,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        timeout=10,
    )


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        (
            '{"filename": "a.pdf", "content_type": "application/pdf", "size": ' + "9" * 5000 + "}",
            "JSON",
        ),
        ('{"filename": "a\\ud800.pdf", "content_type": "application/pdf", "size": 1}', "surrogate"),
        (
            '{"filename": "a.pdf", "content_type": "application/pdf", "size": 1,'
            ' "metadata": {"k": "\\ud800"}}',
            "surrogate",
        ),
    ],
)
def test_malformed_json_is_a_400_never_a_500(
    live: dict[str, str], key: tuple[str, str], body: str, what: str
) -> None:
    assert what in problem(upload(live, key[1], body), 400)["detail"]


def test_a_nul_in_a_content_type_parameter_is_a_400(
    live: dict[str, str], key: tuple[str, str], conn: Conn
) -> None:
    body = {"filename": "a.txt", "content_type": "text/plain; charset=utf\u00008", "size": 1}
    refused = problem(upload(live, key[1], json.dumps(body)), 400)
    assert refused["errors"] == [
        {"field": "content_type", "message": "must be a media type such as 'application/pdf'"}
    ]
    assert conn.execute("SELECT 1 FROM files WHERE tenant = %s", (key[0],)).fetchone() is None


def test_a_huge_idempotency_key_is_a_431_problem(
    live: dict[str, str], key: tuple[str, str]
) -> None:
    response = requests.post(
        f"{live['presign']}/uploads",
        json={"filename": "a.pdf", "content_type": "application/pdf", "size": 1},
        headers={"Authorization": f"Bearer {key[1]}", "Idempotency-Key": "k" * 10_000},
        timeout=10,
    )
    problem(response, 431)


@pytest.mark.parametrize("function", ["presign", "query", "webhooks", "process"])
def test_routing_refusals_are_problems_on_every_function(
    live: dict[str, str], function: str
) -> None:
    url = live[function]
    problem(requests.get(f"{url}/%0A", timeout=10), 405 if function == "process" else 404)
    problem(requests.get(f"{url}/" + "a" * 9000, timeout=10), 414)
    if function != "process":
        problem(requests.get(f"{url}/no/such/route", timeout=10), 404)
        problem(requests.request("PATCH", f"{url}/openapi.json", timeout=10), 405)


def test_a_large_body_to_any_route_is_refused_before_it_is_sent(live: dict[str, str]) -> None:
    for url in live.values():
        parts = urlsplit(url)
        head = (
            f"POST /anywhere HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {40 * 1024 * 1024}\r\n\r\n"
        ).encode()
        answer = raw_request(url, head)  # not a byte of the 40 MiB is sent
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.split()[1] == b"413", answer[:200]
        assert b"application/problem+json" in rest


def test_a_request_that_is_not_a_cloudevent_is_refused_echoing_nothing(
    live: dict[str, str],
) -> None:
    response = requests.post(
        live["process"], data=b"secret-body", headers={"X-Secret": "hush"}, timeout=10
    )
    body = problem(response, 415)
    assert "secret" not in json.dumps(body) and "hush" not in json.dumps(body)


def test_postgresql_going_away_is_a_503_with_retry_after(
    live: dict[str, str], key: tuple[str, str], conn: Conn, database_gate: FaultProxy
) -> None:
    tenant, api_key = key
    file = add_file(conn, tenant)
    headers = {"Authorization": f"Bearer {api_key}"}
    assert requests.get(f"{live['query']}/files/{file['id']}", headers=headers, timeout=10).ok
    body = {"filename": "a.pdf", "content_type": "application/pdf", "size": 3}
    assert upload(live, api_key, json.dumps(body)).status_code == 201

    database_gate.cut()

    for response in (
        upload(live, api_key, json.dumps(body)),
        requests.get(f"{live['query']}/files", headers=headers, timeout=40),
        requests.get(f"{live['webhooks']}/webhooks", headers=headers, timeout=40),
    ):
        problem(response, 503)
        assert int(response.headers["Retry-After"]) > 0
