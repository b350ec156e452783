"""The HTTP edge: routing, authentication order, the one rule for ids and query parameters,
every exception as problem+json, JSON bodies and the request limits (no services needed)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import redis.exceptions
from botocore.exceptions import ClientError, EndpointConnectionError
from flask import Flask, Request, Response, request
from psycopg_pool import PoolTimeout
from werkzeug.test import Client, EnvironBuilder

from filepipe import metrics
from filepipe.errors import BadRequest, DependencyError, Unauthorized
from filepipe.web import Api, Route, bounded_int, json_body, json_response
from filepipe.web.limits import MAX_HEADER_BYTES, MAX_TARGET_BYTES, RequestLimits
from tests.support.metrics import samples_of

FILE_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def authenticate(req: Request) -> str:
    if req.headers.get("Authorization") != "Bearer good":
        raise Unauthorized("invalid API key")
    return "acme"


def show(req: Request, tenant: str, file_id: uuid.UUID) -> Response:
    return json_response(
        {"tenant": tenant, "file_id": str(file_id), "type": type(file_id).__name__}
    )


def raising(exc: BaseException) -> Callable[..., Response]:
    def handler(req: Request, tenant: str) -> Response:
        raise exc

    return handler


def echo(req: Request, tenant: str) -> Response:
    return json_response(json_body(req))


api = Api(
    [
        Route("GET", "/files/{file_id}", show),
        Route("GET", "/files", lambda req, tenant: json_response({}), query=frozenset({"limit"})),
        Route("POST", "/echo", echo),
        Route("GET", "/public", lambda req: json_response({"public": True}), public=True),
    ],
    authenticate=authenticate,
)
app = Flask(__name__)


def call(
    method: str, path: str, *, key: str | None = "good", routes: Api = api, **kwargs: Any
) -> Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with app.test_request_context(path, method=method, headers=headers, **kwargs):
        return routes(request)


def problem(response: Response) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json", response.get_data()
    body: dict[str, Any] = json.loads(response.get_data())
    assert body["status"] == response.status_code
    return body


def test_ids_reach_the_handler_as_uuids_with_the_callers_tenant() -> None:
    body = json.loads(call("GET", f"/files/{FILE_ID}").get_data())
    assert body == {"tenant": "acme", "file_id": FILE_ID, "type": "UUID"}
    assert call("GET", f"/files/{FILE_ID}/").status_code == 200, "a trailing slash is the same"


@pytest.mark.parametrize("bad", ["abc", "0b1c2d3e4f5061728394a5b6c7d8e9f0", "%0A", FILE_ID + "0"])
def test_a_malformed_id_is_a_400_but_only_for_an_authenticated_caller(bad: str) -> None:
    assert problem(call("GET", f"/files/{bad}", key=None))["status"] == 401
    refused = problem(call("GET", f"/files/{bad}"))
    assert refused["status"] == 400
    assert refused["errors"] == [{"field": "file_id", "message": "not a UUID"}]


def test_query_parameters_unknown_repeated_or_empty_are_400_on_every_route() -> None:
    unknown = problem(call("GET", f"/files/{FILE_ID}?x=1"))
    assert unknown["status"] == 400 and unknown["errors"][0]["field"] == "x"
    repeated = problem(call("GET", "/files?limit=1&limit=2"))
    assert repeated["errors"] == [{"field": "limit", "message": "given more than once"}]
    empty = problem(call("GET", "/files?limit="))
    assert empty["errors"] == [{"field": "limit", "message": "must not be empty"}]
    assert call("GET", "/files?limit=5").status_code == 200


def test_segments_are_strings_and_open_prefixes_take_any_name_and_empty_values() -> None:
    def segments(req: Request, tenant: str, upload: str, part: str) -> Response:
        return json_response({"upload": upload, "part": part, "args": dict(req.args)})

    routes = Api(
        [
            Route(
                "GET",
                "/u/{upload}/{part}",
                segments,
                query=frozenset({"key"}),
                query_prefixes=("meta[",),
                segments=frozenset({"upload", "part"}),
            )
        ],
        authenticate=authenticate,
    )
    answer = call("GET", "/u/Ab.c-d_e/7?key=k&meta%5Bx%5D=&meta%5By%5D=2", routes=routes)
    assert json.loads(answer.get_data()) == {
        "upload": "Ab.c-d_e",
        "part": "7",
        "args": {"key": "k", "meta[x]": "", "meta[y]": "2"},
    }
    literal = call("GET", "/u/a/u?key=k", routes=routes)  # a literal segment is no part
    assert problem(literal)["status"] == 404
    refused = problem(call("GET", "/u/a/1?key=&meta%5Bx%5D=1&meta%5Bx%5D=2&other=1", routes=routes))
    assert refused["errors"] == [
        {"field": "key", "message": "must not be empty"},
        {"field": "meta[x]", "message": "given more than once"},
        {"field": "other", "message": "unknown parameter"},
    ]


def test_unknown_routes_and_methods_are_problems() -> None:
    missing = problem(call("GET", "/nope"))
    assert missing["status"] == 404 and missing["instance"] == "/nope"
    newline = problem(call("GET", "/files%0A"))
    assert newline["status"] == 404
    wrong = call("DELETE", f"/files/{FILE_ID}")
    assert problem(wrong)["status"] == 405 and wrong.headers["Allow"] == "GET, HEAD"


def test_public_routes_need_no_key() -> None:
    assert json.loads(call("GET", "/public", key=None).get_data()) == {"public": True}


@pytest.mark.parametrize(
    "outage",
    [
        DependencyError("db gone"),
        psycopg.OperationalError("connection refused"),
        PoolTimeout("couldn't get a connection after 30.00 sec"),
        redis.exceptions.ConnectionError("Connection refused"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ClientError(
            {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}},  # type: ignore[typeddict-item]
            "GetObject",
        ),
    ],
)
def test_backing_service_outages_are_503_with_retry_after(outage: BaseException) -> None:
    routes = Api([Route("GET", "/x", raising(outage))], authenticate=authenticate)
    answer = call("GET", "/x", routes=routes)
    assert problem(answer)["status"] == 503
    assert int(answer.headers["Retry-After"]) > 0


def test_anything_else_is_a_500_that_reveals_nothing() -> None:
    routes = Api(
        [Route("GET", "/x", raising(RuntimeError("secret internals")))], authenticate=authenticate
    )
    crashed = call("GET", "/x", routes=routes)
    assert problem(crashed)["status"] == 500
    assert b"secret internals" not in crashed.get_data()


def test_an_unknown_method_is_one_metrics_label() -> None:
    for method in ("FOO", "BAR", "GET"):
        call(method, "/nope")
    samples = samples_of(metrics.get().http_requests)
    methods = {sample.labels["method"] for sample in samples}
    assert methods == {"OTHER", "GET"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b"[" * 5000 + b"]" * 5000, 400),
        (b'{"n": ' + b"9" * 5000 + b"}", 400),
        (b'{"filename": "\\ud800"}', 400),
        (b'{"a": "\xff"}', 400),
        (b"[]", 400),
        (b"{", 400),
    ],
)
def test_malformed_json_bodies_are_4xx_never_500(body: bytes, status: int) -> None:
    answer = call("POST", "/echo", data=body, content_type="application/json")
    assert problem(answer)["status"] == status


def test_a_json_body_must_be_sent_as_json() -> None:
    assert problem(call("POST", "/echo", data=b"{}", content_type="text/plain"))["status"] == 415
    ok = call("POST", "/echo", data=b'{"a": "\\u00e9"}', content_type="application/json")
    assert json.loads(ok.get_data()) == {"a": "é"}


def test_bounded_integers_take_ascii_digits_only() -> None:
    assert bounded_int("limit", None, low=1, high=200, default=50) == 50
    assert bounded_int("limit", "200", low=1, high=200, default=50) == 200
    for bad in ("²", "0", "201", "1e2", "-1", " 5", "٣"):
        with pytest.raises(BadRequest):
            bounded_int("limit", bad, low=1, high=200, default=50)


def limited(max_body: int = 1024) -> tuple[Client, list[bytes]]:
    """A client of ``RequestLimits`` around an app that records the bodies it reads."""
    seen: list[bytes] = []

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return Client(RequestLimits(inner, max_body_bytes=max_body)), seen


def test_a_body_over_the_limit_is_refused_before_it_is_read() -> None:
    client, seen = limited()
    stream = io.BytesIO(b"x" * 10_000)
    answer = client.post("/anything", input_stream=stream, headers={"Content-Length": "10000"})
    assert answer.status_code == 413 and answer.mimetype == "application/problem+json"
    assert answer.headers["Connection"] == "close"
    assert stream.tell() == 0 and seen == [], "not a byte was read"
    assert client.post("/anything", data=b"x" * 1024).status_code == 200


def test_a_chunked_body_is_cut_at_the_limit() -> None:
    client, seen = limited()
    for size, status in ((5000, 413), (100, 200)):
        builder = EnvironBuilder(path="/", method="POST", input_stream=io.BytesIO(b"y" * size))
        environ = builder.get_environ()
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        assert client.open(environ).status_code == status
    assert seen == [b"y" * 100]


def test_long_targets_and_large_headers_are_414_and_431() -> None:
    client, _ = limited()
    too_long = client.get("/" + "a" * MAX_TARGET_BYTES)
    assert too_long.status_code == 414 and too_long.mimetype == "application/problem+json"
    big_header = client.get("/", headers={"Idempotency-Key": "k" * 10_000})
    assert big_header.status_code == 431 and big_header.mimetype == "application/problem+json"
    many = {f"X-H{i}": "v" * (MAX_HEADER_BYTES // 2) for i in range(10)}
    assert client.get("/", headers=many).status_code == 431
    assert client.get("/", headers={"X-Ok": "v" * 100}).status_code == 200


def test_a_content_length_that_is_not_a_number_is_a_400() -> None:
    statuses: list[str] = []
    environ = EnvironBuilder(path="/", method="POST").get_environ()
    environ["CONTENT_LENGTH"] = "12abc"
    limits = RequestLimits(lambda env, start: [b""], max_body_bytes=1024)
    limits(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["400 BAD REQUEST"]
