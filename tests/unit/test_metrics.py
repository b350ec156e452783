"""Metrics: what they export, how the HTTP edge labels requests, the ``/metrics`` server."""

from __future__ import annotations

import socket
import uuid

import pytest
from flask import Flask, Request, Response, request

from filepipe import metrics
from filepipe.config import Settings
from filepipe.errors import ConfigError
from filepipe.web import Api, Route, json_response
from tests.support.metrics import samples_of, scrape, value
from tests.support.waiting import free_port


def ok(req: Request, tenant: str, file_id: uuid.UUID) -> Response:
    return json_response({"file_id": str(file_id)})


api = Api([Route("GET", "/files/{file_id}", ok)], authenticate=lambda req: "acme")
app = Flask(__name__)


def call(method: str, path: str) -> Response:
    with app.test_request_context(path, method=method):
        return api(request)


def test_requests_are_counted_by_route_pattern_method_and_status() -> None:
    port = free_port()
    assert metrics.serve(port, "127.0.0.1")
    for file_id in (uuid.uuid4(), uuid.uuid4()):
        call("GET", f"/files/{file_id}")
    call("GET", "/elsewhere")
    call("POST", f"/files/{uuid.uuid4()}")

    samples = scrape(port)
    total = "filepipe_http_requests_total"
    assert value(samples, total, route="/files/{file_id}", method="GET", status="200") == 2
    assert value(samples, total, route=metrics.UNMATCHED_ROUTE, status="404") == 1
    assert value(samples, total, route=metrics.UNMATCHED_ROUTE, status="405") == 1
    assert not [s for s in samples if s.labels.get("route", "").startswith("/files/0")]
    count = "filepipe_http_request_duration_seconds_count"
    assert value(samples, count, route="/files/{file_id}") == 2


def test_each_test_starts_from_fresh_metrics() -> None:
    assert samples_of(metrics.get().http_requests) == []


def test_serve_is_once_per_process_and_leaves_a_taken_port_alone() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert not metrics.serve(taken.getsockname()[1], "127.0.0.1")
    assert not metrics.serve(free_port(), "127.0.0.1"), "a second call does not retry"


def test_port_zero_serves_nothing() -> None:
    assert not metrics.serve(0)


def test_without_a_multiprocess_directory_the_worker_serves_not_the_master(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_DIR, raising=False)
    assert not metrics.serve_before_fork(free_port())
    assert metrics.serve(free_port(), "127.0.0.1"), "left to the first request"


def test_metrics_port_comes_from_the_environment() -> None:
    assert Settings.from_env({}).metrics_port == 0
    assert Settings.from_env({"FILEPIPE_METRICS_PORT": "9081"}).metrics_port == 9081
    with pytest.raises(ConfigError):
        Settings.from_env({"FILEPIPE_METRICS_PORT": "70000"})
