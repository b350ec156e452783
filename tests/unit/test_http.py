from __future__ import annotations

import json

from flask import Flask, Request, Response

from filepipe.errors import BadRequest, DependencyError
from filepipe.http import handle, json_response


def ok(request: Request, file_id: str = "") -> Response:
    return json_response({"file_id": file_id})


def bad(request: Request) -> Response:
    raise BadRequest("nope", errors=[{"field": "x", "message": "y"}])


def down(request: Request) -> Response:
    raise DependencyError("db gone")


def boom(request: Request) -> Response:
    raise RuntimeError("secret internals")


ROUTES = {
    ("GET", "/files/{file_id}"): ok,
    ("POST", "/bad"): bad,
    ("POST", "/down"): down,
    ("POST", "/boom"): boom,
}
app = Flask(__name__)


def call(method: str, path: str) -> Response:
    with app.test_request_context(path, method=method):
        from flask import request

        return handle(request, ROUTES)


def test_path_parameters_reach_the_handler() -> None:
    assert json.loads(call("GET", "/files/abc").get_data()) == {"file_id": "abc"}


def test_problems_for_unknown_route_method_and_errors() -> None:
    missing, wrong_method = call("GET", "/nope"), call("DELETE", "/files/abc")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert wrong_method.headers["Allow"] == "GET"
    problem = json.loads(call("POST", "/bad").get_data())
    assert problem["status"] == 400 and problem["errors"][0]["field"] == "x"
    assert problem["instance"] == "/bad"
    assert call("POST", "/down").status_code == 503
    crashed = call("POST", "/boom")
    assert crashed.status_code == 500 and crashed.mimetype == "application/problem+json"
    assert b"secret internals" not in crashed.get_data()
