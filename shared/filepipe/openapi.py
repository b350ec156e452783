"""The OpenAPI 3.1 documents of filepipe's HTTP functions, cut from ``openapi.yaml``.

``openapi.yaml`` in this package describes every HTTP operation once; each path item names the
functions that serve it (``x-filepipe-functions``) and each server the function it is
(``x-filepipe-function``). ``document(function)`` is one function's own document: its paths, its
server, and only the tags, security schemes and components those use, so a client or fuzzer
pointed at one function sees no route it does not serve. ``response(function)`` is that
function's ``GET /openapi.json`` (no authentication), serialised once per process.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import yaml
from flask import Response

SOURCE = "openapi.yaml"
FUNCTIONS = ("presign", "query", "webhooks")
"""The HTTP functions, each serving ``document(name)`` at ``GET /openapi.json``."""
CACHE_CONTROL = "public, max-age=300"

_FUNCTIONS_KEY = "x-filepipe-functions"
_FUNCTION_KEY = "x-filepipe-function"
_COMPONENTS = "#/components/"
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


@functools.cache
def source() -> dict[str, Any]:
    """The whole ``openapi.yaml``, markers included (treat as read-only)."""
    text = resources.files("filepipe").joinpath(SOURCE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@functools.cache
def document(function: str) -> dict[str, Any]:
    """The OpenAPI document of ``function``'s operations (treat as read-only).

    ``ValueError`` if ``function`` is not one of ``FUNCTIONS``.
    """
    if function not in FUNCTIONS:
        raise ValueError(f"no HTTP function {function!r}; one of {', '.join(FUNCTIONS)}")
    whole = copy.deepcopy(source())
    paths = {
        path: {key: value for key, value in item.items() if key != _FUNCTIONS_KEY}
        for path, item in whole["paths"].items()
        if function in item.get(_FUNCTIONS_KEY, ())
    }
    servers = [
        {key: value for key, value in server.items() if key != _FUNCTION_KEY}
        for server in whole.get("servers", [])
        if server.get(_FUNCTION_KEY) == function
    ]
    operations = [
        operation
        for item in paths.values()
        for method, operation in item.items()
        if method in _METHODS
    ]
    used_tags = {tag for operation in operations for tag in operation.get("tags", ())}
    security = [whole.get("security", []), *(op.get("security", []) for op in operations)]
    schemes = {name for requirements in security for req in requirements for name in req}

    result: dict[str, Any] = {
        "openapi": whole["openapi"],
        "info": {**whole["info"], "title": f"{whole['info']['title']} {function}"},
    }
    if servers:
        result["servers"] = servers
    if "security" in whole:
        result["security"] = whole["security"]
    tags = [tag for tag in whole.get("tags", []) if tag["name"] in used_tags]
    if tags:
        result["tags"] = tags
    result["paths"] = paths
    components = _used_components(whole.get("components", {}), paths, schemes)
    if components:
        result["components"] = components
    return result


def response(function: str) -> Response:
    """``GET /openapi.json`` of ``function``: its document as JSON, publicly cacheable."""
    return Response(
        _document_json(function),
        mimetype="application/json",
        headers={"Cache-Control": CACHE_CONTROL},
    )


@functools.cache
def _document_json(function: str) -> bytes:
    return json.dumps(document(function), separators=(",", ":")).encode()


def _used_components(
    components: dict[str, Any], paths: dict[str, Any], schemes: set[str]
) -> dict[str, Any]:
    """The components that ``paths`` reach through ``$ref`` (transitively), and ``schemes``."""
    used: set[tuple[str, str]] = set()
    pending = list(_refs(paths))
    while pending:
        section, name = pending.pop()
        if (section, name) in used:
            continue
        used.add((section, name))
        pending.extend(_refs(components[section][name]))
    kept: dict[str, Any] = {}
    for section, entries in components.items():
        wanted = {
            name: value
            for name, value in entries.items()
            if (section, name) in used or (section == "securitySchemes" and name in schemes)
        }
        if wanted:
            kept[section] = wanted
    return kept


def _refs(node: Any) -> Iterator[tuple[str, str]]:
    """Every ``(section, name)`` a local ``$ref`` under ``node`` names."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMPONENTS):
            section, name = ref.removeprefix(_COMPONENTS).split("/")[:2]
            yield section, name
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)
