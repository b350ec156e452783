"""What a WebSocket opening request asks for, and the HTTP answers that refuse it.

``GET /ws?token=<api key>&file_id=<uuid>`` (or ``Authorization: Bearer <api key>``; browsers
can't set headers on a WebSocket, hence the query parameter). A refusal is an ordinary HTTP
response sent instead of ``101 Switching Protocols``, with an RFC 9457 problem+json body.

Browsers send ``Origin`` with every WebSocket opening request (RFC 6455 section 4.1) and let
any page open one, so a page on another site could use a key it holds: an ``Origin`` not in
``FILEPIPE_ALLOWED_ORIGINS`` is refused (403). Clients that are not browsers send none and are
let through; their key is what authenticates them.
"""

from __future__ import annotations

import http
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Response

from filepipe.auth import bearer_token
from filepipe.errors import BadRequest, Forbidden, NotFound, ProblemError, Unauthorized

WS_PATH = "/ws"
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class StreamRequest:
    """A parsed ``/ws`` request: the API key to check and the optional file filter."""

    token: str
    file_id: str | None


def route(target: str) -> str:
    """The path of a request target (``/ws?token=…`` → ``/ws``)."""
    return urlsplit(target).path


def parse(target: str, headers: Headers) -> StreamRequest:
    """Read the token and file filter of a ``/ws`` request; ``Unauthorized`` or ``BadRequest``."""
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    authorization = headers.get("Authorization")
    if authorization is not None:
        token = bearer_token(authorization)
    else:
        tokens = query.get("token", [])
        if not tokens or not tokens[0].strip():
            raise Unauthorized(
                "missing API key; send 'Authorization: Bearer <api key>' or '?token=<api key>'"
            )
        token = tokens[0].strip()
    return StreamRequest(token=token, file_id=parse_file_id(query.get("file_id")))


def parse_file_id(values: list[str] | None) -> str | None:
    """The normalised ``file_id`` filter, ``None`` when absent; ``BadRequest`` unless a uuid."""
    if values is None:
        return None
    if len(values) != 1:
        raise BadRequest("give at most one file_id", errors=[{"field": "file_id"}])
    try:
        return str(uuid.UUID(values[0]))
    except ValueError as exc:
        raise BadRequest(
            "file_id must be a UUID", errors=[{"field": "file_id", "message": "not a UUID"}]
        ) from exc


class TooManyConnections(ProblemError):
    status = 429
    title = "Too Many Requests"


def check_origin(headers: Headers, allowed: Collection[str]) -> None:
    """``Forbidden`` unless the request has no ``Origin`` or one in ``allowed`` (lower case;
    ``*`` allows any)."""
    origins = headers.get_all("Origin")
    if not origins:
        return
    if len(origins) > 1:
        raise Forbidden("send at most one Origin header")
    if "*" in allowed or origins[0].strip().lower() in allowed:
        return
    raise Forbidden(f"WebSocket connections from the origin {origins[0][:200]!r} are not allowed")


def not_found(path: str) -> NotFound:
    return NotFound(f"no such path {path!r}; connect to {WS_PATH}")


def problem_response(error: ProblemError, instance: str | None = None) -> Response:
    """``error`` as an HTTP response (``application/problem+json``) refusing the upgrade."""
    return json_response(
        error.status,
        error.to_problem(instance),
        content_type="application/problem+json",
        extra_headers=error.headers,
    )


def json_response(
    status: int,
    body: dict[str, Any],
    *,
    content_type: str = "application/json",
    extra_headers: dict[str, str] | None = None,
) -> Response:
    payload = json.dumps(body).encode()
    headers = Headers(
        {
            "Content-Type": content_type,
            "Content-Length": str(len(payload)),
            "Connection": "close",
            **(extra_headers or {}),
        }
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, payload)
