"""The webhook subscription API (HTTP function ``webhooks``), per tenant, API-key auth.

- ``POST /webhooks {url, events}`` → 201 with the endpoint and its ``whsec_`` secret (shown
  only here);
- ``GET /webhooks`` → ``{items}``; ``GET /webhooks/{id}``; ``DELETE /webhooks/{id}`` → 204;
- ``GET /webhooks/{id}/deliveries?limit=`` → ``{items}``: attempts, newest first.

A URL must pass the SSRF guard (``ssrf.py``) when registered, and again at every delivery.
Errors are problem+json through ``filepipe.web``; another tenant's endpoint is a 404.
Standard Webhooks spec:
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Request, Response

from filepipe import auth, openapi, runtime
from filepipe.errors import BadRequest
from filepipe.events import FILE_FAILED, FILE_PROCESSED, FILE_REJECTED, FILE_UPLOADED
from filepipe.notify.webhooks import ssrf, store
from filepipe.notify.webhooks.errors import HostNotFound, UnsafeURL
from filepipe.web import Api, Route, bounded_int, json_body, json_response

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
    elif len(set(events)) != len(events):
        errors.append({"field": "events", "message": "must not name an event type twice"})
    url = body.get("url")
    try:
        ssrf.guard(url, allow_loopback=allow_loopback, resolver=resolver)
    except (UnsafeURL, HostNotFound) as exc:
        errors.append({"field": "url", "message": str(exc)})
    if errors:
        raise BadRequest("the webhook endpoint is invalid", errors=errors)
    assert isinstance(url, str) and isinstance(events, list)
    return url, [kind for kind in EVENT_TYPES if kind in events]


def _authenticate(request: Request) -> str:
    return auth.from_header(runtime.current().pool, request.headers.get("Authorization"))


def create(request: Request, tenant: str) -> Response:
    rt = runtime.current()
    url, events = parse_endpoint_request(
        json_body(request), allow_loopback=rt.settings.webhook_allow_loopback
    )
    endpoint = store.create_endpoint(rt.pool, tenant, url, events)
    return json_response(endpoint, 201, {"Location": f"/webhooks/{endpoint['id']}"})


def list_all(request: Request, tenant: str) -> Response:
    return json_response({"items": store.list_endpoints(runtime.current().pool, tenant)})


def get_one(request: Request, tenant: str, id: uuid.UUID) -> Response:
    return json_response(store.get_endpoint(runtime.current().pool, tenant, id))


def delete(request: Request, tenant: str, id: uuid.UUID) -> Response:
    store.delete_endpoint(runtime.current().pool, tenant, id)
    return Response(status=204)


def deliveries(request: Request, tenant: str, id: uuid.UUID) -> Response:
    limit = bounded_int(
        "limit",
        request.args.get("limit"),
        low=1,
        high=MAX_DELIVERIES_LIMIT,
        default=DEFAULT_DELIVERIES_LIMIT,
    )
    items = store.list_deliveries(runtime.current().pool, tenant, id, limit=limit)
    return json_response({"items": items})


api = Api(
    [
        Route("POST", "/webhooks", create),
        Route("GET", "/webhooks", list_all),
        Route("GET", "/webhooks/{id}", get_one),
        Route("DELETE", "/webhooks/{id}", delete),
        Route("GET", "/webhooks/{id}/deliveries", deliveries, query=frozenset({"limit"})),
        Route("GET", "/openapi.json", lambda request: openapi.response("webhooks"), public=True),
    ],
    authenticate=_authenticate,
)
