"""Answers and failures become the error tree's classes, and those the command's exit codes;
retries wait as ``Retry-After`` says and give up after ``Backoff.retries``."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from filepipe_client import (
    AuthenticationError,
    Backoff,
    Client,
    Config,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    FilepipeError,
    IntegrityError,
    NotFound,
    RateLimited,
    RequestRefused,
    ServerError,
    StorageError,
)
from filepipe_client._errors import api_error
from filepipe_client._retry import parse_retry_after
from filepipe_client.cli._exits import exit_code, message

CONFIG = Config("http://api.example", "fpk_test")


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, AuthenticationError, 3),
        (403, AuthenticationError, 3),
        (400, RequestRefused, 5),
        (404, NotFound, 5),
        (409, Conflict, 5),
        (413, RequestRefused, 5),
        (415, RequestRefused, 5),
        (422, RequestRefused, 5),
        (429, RateLimited, 6),
        (500, ServerError, 6),
        (503, ServerError, 6),
    ],
)
def test_each_status_has_its_class_and_exit_code(
    status: int, kind: type[FilepipeError], code: int
) -> None:
    error = api_error(status, {"title": "T", "detail": f"detail of {status}"}, "")
    assert type(error) is kind
    assert exit_code(error) == code
    assert f"detail of {status}" in message(error)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigurationError("no URL"), 2),
        (ConnectionFailed("http://api.example", "refused"), 4),
        (IntegrityError("differs"), 1),
        (StorageError(400, "BadDigest", "no"), 1),
    ],
)
def test_other_errors_have_their_exit_codes(error: FilepipeError, code: int) -> None:
    assert exit_code(error) == code


def test_the_refused_key_message_says_so() -> None:
    assert message(api_error(401, {"detail": "unknown key"}, "")).startswith(
        "the API key was refused"
    )


def test_a_connection_failure_names_the_url() -> None:
    assert "http://api.example" in message(ConnectionFailed("http://api.example", "refused"))


def _client(handler: Callable[[httpx.Request], httpx.Response], waits: list[float]) -> Client:
    return Client(
        CONFIG,
        transport=httpx.MockTransport(handler),
        backoff=Backoff(retries=3, base=0.1, cap=5.0),
        sleep=waits.append,
    )


def _file(file_id: str = "f") -> dict[str, object]:
    return {
        "id": file_id,
        "status": "PROCESSED",
        "filename": "a.pdf",
        "declared": {"content_type": "application/pdf", "size": 1, "sha256": None},
        "version": 1,
        "created_at": "2026-01-01T00:00:00Z",
    }


def test_429_and_503_are_retried_after_retry_after() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "2"}, json={"detail": "slow down"}),
        httpx.Response(503, headers={"Retry-After": "1"}, json={"detail": "db down"}),
        httpx.Response(200, json=_file()),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    waits: list[float] = []
    file = _client(handler, waits).get_file("f")
    assert file.filename == "a.pdf"
    assert waits == [2.0, 1.0]
    assert [r.headers["Authorization"] for r in seen] == ["Bearer fpk_test"] * 3


def test_rate_limiting_that_lasts_is_raised_with_the_detail() -> None:
    waits: list[float] = []
    client = _client(
        lambda _: httpx.Response(429, headers={"Retry-After": "60"}, json={"detail": "slow"}),
        waits,
    )
    with pytest.raises(RateLimited, match="slow"):
        client.get_file("f")
    assert waits == [5.0, 5.0, 5.0]  # Retry-After honoured up to the cap, three retries


def test_a_refusal_is_not_retried() -> None:
    waits: list[float] = []
    client = _client(lambda _: httpx.Response(415, json={"detail": "type not allowed"}), waits)
    with pytest.raises(RequestRefused, match="type not allowed") as caught:
        client.create_upload({"filename": "a"})
    assert (caught.value.status, waits) == (415, [])


def test_connection_failures_are_retried_then_raised_naming_the_url() -> None:
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    waits: list[float] = []
    with pytest.raises(ConnectionFailed, match=r"cannot reach http://api\.example"):
        _client(refuse, waits).get_file("f")
    assert len(calls) == 4 and len(waits) == 3
    assert all(0.05 <= wait <= 0.8 for wait in waits)


def test_a_problem_without_json_still_has_a_detail() -> None:
    client = _client(lambda _: httpx.Response(404, text="no such thing"), [])
    with pytest.raises(NotFound, match="no such thing"):
        client.get_file("f")


def test_a_storage_refusal_carries_the_s3_code() -> None:
    body = "<Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message></Error>"
    client = _client(lambda _: httpx.Response(403, text=body), [])
    with pytest.raises(StorageError, match="SignatureDoesNotMatch bad sig") as caught:
        client.put("http://s3.example/b/k?X-Amz-Signature=x", {}, b"data")
    assert caught.value.status == 403


@pytest.mark.parametrize(
    ("value", "seconds"), [("3", 3.0), (None, None), ("soon", None), ("", None)]
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_a_retry_after_date_in_the_past_is_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_the_parts_request_carries_numbers_and_digests() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        parts: list[dict[str, object]] = [
            {"number": n, "method": "PUT", "url": f"http://s3/{n}", "headers": {}} for n in (2, 5)
        ]
        return httpx.Response(200, json={"parts": parts, "expires_at": "2026-01-01T00:00:00Z"})

    urls = _client(handler, []).part_urls("f", {5: "b" * 64, 2: "a" * 64})
    assert bodies == [{"part_numbers": [2, 5], "sha256": {"5": "b" * 64, "2": "a" * 64}}]
    assert [(u.number, u.url) for u in urls] == [(2, "http://s3/2"), (5, "http://s3/5")]


def test_a_400_names_each_field_at_fault() -> None:
    problem = {
        "detail": "the upload request is invalid",
        "errors": [{"field": "size", "message": "must be at least 1"}, {"field": "filename"}],
    }
    error = api_error(400, problem, "")
    assert message(error) == (
        "refused (400): the upload request is invalid: size: must be at least 1; filename: invalid"
    )
