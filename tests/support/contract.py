"""Checking live HTTP responses against a function's OpenAPI document (``filepipe.openapi``).

``conforms(response, "query", "/files/{id}", "GET")`` asserts the status is declared for the
operation in the query function's document, the media type and body match its schema (JSON
Schema 2020-12 with format checks) and every required header is present and well-formed.
``serve_command(function, port)`` is how a test runs an HTTP function as a real process.
"""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS31Validator
from werkzeug.test import TestResponse

from filepipe import openapi

_ENTRY_POINTS = {
    "presign": ("functions/presign/main.py", "presign"),
    "query": ("functions/query/main.py", "query"),
    "webhooks": ("functions/notify/main.py", "webhooks"),
}


def serve_command(function: str, port: int) -> list[str]:
    """The arguments (after the interpreter) that serve HTTP ``function`` on 127.0.0.1:``port``,
    as ``local/Procfile`` does; for ``tests.support.processes.running``."""
    source, target = _ENTRY_POINTS[function]
    return [
        *("-m", "filepipe.server", "--source", source, "--target", target),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]


def resolve(function: str, node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) of ``function``'s document."""
    while "$ref" in node:
        target: Any = openapi.document(function)
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def conforms(response: TestResponse, function: str, path: str, method: str) -> None:
    """Assert ``response`` is one ``function``'s document declares for ``method path``."""
    operation = openapi.document(function)["paths"][path][method.lower()]
    declared = operation["responses"].get(str(response.status_code))
    assert declared is not None, f"{method} {path} does not declare {response.status_code}"
    declared = resolve(function, declared)
    for name, header in declared.get("headers", {}).items():
        header = resolve(function, header)
        if header.get("required"):
            assert name in response.headers, f"{response.status_code} lacks {name}"
        if name in response.headers:
            check(function, header["schema"], _header_value(header["schema"], response, name))
    if "content" not in declared:
        assert response.get_data() == b"", f"{response.status_code} must have no body"
        return
    assert response.mimetype in declared["content"], response.mimetype
    check(function, declared["content"][response.mimetype]["schema"], response.get_json())


def _header_value(schema: dict[str, Any], response: TestResponse, name: str) -> Any:
    """The header as its schema types it (headers are strings on the wire)."""
    value = response.headers[name]
    return int(value) if schema.get("type") == "integer" and value.isdigit() else value


def check(function: str, schema: dict[str, Any], instance: Any) -> None:
    """Validate ``instance`` against a schema of ``function``'s document (``$ref``s resolved)."""
    root = {**schema, "components": openapi.document(function)["components"]}
    OAS31Validator(root, format_checker=OAS31Validator.FORMAT_CHECKER).validate(instance)
