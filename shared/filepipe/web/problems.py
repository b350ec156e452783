"""The one mapping of every exception an HTTP answer can come from to ``application/problem+json``.

RFC 9457 problem details. What maps to what:

- a ``ProblemError`` (filepipe's own 4xx/5xx): its status, title and detail;
- a ``DependencyError``, or a backing service's driver failing in a way retrying may fix
  (PostgreSQL connection, closed connection or pool timeout, Redis connection or timeout, S3
  unreachable or 5xx): 503 with ``Retry-After``, naming the dependency but none of its
  addresses;
- werkzeug's ``HTTPException`` (routing, the framework, the request limits): its status, with a
  fixed detail that echoes nothing of the request;
- anything else: a logged 500 that reveals nothing internal.
"""

from __future__ import annotations

import json
import logging

import psycopg
import redis.exceptions
from botocore.exceptions import BotoCoreError, ClientError
from flask import Response
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as RoutingMethodNotAllowed

from filepipe.errors import (
    BadRequest,
    DependencyError,
    HeaderFieldsTooLarge,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
    UnsupportedMediaType,
    UriTooLong,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_OUTAGES: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # includes psycopg_pool.PoolTimeout
    psycopg.InterfaceError,  # a connection closed under the request
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BotoCoreError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a backing service is down or overloaded (retry later)."""
    if isinstance(exc, (DependencyError, *_OUTAGES)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return int(status) >= 500
    return False


def problem_for(exc: BaseException, path: str | None = None) -> ProblemError:
    """The problem that answers ``exc`` (see the module docstring)."""
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, RoutingMethodNotAllowed):
        allowed = sorted(set(exc.valid_methods or []))
        return MethodNotAllowed(f"this method is not allowed on {path or 'this path'}", allowed)
    if isinstance(exc, HTTPException) and exc.code is not None and exc.code < 500:
        problem, detail = _FRAMEWORK_PROBLEMS.get(exc.code, _FRAMEWORK_PROBLEMS[400])
        return problem(detail)
    if is_outage(exc):
        log.warning("dependency failed", extra={"path": path, "error": repr(exc)})
        return ServiceUnavailable(f"{_dependency_of(exc)} is unavailable; retry later")
    log.error("unhandled error", extra={"path": path}, exc_info=exc)
    return InternalError("the request failed; it has been logged")


def _dependency_of(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        return "the database"
    if isinstance(exc, redis.exceptions.RedisError):
        return "the cache"
    if isinstance(exc, (BotoCoreError, ClientError)):
        return "object storage"
    return "a backing service"


_FRAMEWORK_PROBLEMS: dict[int, tuple[type[ProblemError], str]] = {
    400: (BadRequest, "the request is malformed"),
    404: (NotFound, "no such route"),
    413: (PayloadTooLarge, "the request body is too large"),
    414: (UriTooLong, "the request URL is too long"),
    415: (UnsupportedMediaType, "the request body's media type is not supported"),
    431: (HeaderFieldsTooLarge, "the request headers are too large"),
}


def problem_response(problem: ProblemError, instance: str | None = None) -> Response:
    return Response(
        json.dumps(problem.to_problem(instance)),
        status=problem.status,
        mimetype=PROBLEM_JSON,
        headers=problem.headers,
    )


def response_for(exc: BaseException, path: str | None = None) -> Response:
    """The problem+json answer to ``exc``."""
    return problem_response(problem_for(exc, path), path)
