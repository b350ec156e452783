"""The OpenAPI documents themselves: valid OpenAPI 3.1, one per HTTP function with exactly its
routes, and nothing unused."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate as validate_document

from filepipe import openapi, presign, query_api, webhooks

ROUTES = {"presign": presign.ROUTES, "query": query_api.ROUTES, "webhooks": webhooks.ROUTES}
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.mark.parametrize("function", openapi.FUNCTIONS)
def test_each_document_is_valid_openapi_3_1(function: str) -> None:
    document = openapi.document(function)
    validate_document(document)
    assert document["openapi"].startswith("3.1")
    assert not re.search(r'"x-filepipe-functions?"', json.dumps(document))


@pytest.mark.parametrize("function", openapi.FUNCTIONS)
def test_each_document_has_exactly_its_functions_routes(function: str) -> None:
    def normalised(path: str) -> str:
        return re.sub(r"\{\w+\}", "{}", path)

    documented = {
        (method.upper(), normalised(path))
        for path, item in openapi.document(function)["paths"].items()
        for method in item
        if method in METHODS
    }
    served = {(method, normalised(path)) for method, path in ROUTES[function]}
    assert documented == served


def test_every_path_is_some_functions_and_only_the_document_route_is_shared() -> None:
    owners: dict[str, list[str]] = {}
    for function in openapi.FUNCTIONS:
        for path in openapi.document(function)["paths"]:
            owners.setdefault(path, []).append(function)
    assert set(owners) == set(openapi.source()["paths"])
    assert {path for path, names in owners.items() if len(names) > 1} == {"/openapi.json"}


@pytest.mark.parametrize("function", openapi.FUNCTIONS)
def test_each_document_keeps_only_the_components_it_uses(function: str) -> None:
    document = openapi.document(function)
    text = json.dumps({key: value for key, value in document.items() if key != "components"})
    used = set(re.findall(r'"#/components/(\w+/\w+)"', text))
    while True:
        reached = {
            ref
            for name in used
            for ref in re.findall(
                r'"#/components/(\w+/\w+)"',
                json.dumps(document["components"][name.split("/")[0]][name.split("/")[1]]),
            )
        }
        if reached <= used:
            break
        used |= reached
    kept = {
        f"{section}/{name}"
        for section, entries in document["components"].items()
        if section != "securitySchemes"
        for name in entries
    }
    assert kept == used
    assert set(document["components"]["securitySchemes"]) == {"apiKey"}


def test_document_of_an_unknown_function_is_an_error() -> None:
    with pytest.raises(ValueError, match="no HTTP function"):
        openapi.document("process")
