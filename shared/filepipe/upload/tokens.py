"""Upload tokens at presign: minting one (``POST /upload-tokens``) and holding an upload request
to a token's scope (``enforce``, called by ``create.create_upload`` for every upload made with
a token). The token format and its verification are ``filepipe.upload_tokens``.

A scope is checked against the server's own limits when minted: ``max_file_bytes`` over
``FILEPIPE_MAX_UPLOAD_BYTES`` is a 413, a content type outside ``FILEPIPE_ALLOWED_CONTENT_TYPES``
a 415, anything else malformed a 400 listing every field at fault.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from filepipe import config, mediatypes, settings_values, upload_tokens
from filepipe.config import Settings
from filepipe.errors import BadRequest, PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from filepipe.upload.request import UploadRequest, parse_metadata
from filepipe.upload_tokens import Scope, UploadToken
from filepipe.web.bodies import iso

_FIELDS = frozenset(
    {"expires_in", "max_files", "max_file_bytes", "content_types", "metadata", "label"}
)
MAX_CONTENT_TYPES = 50
_MEDIA_RANGE = settings_values.MEDIA_RANGE


@dataclasses.dataclass(frozen=True)
class TokenRequest:
    lifetime: int
    scope: Scope


def parse_token_request(body: Mapping[str, Any], settings: Settings) -> TokenRequest:
    """A ``POST /upload-tokens`` body, with the defaults filled in."""
    errors: list[dict[str, str]] = []

    def fail(name: str, message: str) -> None:
        errors.append({"field": name, "message": message})

    for unknown in sorted(set(body) - _FIELDS):
        fail(unknown, "unknown field")
    lifetime = _integer(body, "expires_in", upload_tokens.MAX_LIFETIME, fail)
    max_files = _integer(body, "max_files", upload_tokens.MAX_FILES, fail)
    max_file_bytes = _integer(body, "max_file_bytes", None, fail)
    types = _content_types(body.get("content_types"), fail) if "content_types" in body else None
    metadata = parse_metadata(body.get("metadata", {}), fail)
    label = body.get("label")
    if "label" in body and not (
        isinstance(label, str)
        and 0 < len(label) <= upload_tokens.MAX_LABEL
        and not any(unicodedata.category(ch) == "Cc" for ch in label)
    ):
        fail("label", f"must be 1-{upload_tokens.MAX_LABEL} characters, no control characters")
    if errors:
        raise BadRequest("the upload token request is invalid", errors=errors)
    if max_file_bytes is not None and max_file_bytes > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"max_file_bytes {max_file_bytes} is over the server's limit of"
            f" {settings.max_upload_bytes} bytes",
            max_size=settings.max_upload_bytes,
        )
    outside = [t for t in types or () if not _within(t, settings.allowed_content_types)]
    if outside:
        raise UnsupportedMediaType(
            f"content types not allowed on this server: {', '.join(outside)}",
            allowed=list(settings.allowed_content_types),
        )
    scope = Scope(
        max_files=max_files or upload_tokens.DEFAULT_MAX_FILES,
        max_file_bytes=max_file_bytes or settings.max_upload_bytes,
        content_types=settings.allowed_content_types if types is None else types,
        metadata=metadata,
        label=label,
    )
    return TokenRequest(lifetime or upload_tokens.DEFAULT_LIFETIME, scope)


def mint(settings: Settings, tenant: str, request: TokenRequest) -> dict[str, Any]:
    """A new token for ``tenant``, as ``POST /upload-tokens`` answers it (503 without keys)."""
    if not settings.upload_token_secrets:
        raise ServiceUnavailable(
            f"upload tokens are not set up on this server ({config.UPLOAD_TOKEN_SECRETS} unset)"
        )
    token, text = upload_tokens.mint(
        tenant, request.scope, lifetime=request.lifetime, secret=settings.upload_token_secrets[0]
    )
    return {
        "token": text,
        "id": str(token.id),
        "expires_at": iso(token.expires_at),
        "scope": token.scope.as_json(),
    }


def enforce(token: UploadToken, request: UploadRequest) -> UploadRequest:
    """``request`` within the token's scope (415 for its type, 413 for its size; an unknown size
    is bounded by ``max_file_bytes`` at upload), with the token's metadata over the request's
    (400 if the two together break the metadata rules)."""
    scope = token.scope
    if not mediatypes.allowed(request.content_type, scope.content_types):
        raise UnsupportedMediaType(
            f"this upload token does not allow {mediatypes.essence(request.content_type)!r}",
            allowed=list(scope.content_types),
        )
    if request.size is not None and request.size > scope.max_file_bytes:
        raise PayloadTooLarge(
            f"size {request.size} is over this upload token's limit of"
            f" {scope.max_file_bytes} bytes",
            max_size=scope.max_file_bytes,
        )
    errors: list[dict[str, str]] = []
    metadata = parse_metadata(
        {**request.metadata, **scope.metadata},
        lambda name, message: errors.append({"field": name, "message": message}),
    )
    if errors:
        raise BadRequest(
            "the metadata together with the upload token's breaks the metadata rules",
            errors=errors,
        )
    return dataclasses.replace(request, metadata=metadata)


def max_file_bytes(settings: Settings, token: UploadToken | None) -> int:
    """The largest file the caller may upload: the server's limit, or the token's if smaller."""
    limit = settings.max_upload_bytes
    return limit if token is None else min(limit, token.scope.max_file_bytes)


def _integer(
    body: Mapping[str, Any], name: str, high: int | None, fail: Callable[[str, str], None]
) -> int | None:
    if name not in body:
        return None
    value = body[name]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    ceiling = high if high is not None else 2**63 - 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
        fail(name, f"must be an integer from 1 to {ceiling}")
        return None
    return value


def _content_types(value: Any, fail: Callable[[str, str], None]) -> tuple[str, ...] | None:
    rule = f"must be a list of 1-{MAX_CONTENT_TYPES} media types (type/subtype, type/* or */*)"
    if (
        not isinstance(value, list)
        or not 0 < len(value) <= MAX_CONTENT_TYPES
        or not all(
            isinstance(e, str) and e.isascii() and _MEDIA_RANGE.fullmatch(e.lower()) for e in value
        )
    ):
        fail("content_types", rule)
        return None
    return tuple(dict.fromkeys(entry.lower() for entry in value))


def _within(entry: str, allowed: Sequence[str]) -> bool:
    """Whether every type an entry of a token's ``content_types`` names is allowed."""
    if entry.endswith("/*"):
        return any(a in (entry, "*/*") for a in allowed)
    return mediatypes.allowed(entry, allowed)
