"""The answers every operation shares (the documents' `info.description`), asked of each HTTP
function as a live process: 400 for unknown parameters and malformed ids, 401 before anything
else, 404/405 for unknown routes and methods, 413/414/415/431 for requests too large or not JSON,
503 with ``Retry-After`` when PostgreSQL is down, and always ``application/problem+json``.

"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.contract.conftest import Tenant
from tests.support.contract import check, serve_command
from tests.support.processes import running
from tests.support.waiting import free_port

pytestmark = pytest.mark.integration

UPLOAD = {"filename": "a.txt", "content_type": "text/plain", "size": 1}
HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["file.failed"]}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@dataclass(frozen=True)
class Ask:
    function: str
    method: str
    path: str
    """May name ``{file}`` or ``{webhook}``: one of the tenant's."""
    status: int
    json: Any = None
    data: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    header: str | None = None
    """A header the answer must have."""


def ask(name: str, *args: Any, **kwargs: Any) -> Any:
    return pytest.param(Ask(*args, **kwargs), id=name)


def padded(body: dict[str, Any], size: int) -> bytes:
    raw = json.dumps(body).encode()
    return raw + b" " * (size - len(raw))


CASES = [
    ask("no key first", "presign", "POST", "/uploads", 401, data=b"x", auth=False,
        headers={"Content-Type": "text/plain"}, header="WWW-Authenticate"),
    ask("not json", "presign", "POST", "/uploads", 415, data=b"{}",
        headers={"Content-Type": "text/plain"}),
    ask("malformed json", "presign", "POST", "/uploads", 400, data=b"{",
        headers={"Content-Type": "application/json"}),
    ask("other method", "presign", "PATCH", "/uploads", 405, header="Allow"),
    ask("unknown route", "presign", "GET", "/nope", 404),
    ask("body over 1 MiB", "presign", "POST", "/uploads", 413,
        data=padded(UPLOAD, 1100 * 1024), headers={"Content-Type": "application/json"}),
    ask("body under 1 MiB", "presign", "POST", "/uploads", 201,
        data=padded(UPLOAD, 900 * 1024), headers={"Content-Type": "application/json"}),
    ask("completion of 10,000 parts", "presign", "POST", "/uploads/{file}/complete", 409,
        json={"parts": [{"number": n, "etag": f'"{n:032x}"'} for n in range(1, 10_001)]}),
    ask("unknown parameter", "presign", "POST", "/uploads?x=1", 400, json=UPLOAD),
    ask("metadata null", "presign", "POST", "/uploads", 400, json={**UPLOAD, "metadata": None}),
    ask("sha256 null", "presign", "POST", "/uploads", 400, json={**UPLOAD, "sha256": None}),
    ask("integral size", "presign", "POST", "/uploads", 201, json={**UPLOAD, "size": 1.0}),
    ask("long url", "presign", "GET", "/" + "a" * 16 * 1024, 414),
    ask("header fields too large", "presign", "GET", "/openapi.json", 431,
        headers={"X-Large": "a" * 9000}, auth=False),
    ask("framework route", "presign", "GET", "/robots.txt", 404),
    ask("document unknown parameter", "presign", "GET", "/openapi.json?x=1", 400, auth=False),
    ask("id before key", "query", "GET", "/files/nope", 401, auth=False,
        header="WWW-Authenticate"),
    ask("malformed file id", "query", "GET", "/files/nope", 400),
    ask("unknown file parameter", "query", "GET", "/files?colour=red", 400),
    ask("repeated file parameter", "query", "GET", "/files?limit=1&limit=2", 400),
    ask("newline in path", "query", "GET", "/files/a%0Ab/logs", 400),
    ask("other file method", "query", "POST", "/files", 405, header="Allow"),
    ask("GET body over 256 KiB", "query", "GET", "/files", 413, data=b" " * 300 * 1024,
        headers={"Content-Type": "application/json"}),
    ask("download of a PENDING file", "query", "GET", "/files/{file}/download", 409),
    ask("download redirect not a flag", "query", "GET", "/files/{file}/download?redirect=1", 400),
    ask("download redirect upper case", "query", "GET", "/files/{file}/download?redirect=TRUE",
        400),
    ask("download redirect empty", "query", "GET", "/files/{file}/download?redirect=", 400),
    ask("download unknown parameter", "query", "GET", "/files/{file}/download?inline=1", 400),
    ask("download malformed id", "query", "GET", "/files/nope/download", 400),
    ask("not RFC 3339: space", "query", "GET", "/files?created_after=2026-01-31 09:30Z", 400),
    ask("not RFC 3339: basic", "query", "GET", "/files?created_after=20260131T093000Z", 400),
    ask("not RFC 3339: week", "query", "GET", "/files?created_after=2026-W05-1T09:30Z", 400),
    ask("webhook id before key", "webhooks", "GET", "/webhooks/nope", 401, auth=False,
        header="WWW-Authenticate"),
    ask("other webhook method", "webhooks", "PUT", "/webhooks", 405, header="Allow"),
    ask("malformed webhook id", "webhooks", "GET", "/webhooks/nope", 400),
    ask("webhook id without hyphens", "webhooks", "GET", "/webhooks/{webhook_hex}", 400),
    ask("webhook id as urn", "webhooks", "GET", "/webhooks/urn:uuid:{webhook}", 400),
    ask("unknown webhooks parameter", "webhooks", "GET", "/webhooks?x=1", 400),
    ask("unknown webhook parameter", "webhooks", "GET", "/webhooks/{webhook}?x=1", 400),
    ask("unknown deliveries parameter", "webhooks", "GET", "/webhooks/{webhook}/deliveries?x=1",
        400),
    ask("repeated limit", "webhooks", "GET", "/webhooks/{webhook}/deliveries?limit=1&limit=2",
        400),
    ask("superscript limit", "webhooks", "GET", "/webhooks/{webhook}/deliveries?limit=²", 400),
    ask("arabic-indic limit", "webhooks", "GET", "/webhooks/{webhook}/deliveries?limit=٣", 400),
    ask("duplicate events", "webhooks", "POST", "/webhooks", 400,
        json={**HOOK, "events": ["file.failed", "file.failed"]}),
    ask("bracket in webhook url", "webhooks", "POST", "/webhooks", 400,
        json={**HOOK, "url": "http://[x"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def servers(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Each HTTP function as a live process."""
    logs = tmp_path_factory.mktemp("edge")
    env = {**service_env, "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "true"}
    with _serving(["presign", "query", "webhooks"], env, logs) as urls:
        yield urls


@pytest.mark.parametrize("case", CASES)
def test_the_edge_answers(case: Ask, servers: dict[str, str], tenant: Tenant) -> None:
    path = case.path.format(
        file=tenant.file_ids[0],
        webhook=tenant.webhook_ids[-1],
        webhook_hex=tenant.webhook_ids[-1].replace("-", ""),
    )
    headers = {**({"Authorization": f"Bearer {tenant.key}"} if case.auth else {}), **case.headers}
    response = requests.request(
        case.method,
        servers[case.function] + path,
        headers=headers,
        json=case.json,
        data=case.data,
        timeout=10,
    )
    assert response.status_code == case.status, response.text[:300]
    if case.header:
        assert case.header in response.headers
    if case.status >= 400:
        assert response.headers["Content-Type"] == "application/problem+json", response.text[:300]
        check(case.function, PROBLEM, response.json())


def test_a_backing_service_down_is_a_503_with_retry_after(
    service_env: dict[str, str], tenant: Tenant, tmp_path: Path
) -> None:
    down = {**service_env, "FILEPIPE_DATABASE_URL": f"postgresql://127.0.0.1:{free_port()}/x"}
    with _serving(["presign"], down, tmp_path) as urls:
        response = requests.post(
            urls["presign"] + "/uploads",
            json=UPLOAD,
            headers={"Authorization": f"Bearer {tenant.key}"},
            timeout=30,
        )
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    check("presign", PROBLEM, response.json())
    assert int(response.headers["Retry-After"]) >= 1


@contextmanager
def _serving(functions: list[str], env: dict[str, str], logs: Path) -> Iterator[dict[str, str]]:
    """``functions`` as live processes: their base URLs."""
    with ExitStack() as stack:
        urls = {}
        for function in functions:
            port = free_port()
            command = serve_command(function, port)
            output = logs / f"{function}.log"
            stack.enter_context(running(command, port=port, env=env, output=output))
            urls[function] = f"http://127.0.0.1:{port}"
        yield urls
