"""JSON request and response bodies of the HTTP functions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Request, Response

from filepipe.errors import BadRequest, UnsupportedMediaType


def iso(value: datetime | None) -> str | None:
    """An RFC 3339 UTC timestamp with ``Z``, as the API writes them."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        mimetype="application/json",
        headers=dict(headers or {}),
    )


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body, or a 4xx problem saying what is wrong with it.

    The size is bounded before (``FILEPIPE_MAX_REQUEST_BYTES``, ``filepipe.web.limits``).
    Refused: another media type (415); bytes that are not UTF-8 JSON, nesting too deep to parse,
    integers beyond Python's digit limit, strings with lone surrogates (``"\\ud800"``, which no
    database or UTF-8 encoder takes), and anything but an object (400).
    """
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        body = json.loads(request.get_data(cache=True).decode("utf-8"))
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except RecursionError as exc:
        raise BadRequest("the JSON body is nested too deeply") from exc
    except UnicodeError as exc:
        raise BadRequest("the body is not valid UTF-8 (or holds a lone surrogate)") from exc
    except ValueError as exc:  # JSONDecodeError, and integers past the digit limit
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
