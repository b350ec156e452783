"""The webhook subscription API (HTTP function ``webhooks``), per tenant, API-key auth.

- ``POST /webhooks {url, events}`` → 201 with the endpoint and its ``whsec_`` secret (shown
  only here);
- ``GET /webhooks`` → ``{items}``; ``GET /webhooks/{id}``; ``DELETE /webhooks/{id}`` → 204;
- ``GET /webhooks/{id}/deliveries?limit=`` → ``{items}``: attempts, newest first.

A URL must pass the SSRF guard (``ssrf.py``) when registered, and again at every delivery.
Errors are problem+json through ``filepipe.http.handle``; another tenant's endpoint is a 404.
Standard Webhooks spec:
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from flask import Request, Response

from filepipe import runtime
from filepipe.auth import authenticate, bearer_token
from filepipe.db import DatabaseUnavailable
from filepipe.errors import BadRequest
from filepipe.events import FILE_FAILED, FILE_PROCESSED, FILE_REJECTED, FILE_UPLOADED
from filepipe.http import Routes, json_body, json_response
from filepipe.openapi import serve_openapi
from filepipe.webhooks import ssrf, store
from filepipe.webhooks.errors import HostNotFound, UnsafeURL

EVENT_TYPES = (FILE_UPLOADED, FILE_PROCESSED, FILE_REJECTED, FILE_FAILED)
"""The event types an endpoint can subscribe to (those the notify function receives)."""
DEFAULT_DELIVERIES_LIMIT = 50
MAX_DELIVERIES_LIMIT = 200
_FIELDS = frozenset({"url", "events"})


def parse_endpoint_request(
    body: Mapping[str, Any],
    *,
    allow_loopback: bool,
    resolver: ssrf.Resolver = socket.getaddrinfo,
) -> tuple[str, list[str]]:
    """The URL and event types of a ``POST /webhooks`` body; a 400 lists every field at fault."""
    errors = [{"field": name, "message": "unknown field"} for name in sorted(set(body) - _FIELDS)]
    events = body.get("events")
    if (
        not isinstance(events, list)
        or not events
        or not all(isinstance(item, str) for item in events)
    ):
        errors.append({"field": "events", "message": "must be a non-empty list of event types"})
    elif unknown := sorted(set(events) - set(EVENT_TYPES)):
        errors.append(
            {"field": "events", "message": f"unknown: {', '.join(unknown)}; one of {EVENT_TYPES}"}
        )
    url = body.get("url")
    try:
        ssrf.guard(url, allow_loopback=allow_loopback, resolver=resolver)
    except (UnsafeURL, HostNotFound) as exc:
        errors.append({"field": "url", "message": str(exc)})
    if errors:
        raise BadRequest("the webhook endpoint is invalid", errors=errors)
    assert isinstance(url, str) and isinstance(events, list)
    return url, [kind for kind in EVENT_TYPES if kind in events]


def _database(handler: Callable[..., Response]) -> Callable[..., Response]:
    """PostgreSQL being unreachable becomes a ``DependencyError`` (a 503 the client retries)."""

    @functools.wraps(handler)
    def wrapper(request: Request, **params: str) -> Response:
        try:
            return handler(request, **params)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"PostgreSQL failed: {exc}") from exc

    return wrapper


def _tenant(request: Request) -> str:
    return authenticate(runtime.current().pool, bearer_token(request.headers.get("Authorization")))


@_database
def create(request: Request) -> Response:
    rt = runtime.current()
    tenant = _tenant(request)
    url, events = parse_endpoint_request(
        json_body(request), allow_loopback=rt.settings.webhook_allow_loopback
    )
    endpoint = store.create_endpoint(rt.pool, tenant, url, events)
    return json_response(endpoint, 201, {"Location": f"/webhooks/{endpoint['id']}"})


@_database
def list_all(request: Request) -> Response:
    tenant = _tenant(request)
    return json_response({"items": store.list_endpoints(runtime.current().pool, tenant)})


@_database
def get_one(request: Request, endpoint_id: str) -> Response:
    tenant = _tenant(request)
    return json_response(store.get_endpoint(runtime.current().pool, tenant, endpoint_id))


@_database
def delete(request: Request, endpoint_id: str) -> Response:
    tenant = _tenant(request)
    store.delete_endpoint(runtime.current().pool, tenant, endpoint_id)
    return Response(status=204)


@_database
def deliveries(request: Request, endpoint_id: str) -> Response:
    tenant = _tenant(request)
    limit = _limit(request.args.get("limit"))
    items = store.list_deliveries(runtime.current().pool, tenant, endpoint_id, limit=limit)
    return json_response({"items": items})


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_DELIVERIES_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DELIVERIES_LIMIT:
        raise BadRequest(
            f"limit must be an integer between 1 and {MAX_DELIVERIES_LIMIT}",
            errors=[{"field": "limit", "message": "out of range"}],
        )
    return int(raw)


ROUTES: Routes = {
    ("POST", "/webhooks"): create,
    ("GET", "/webhooks"): list_all,
    ("GET", "/webhooks/{endpoint_id}"): get_one,
    ("DELETE", "/webhooks/{endpoint_id}"): delete,
    ("GET", "/webhooks/{endpoint_id}/deliveries"): deliveries,
    ("GET", "/openapi.json"): serve_openapi,
}
