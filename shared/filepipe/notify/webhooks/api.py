"""The webhook subscription API (HTTP function ``webhooks``), per tenant, API-key auth.

- ``POST /webhooks {url, events}`` → 201 with the endpoint and its ``whsec_`` secret (shown
  only here);
- ``GET /webhooks`` → ``{items}``; ``GET /webhooks/{id}``; ``DELETE /webhooks/{id}`` → 204;
- ``POST /webhooks/{id}/rotate-secret {overlap_seconds?}`` → 200 with a new secret (shown only
  here); the old one keeps signing too until the overlap ends (default 24 h, at most 7 days);
- ``POST /webhooks/{id}/enable`` → 200: enabled again, no failures counted;
- ``GET /webhooks/{id}/deliveries?limit=`` → ``{items}``: attempts, newest first;
- ``POST /webhooks/{id}/deliveries/{delivery_id}/replay`` → 202: that attempt's event queued for
  the endpoint again (same ``webhook-id``), made by notify's next sweep.

A URL must pass the SSRF guard (``ssrf.py``) when registered, and again at every delivery.
Errors are problem+json through ``filepipe.web``; another tenant's endpoint is a 404. Without
``FILEPIPE_WEBHOOK_SECRET_KEYS`` every route but ``GET /openapi.json`` answers 503 (and logs
why): secrets can be neither stored nor used.
Standard Webhooks spec:
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Request, Response

from filepipe import auth, config, openapi, runtime
from filepipe.errors import BadRequest, ServiceUnavailable
from filepipe.events import (
    FILE_CANCELLED,
    FILE_DELETED,
    FILE_FAILED,
    FILE_MISSING,
    FILE_PROCESSED,
    FILE_QUARANTINED,
    FILE_REJECTED,
    FILE_UPLOADED,
)
from filepipe.notify.webhooks import delivery, encryption, ssrf, store
from filepipe.notify.webhooks.encryption import SecretBox
from filepipe.notify.webhooks.errors import HostNotFound, UnsafeURL
from filepipe.web import Api, Route, bounded_int, json_body, json_response

log = logging.getLogger(__name__)

EVENT_TYPES = (
    FILE_UPLOADED,
    FILE_PROCESSED,
    FILE_REJECTED,
    FILE_FAILED,
    FILE_QUARANTINED,
    FILE_CANCELLED,
    FILE_DELETED,
    FILE_MISSING,
)
"""The event types an endpoint can subscribe to (those the notify function receives)."""
DEFAULT_DELIVERIES_LIMIT = 50
MAX_DELIVERIES_LIMIT = 200
DEFAULT_OVERLAP_SECONDS = 24 * 3600
MAX_OVERLAP_SECONDS = 7 * 24 * 3600
UNCONFIGURED_RETRY_AFTER = 60
_FIELDS = frozenset({"url", "events"})
_ROTATE_FIELDS = frozenset({"overlap_seconds"})


def parse_endpoint_request(
    body: Mapping[str, Any],
    *,
    allow_loopback: bool,
    ports: ssrf.PortRanges = ssrf.ALLOWED_PORTS,
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
        ssrf.guard(url, allow_loopback=allow_loopback, ports=ports, resolver=resolver)
    except (UnsafeURL, HostNotFound) as exc:
        errors.append({"field": "url", "message": str(exc)})
    if errors:
        raise BadRequest("the webhook endpoint is invalid", errors=errors)
    assert isinstance(url, str) and isinstance(events, list)
    return url, [kind for kind in EVENT_TYPES if kind in events]


def parse_overlap(request: Request) -> int:
    """``overlap_seconds`` of a ``rotate-secret`` body; no body (or ``{}``): the default."""
    if not request.get_data(cache=True):
        return DEFAULT_OVERLAP_SECONDS
    body = json_body(request)
    errors = [
        {"field": name[:80], "message": "unknown field"}
        for name in sorted(set(body) - _ROTATE_FIELDS)
    ]
    overlap = body.get("overlap_seconds", DEFAULT_OVERLAP_SECONDS)
    if isinstance(overlap, float) and overlap.is_integer():
        overlap = int(overlap)  # JSON has one number type: 60.0 is the integer 60
    if not (
        isinstance(overlap, int)
        and not isinstance(overlap, bool)
        and 0 <= overlap <= MAX_OVERLAP_SECONDS
    ):
        errors.append(
            {
                "field": "overlap_seconds",
                "message": f"must be an integer from 0 to {MAX_OVERLAP_SECONDS} (7 days)",
            }
        )
    if errors:
        raise BadRequest("the rotation request is invalid", errors=errors)
    assert isinstance(overlap, int)
    return overlap


def _box() -> SecretBox:
    """The secret box, or a 503 (logged) when no key is configured."""
    box = encryption.box_for(runtime.current().settings)
    if box is None:
        log.error(
            "webhooks API unavailable: %s is not set, so endpoint secrets can be neither stored"
            " nor used (make up sets a development key in local/filepipe.env)",
            config.WEBHOOK_SECRET_KEYS,
        )
        raise ServiceUnavailable(
            "webhooks are not configured on this server; retry later",
            retry_after=UNCONFIGURED_RETRY_AFTER,
        )
    return box


def _authenticate(request: Request) -> str:
    _box()
    return auth.from_header(runtime.current().pool, request.headers.get("Authorization"))


def create(request: Request, tenant: str) -> Response:
    rt = runtime.current()
    url, events = parse_endpoint_request(
        json_body(request),
        allow_loopback=rt.settings.webhook_allow_loopback,
        ports=rt.settings.webhook_port_ranges,
    )
    endpoint = store.create_endpoint(rt.pool, _box(), tenant, url, events)
    return json_response(endpoint, 201, {"Location": f"/webhooks/{endpoint['id']}"})


def list_all(request: Request, tenant: str) -> Response:
    return json_response({"items": store.list_endpoints(runtime.current().pool, tenant)})


def get_one(request: Request, tenant: str, id: uuid.UUID) -> Response:
    return json_response(store.get_endpoint(runtime.current().pool, tenant, id))


def delete(request: Request, tenant: str, id: uuid.UUID) -> Response:
    store.delete_endpoint(runtime.current().pool, tenant, id)
    return Response(status=204)


def rotate_secret(request: Request, tenant: str, id: uuid.UUID) -> Response:
    overlap = parse_overlap(request)
    rotated = store.rotate_secret(
        runtime.current().pool, _box(), tenant, id, overlap_seconds=overlap
    )
    log.info("webhook secret rotated", extra={"endpoint_id": str(id), "overlap": overlap})
    return json_response(rotated)


def enable(request: Request, tenant: str, id: uuid.UUID) -> Response:
    endpoint = store.enable_endpoint(runtime.current().pool, tenant, id)
    log.info("webhook endpoint enabled", extra={"endpoint_id": str(id)})
    return json_response(endpoint)


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


def replay(request: Request, tenant: str, id: uuid.UUID, delivery_id: uuid.UUID) -> Response:
    queued = delivery.requeue(runtime.current().pool, tenant, id, delivery_id)
    return json_response(queued, 202)


api = Api(
    [
        Route("POST", "/webhooks", create),
        Route("GET", "/webhooks", list_all),
        Route("GET", "/webhooks/{id}", get_one),
        Route("DELETE", "/webhooks/{id}", delete),
        Route("POST", "/webhooks/{id}/rotate-secret", rotate_secret),
        Route("POST", "/webhooks/{id}/enable", enable),
        Route("GET", "/webhooks/{id}/deliveries", deliveries, query=frozenset({"limit"})),
        Route("POST", "/webhooks/{id}/deliveries/{delivery_id}/replay", replay),
        Route("GET", "/openapi.json", lambda request: openapi.response("webhooks"), public=True),
    ],
    authenticate=_authenticate,
)
