"""The OpenAPI 3.1 documents of filepipe's HTTP functions (temporary: one document, filtered)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import yaml
from flask import Response

DOCUMENT = "openapi.yaml"


@functools.cache
def _whole() -> dict[str, Any]:
    text = resources.files("filepipe").joinpath(DOCUMENT).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


_PREFIXES = {"presign": "/uploads", "query": "/files", "webhooks": "/webhooks"}


@functools.cache
def document(function: str) -> dict[str, Any]:
    whole = _whole()
    paths = {
        path: item
        for path, item in whole["paths"].items()
        if path.startswith(_PREFIXES[function]) or path == "/openapi.json"
    }
    return {**whole, "paths": paths}


@functools.cache
def _json(function: str) -> bytes:
    return json.dumps(document(function), separators=(",", ":")).encode()


def response(function: str) -> Response:
    return Response(
        _json(function),
        mimetype="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )
