"""The OpenAPI 3.1 document of filepipe's HTTP API, kept as ``openapi.yaml`` in this package.

One document describes every HTTP function (presign, query, webhook subscriptions); each serves
it as JSON at ``GET /openapi.json`` (no authentication), read and serialised once per process.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import yaml
from flask import Request, Response

DOCUMENT = "openapi.yaml"


@functools.cache
def document() -> dict[str, Any]:
    """The parsed document (treat as read-only)."""
    text = resources.files("filepipe").joinpath(DOCUMENT).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@functools.cache
def _document_json() -> bytes:
    return json.dumps(document(), separators=(",", ":")).encode()


def serve_openapi(request: Request) -> Response:
    """``GET /openapi.json``."""
    return Response(
        _document_json(),
        mimetype="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )
