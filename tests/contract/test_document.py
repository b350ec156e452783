"""The OpenAPI documents themselves: valid OpenAPI 3.1, one per HTTP function with exactly its
routes, nothing unused, and patterns that accept exactly what the validators accept."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_document
from werkzeug.datastructures import MultiDict

from filepipe import filenames, health, openapi
from filepipe.errors import BadRequest
from filepipe.notify.webhooks.api import api as webhooks_api
from filepipe.query.api import api as query_api
from filepipe.query.params import parse_list_query
from filepipe.upload.api import api as presign_api
from filepipe.upload.request import (
    parse_upload_request,
    validate_idempotency_key,
)
from filepipe.web.routing import IdConverter, Malformed

HEALTH_ROUTES = [("GET", path) for path in sorted(health.PATHS)]
"""Every function's, outside its Api (``filepipe.web.app``)."""
ROUTES = {
    name: [(route.method, route.path) for route in api.routes] + HEALTH_ROUTES
    for name, api in (("presign", presign_api), ("query", query_api), ("webhooks", webhooks_api))
}
METHODS = ("get", "put", "post", "delete", "patch")
CODE_POINTS = [cp for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF]
"""Every character a UTF-8 JSON text can carry (lone surrogates are refused as category Cs)."""


def _sample() -> list[int]:
    """Latin-1, all white space, and the first and last two characters of every category run."""
    chosen = set(range(0x100)) | {cp for cp in CODE_POINTS if chr(cp).isspace()}
    previous = None
    for cp in CODE_POINTS:
        category = unicodedata.category(chr(cp))
        if category != previous:
            chosen |= {cp, cp + 1, cp - 1, cp - 2}
            previous = category
    return sorted(cp for cp in chosen if 0 <= cp <= sys.maxunicode and not 0xD800 <= cp <= 0xDFFF)


SAMPLE = _sample()
"""Characters on which the validators themselves are asked (asking for all takes a minute)."""


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = openapi.source()["components"]["schemas"][name]
    return found


def matcher(pattern: str) -> Callable[[str], bool]:
    """``pattern`` as JSON Schema reads it (ECMA-262: ``$`` is the very end of the text)."""
    compiled = re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)
    return lambda text: compiled.search(text) is not None


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


def test_every_path_is_some_functions_and_only_document_and_health_routes_are_shared() -> None:
    owners: dict[str, list[str]] = {}
    for function in openapi.FUNCTIONS:
        for path in openapi.document(function)["paths"]:
            owners.setdefault(path, []).append(function)
    assert set(owners) == set(openapi.source()["paths"])
    shared = {path for path, names in owners.items() if len(names) > 1}
    assert shared == {"/openapi.json", *health.PATHS}


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


# What the validators refuse, by Unicode category (Python's own tables, as the server's).


def upload_field_errors(**fields: Any) -> set[str]:
    body = {"filename": "a", "content_type": "text/plain", "size": 1, **fields}
    try:
        parse_upload_request(body, max_size=10, allowed_types=("*/*",))
    except BadRequest as exc:
        return {error["field"].split(".")[0] for error in exc.extensions.get("errors", [])}
    return set()


def test_the_filename_pattern_refuses_exactly_the_characters_the_server_refuses() -> None:
    accepts = matcher(schema("Filename")["pattern"])
    refused = {cp for cp in CODE_POINTS if filenames.refused(chr(cp))}
    assert {cp for cp in CODE_POINTS if not accepts("a" + chr(cp))} == refused
    for cp in SAMPLE:
        text = "a" + chr(cp)
        assert accepts(text) == (upload_field_errors(filename=text) == set()), hex(cp)


def test_a_filename_of_only_white_space_or_dots_is_refused_by_both() -> None:
    accepts = matcher(schema("Filename")["pattern"])
    forbidden = schema("Filename")["not"]["enum"]
    white = [chr(cp) for cp in CODE_POINTS if chr(cp).isspace()]
    for text in [*white, " " * 3, "\u3000 \xa0", ".", ".."]:
        doc_ok = accepts(text) and text not in forbidden
        assert doc_ok == (upload_field_errors(filename=text) == set()), repr(text)
    assert upload_field_errors(filename="é" * 128) == {"filename"}  # 256 bytes
    assert schema("Filename")["x-filepipe-max-utf8-bytes"] == 255


def test_the_media_type_pattern_accepts_exactly_what_the_server_does() -> None:
    accepts = matcher(schema("MediaType")["pattern"])
    for cp in SAMPLE:
        c = chr(cp)
        for text in (
            c + "text/plain",
            "text/plain;" + c + "q=1",
            "text/plain; q=" + c,
            'text/plain; q="' + c + '"',
            'text/plain; q="\\' + c + '"',
        ):
            assert accepts(text) == (upload_field_errors(content_type=text) == set()), repr(text)
    for text in ("a/b", "A/B; charset=utf-8 ", "a/b;c", "a/b; c=d e", "a b/c", "a/b/c", "/b"):
        assert accepts(text) == (upload_field_errors(content_type=text) == set()), text
    assert accepts('text/plain; charset="utf-8"') and accepts("text/plain;\tcharset=utf-8")


def test_metadata_rules_match() -> None:
    metadata = schema("Metadata")
    key_ok = matcher(metadata["propertyNames"]["pattern"])
    value_ok = matcher(metadata["additionalProperties"]["pattern"])
    for key in ("a", "A.b_c-d", "a" * 64, "a" * 65, "-a", "_a", ".a", "a b", "é", ""):
        assert key_ok(key) == (upload_field_errors(metadata={key: "v"}) == set()), key
    for cp in CODE_POINTS:
        assert value_ok("v" + chr(cp)) != (unicodedata.category(chr(cp)) == "Cc"), hex(cp)
    for cp in SAMPLE:
        text = "v" + chr(cp)
        assert value_ok(text) == (upload_field_errors(metadata={"k": text}) == set()), hex(cp)
    assert upload_field_errors(metadata={"k": "v" * 512}) == set()
    assert upload_field_errors(metadata={"k": "v" * 513}) == {"metadata"}
    assert upload_field_errors(metadata={f"k{n}": "v" for n in range(33)}) == {"metadata"}
    assert metadata["maxProperties"] == 32 and metadata["x-filepipe-max-json-bytes"] == 2048
    big = {f"k{n}": "v" * 100 for n in range(20)}
    assert len(json.dumps(big).encode()) > 2048 and upload_field_errors(metadata=big)


def test_sha256_and_idempotency_key_patterns_match() -> None:
    sha_ok = matcher(schema("Sha256")["pattern"])
    for text in ("ab" * 32, "AB" * 32, "ab" * 31, "ab" * 33, "g" * 64, "ab" * 32 + "\n"):
        assert sha_ok(text) == (upload_field_errors(sha256=text) == set()), text
    key = openapi.source()["components"]["parameters"]["IdempotencyKey"]["schema"]
    key_ok = matcher(key["pattern"])
    for cp in range(0x100):
        text = "k" + chr(cp)
        try:
            validate_idempotency_key(text)
            server_ok = True
        except BadRequest:
            server_ok = False
        assert key_ok(text) == server_ok, hex(cp)
    assert key["maxLength"] == 255


def query_errors(**params: str) -> set[str]:
    try:
        parse_list_query(MultiDict(params))
    except BadRequest as exc:
        return {error["field"] for error in exc.extensions.get("errors", [])}
    return set()


def list_files_parameter(name: str) -> dict[str, Any]:
    for parameter in openapi.source()["paths"]["/files"]["get"]["parameters"]:
        if parameter.get("name") == name:
            found: dict[str, Any] = parameter["schema"]
            return found
    raise LookupError(name)


def test_list_files_parameters_match_the_validator() -> None:
    status_ok = matcher(list_files_parameter("status")["pattern"])
    for text in ("PENDING", "pending", "ProCessed", "expired", "PENDING ", "DONE", "pend"):
        assert status_ok(text) == (query_errors(status=text) == set()), text
    media = list_files_parameter("content_type")
    media_ok = matcher(media["pattern"])
    for text in ("text/csv", "TEXT/CSV", "a+b/c.d", "text/csv; charset=x", "text", "a@/b", "a/b/c"):
        assert media_ok(text) == (query_errors(content_type=text) == set()), text
    name_ok = matcher(list_files_parameter("filename")["pattern"])
    for cp in CODE_POINTS:
        assert name_ok("f" + chr(cp)) != (unicodedata.category(chr(cp)) == "Cc"), hex(cp)
    for cp in SAMPLE:
        text = "f" + chr(cp)
        assert name_ok(text) == (query_errors(filename=text) == set()), hex(cp)
    date_ok = matcher(schema("DateTimeFilter")["pattern"])
    for text in (
        "2026-01-31T09:30:00Z",
        "2026-01-31T09:30:00.123456+01:00",
        "2026-01-31T09:30:00-00:00",
        "0001-01-01T00:00:00Z",
    ):
        assert date_ok(text) and query_errors(created_after=text) == set(), text
    for text in ("2026-06-30T23:59:60Z", "0000-01-01T00:00:00Z", "2026-01-31T09:30:00"):
        assert not date_ok(text) and query_errors(created_after=text) == {"created_after"}, text


def test_ids_are_uuids_in_their_hyphenated_form() -> None:
    uuid_ok = matcher(schema("Uuid")["pattern"])
    good = "0b7e6f1c-95d5-4c5a-9c61-2f3c2f0b9a41"
    for text in (good, good.upper(), good.replace("-", ""), "{" + good + "}", "urn:uuid:" + good):
        server_ok = not isinstance(IdConverter.to_python(None, text), Malformed)  # type: ignore[arg-type]
        assert uuid_ok(text) == server_ok, text
