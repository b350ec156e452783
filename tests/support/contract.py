"""Checking live HTTP responses against the OpenAPI document (``filepipe/openapi.yaml``).

``conforms(response, "/files/{id}", "GET")`` asserts the status is declared for the operation,
the media type and body match its schema (JSON Schema 2020-12 with format checks) and every
required header is present and well-formed.
"""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS31Validator
from werkzeug.test import TestResponse

from filepipe import openapi


def document() -> dict[str, Any]:
    """Every function's operations in one document (they share their components)."""
    parts = [openapi.document(function) for function in ("presign", "query", "webhooks")]
    return {**parts[0], "paths": {p: i for part in parts for p, i in part["paths"].items()}}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) to what it names."""
    while "$ref" in node:
        target: Any = document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def conforms(response: TestResponse, path: str, method: str) -> None:
    """Assert ``response`` is one the document declares for ``method path``."""
    operation = document()["paths"][path][method.lower()]
    declared = operation["responses"].get(str(response.status_code))
    assert declared is not None, f"{method} {path} does not declare {response.status_code}"
    declared = resolve(declared)
    for name, header in declared.get("headers", {}).items():
        header = resolve(header)
        if header.get("required"):
            assert name in response.headers, f"{response.status_code} lacks {name}"
        if name in response.headers:
            check(header["schema"], response.headers[name])
    if "content" not in declared:
        assert response.get_data() == b"", f"{response.status_code} must have no body"
        return
    assert response.mimetype in declared["content"], response.mimetype
    check(declared["content"][response.mimetype]["schema"], response.get_json())


def check(schema: dict[str, Any], instance: Any) -> None:
    """Validate ``instance`` against a schema of the document (its ``$ref``s resolved)."""
    root = {**schema, "components": document()["components"]}
    OAS31Validator(root, format_checker=OAS31Validator.FORMAT_CHECKER).validate(instance)
