"""The upload token codec (``filepipe.upload_tokens``) and the scope rules of presign
(``filepipe.upload.tokens``): pure, no service."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest

from filepipe import upload_tokens
from filepipe.config import Settings
from filepipe.errors import (
    BadRequest,
    ConfigError,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from filepipe.upload import tokens
from filepipe.upload.request import UploadRequest
from filepipe.upload_tokens import Scope, UploadToken

SECRET = "s" * 32
OTHER = "o" * 32
SCOPE = Scope(
    max_files=3,
    max_file_bytes=1000,
    content_types=("application/pdf", "image/*"),
    metadata={"order": "42"},
    label="checkout",
)


def minted(lifetime: int = 60, secret: str = SECRET) -> tuple[UploadToken, str]:
    return upload_tokens.mint("acme", SCOPE, lifetime=lifetime, secret=secret)


def reason(error: pytest.ExceptionInfo[Unauthorized]) -> Any:
    return error.value.to_problem()["reason"]


def test_a_minted_token_decodes_to_what_was_minted() -> None:
    token, text = minted()

    assert text.startswith("fput_") and upload_tokens.is_upload_token(text)
    assert upload_tokens.decode(text, [SECRET]) == token
    assert token.tenant == "acme" and token.scope == SCOPE
    assert 59 <= token.expires_in() <= 60


def test_every_listed_secret_verifies_so_a_secret_can_be_rotated() -> None:
    token, text = minted(secret=OTHER)

    assert upload_tokens.decode(text, [SECRET, OTHER]) == token
    with pytest.raises(Unauthorized) as refused:
        upload_tokens.decode(text, [SECRET])
    assert reason(refused) == "invalid"


def test_an_expired_token_is_refused_as_expired() -> None:
    _, text = minted(lifetime=60)

    with pytest.raises(Unauthorized) as refused:
        upload_tokens.decode(text, [SECRET], now=time.time() + 61)

    assert reason(refused) == "expired"
    assert "expired" in refused.value.detail


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the signature
        lambda t: t.replace("fput_", "fput_e", 1),  # the payload
        lambda t: t.rpartition(".")[0],  # no signature
        lambda t: t + "!",  # not base64url
        lambda t: "fput_.",
        lambda t: "fput_" + "A" * 9000 + "." + t.rpartition(".")[2],  # too long
    ],
)
def test_a_tampered_or_malformed_token_is_invalid(tamper: Any) -> None:
    _, text = minted()

    with pytest.raises(Unauthorized) as refused:
        upload_tokens.decode(tamper(text), [SECRET])

    assert reason(refused) == "invalid"


def test_a_longer_lifetime_written_into_the_payload_breaks_the_signature() -> None:
    _, text = minted(lifetime=1)
    signed, _, signature = text.rpartition(".")
    raw = signed.removeprefix("fput_")
    payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    payload["exp"] += 3600
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()

    with pytest.raises(Unauthorized) as refused:
        upload_tokens.decode(f"fput_{forged}.{signature}", [SECRET])
    assert reason(refused) == "invalid"


def test_without_secrets_no_token_is_valid() -> None:
    _, text = minted()

    with pytest.raises(Unauthorized):
        upload_tokens.decode(text, None)


def test_the_header_holds_a_token_only_behind_bearer_and_its_prefix() -> None:
    assert upload_tokens.in_header("Bearer fput_abc.def") == "fput_abc.def"
    assert upload_tokens.in_header("bearer  fput_x ") == "fput_x"
    assert upload_tokens.in_header("Bearer fpk_abc") is None
    assert upload_tokens.in_header("Basic fput_abc") is None
    assert upload_tokens.in_header(None) is None


def test_secrets_are_at_least_32_bytes_and_hidden() -> None:
    settings = Settings(upload_token_secrets=(SECRET, OTHER))
    assert SECRET not in repr(settings)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Settings(upload_token_secrets=("short",))
    with pytest.raises(ConfigError, match="at least one secret"):
        Settings(upload_token_secrets=())
    parsed = Settings.from_env({"FILEPIPE_UPLOAD_TOKEN_SECRETS": f"{SECRET}, {OTHER}"})
    assert parsed.upload_token_secrets == (SECRET, OTHER)


# -- the scope at presign ------------------------------------------------------------------

SERVER = Settings(
    max_upload_bytes=10_000,
    allowed_content_types=("application/pdf", "image/png", "image/jpeg", "text/*"),
    upload_token_secrets=(SECRET,),
)


def test_a_request_without_fields_takes_the_defaults_and_the_server_limits() -> None:
    request = tokens.parse_token_request({}, SERVER)

    assert request.lifetime == 900
    assert request.scope == Scope(
        max_files=10,
        max_file_bytes=10_000,
        content_types=SERVER.allowed_content_types,
        metadata={},
        label=None,
    )


def test_minting_answers_the_token_and_its_scope() -> None:
    request = tokens.parse_token_request(
        {"expires_in": 60, "max_files": 2, "content_types": ["Image/PNG"], "label": "x"}, SERVER
    )
    answer = tokens.mint(SERVER, "acme", request)

    token = upload_tokens.decode(answer["token"], [SECRET])
    assert answer["id"] == str(token.id)
    assert answer["scope"]["content_types"] == ["image/png"]
    assert answer["scope"]["max_files"] == 2 and answer["scope"]["label"] == "x"
    assert answer["expires_at"].endswith("Z")


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"expires_in": 0}, BadRequest, "expires_in"),
        ({"expires_in": 3601}, BadRequest, "expires_in"),
        ({"max_files": 1001}, BadRequest, "max_files"),
        ({"max_files": True}, BadRequest, "max_files"),
        ({"max_file_bytes": "1"}, BadRequest, "max_file_bytes"),
        ({"content_types": []}, BadRequest, "content_types"),
        ({"content_types": ["pdf"]}, BadRequest, "content_types"),
        ({"metadata": {"k": 1}}, BadRequest, "metadata.k"),
        ({"label": ""}, BadRequest, "label"),
        ({"label": "x" * 101}, BadRequest, "label"),
        ({"colour": "red"}, BadRequest, "colour"),
        ({"max_file_bytes": 10_001}, PayloadTooLarge, None),
        ({"content_types": ["application/zip"]}, UnsupportedMediaType, None),
        ({"content_types": ["image/*"]}, UnsupportedMediaType, None),
    ],
)
def test_a_bad_scope_is_refused_with_its_status(
    body: dict[str, Any], error: type[Exception], field: str | None
) -> None:
    with pytest.raises(error) as refused:
        tokens.parse_token_request(body, SERVER)
    if field is not None:
        assert isinstance(refused.value, BadRequest)
        assert [e["field"] for e in refused.value.extensions["errors"]] == [field]


def test_a_type_range_within_the_servers_is_allowed() -> None:
    request = tokens.parse_token_request({"content_types": ["text/*", "text/csv"]}, SERVER)
    assert request.scope.content_types == ("text/*", "text/csv")


def test_minting_without_secrets_is_unavailable() -> None:
    with pytest.raises(Exception, match="FILEPIPE_UPLOAD_TOKEN_SECRETS") as refused:
        tokens.mint(Settings(), "acme", tokens.parse_token_request({}, Settings()))
    assert getattr(refused.value, "status", None) == 503


def upload(**fields: Any) -> UploadRequest:
    return UploadRequest(
        **{"filename": "a.pdf", "content_type": "application/pdf", "size": 10, **fields}
    )


def token_of(scope: Scope) -> UploadToken:
    return UploadToken(uuid.uuid4(), "acme", int(time.time()) + 60, scope)


def test_enforce_merges_the_tokens_metadata_over_the_browsers() -> None:
    enforced = tokens.enforce(token_of(SCOPE), upload(metadata={"order": "1", "note": "hi"}))
    assert enforced.metadata == {"order": "42", "note": "hi"}


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (upload(content_type="text/plain"), UnsupportedMediaType),
        (upload(content_type="image/png; q=1", size=1001), PayloadTooLarge),
        (upload(metadata={f"k{n}": "v" for n in range(32)}), BadRequest),
    ],
)
def test_enforce_refuses_what_the_scope_does_not_allow(
    request_: UploadRequest, error: type[Exception]
) -> None:
    with pytest.raises(error):
        tokens.enforce(token_of(SCOPE), request_)
