"""HTTP plumbing shared by the HTTP functions: routing, JSON bodies and problem+json errors.

Every error an HTTP function raises reaches the client through ``handle``: a ``ProblemError``
becomes its RFC 9457 ``application/problem+json`` answer, a ``DependencyError`` a 503 the client
may retry, anything else a logged 500 that reveals nothing internal. It also counts every
request (``filepipe_http_requests_total``, by route *pattern*, method and status) and its latency.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any

from flask import Request, Response

from filepipe import logs, metrics, telemetry
from filepipe.errors import (
    BadRequest,
    DependencyError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MAX_JSON_BODY = 64 * 1024

Handler = Callable[..., Response]
Routes = Mapping[tuple[str, str], Handler]


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        mimetype="application/json",
        headers=dict(headers or {}),
    )


def problem_response(error: ProblemError, instance: str | None = None) -> Response:
    return Response(
        json.dumps(error.to_problem(instance)),
        status=error.status,
        mimetype=PROBLEM_JSON,
        headers=error.headers,
    )


def handle(request: Request, routes: Routes) -> Response:
    """Dispatch ``request`` to the handler of its (method, path pattern); map errors to problems.

    Path patterns are literal paths or contain ``{name}`` segments, passed as keyword arguments.
    """
    route = [metrics.UNMATCHED_ROUTE]
    start = perf_counter()
    with logs.bound():
        response = _dispatch(request, routes, route)
    recorded = metrics.get()
    recorded.http_requests.labels(route[0], request.method, str(response.status_code)).inc()
    recorded.http_request_duration.labels(route[0], request.method).observe(perf_counter() - start)
    return response


def _dispatch(request: Request, routes: Routes, route: list[str]) -> Response:
    """``handle`` without the metrics; sets ``route[0]`` to the matched path pattern."""
    try:
        pattern, handler, params = _resolve(request.method, request.path, routes)
        route[0] = pattern
        telemetry.name_request(request.method, pattern)
        return handler(request, **params)
    except ProblemError as exc:
        return problem_response(exc, request.path)
    except DependencyError as exc:
        log.warning("dependency failed", extra={"path": request.path, "error": str(exc)})
        return problem_response(
            ServiceUnavailable("a backing service is unavailable; retry later"), request.path
        )
    except Exception:  # the one boundary where any error becomes a problem
        log.exception("unhandled error", extra={"path": request.path})
        return problem_response(InternalError("the request failed; it has been logged"))


def _resolve(method: str, path: str, routes: Routes) -> tuple[str, Handler, dict[str, str]]:
    allowed: list[str] = []
    for (route_method, pattern), handler in routes.items():
        match = _pattern(pattern).fullmatch(path.rstrip("/") or "/")
        if match is None:
            continue
        if route_method == method:
            return pattern, handler, match.groupdict()
        allowed.append(route_method)
    if allowed:
        raise MethodNotAllowed(f"{method} is not allowed on {path}", allowed)
    raise NotFound(f"no such route: {path}")


def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern)))


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body, or a 4xx problem explaining what is wrong with it."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    if (request.content_length or 0) > MAX_JSON_BODY:
        raise BadRequest(f"the JSON body must be at most {MAX_JSON_BODY} bytes")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_JSON_BODY:
        raise BadRequest(f"the JSON body must be at most {MAX_JSON_BODY} bytes")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
