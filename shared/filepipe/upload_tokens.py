"""Upload tokens: short-lived, scoped credentials a tenant's backend mints for a browser.

A token is self-contained and signed, so every process verifies it without a database round
trip::

    fput_<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "fput_" + payload part))>

The payload holds the token's ``id`` (a uuid, recorded on every file made with it), its
``tenant``, ``exp`` (Unix seconds) and ``scope`` (``Scope``). The keys are
``FILEPIPE_UPLOAD_TOKEN_SECRETS``: the first signs, every one verifies, so a key is rotated by
putting the new one first and dropping the old one once its tokens expired (an hour at most).
A token is recognised by its prefix wherever an API key is taken (``is_upload_token``).

Refusals are ``Unauthorized`` with ``reason``: ``expired`` (a valid signature, ``exp`` past) or
``invalid`` (malformed, tampered with, or signed by no key in use).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from filepipe.errors import Unauthorized

TOKEN_PREFIX = "fput_"  # noqa: S105 - a prefix, not a secret
MAX_LIFETIME = 3600
DEFAULT_LIFETIME = 900
MAX_FILES = 1000
DEFAULT_MAX_FILES = 10
MAX_LABEL = 100
MAX_TOKEN_LENGTH = 8192
"""Longer bearer values are refused before decoding (a full scope stays well below)."""


@dataclass(frozen=True)
class Scope:
    """What a token allows: how many files, how large each, of which types, with what metadata."""

    max_files: int
    max_file_bytes: int
    content_types: tuple[str, ...]
    """Media types (``type/subtype``) and ranges (``type/*``), each within the server's list."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Attached to every file made with the token, over the browser's own keys."""
    label: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "max_files": self.max_files,
            "max_file_bytes": self.max_file_bytes,
            "content_types": list(self.content_types),
            "metadata": dict(self.metadata),
            "label": self.label,
        }


@dataclass(frozen=True)
class UploadToken:
    """A verified (or just minted) token's contents."""

    id: uuid.UUID
    tenant: str
    expires: int
    """Unix seconds."""
    scope: Scope

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)

    def expires_in(self, now: float | None = None) -> float:
        """Seconds until the token expires (negative once it has)."""
        return self.expires - (time.time() if now is None else now)


def is_upload_token(bearer: str) -> bool:
    """Whether a bearer value is meant as an upload token (rather than an API key)."""
    return bearer.startswith(TOKEN_PREFIX)


def in_header(authorization: str | None) -> str | None:
    """The upload token (unverified) of an ``Authorization: Bearer fput_…`` header; ``None`` when
    the header carries anything else (an API key, or nothing: the API key's check answers)."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and is_upload_token(value) else None


def mint(
    tenant: str, scope: Scope, *, lifetime: int, secret: str, now: float | None = None
) -> tuple[UploadToken, str]:
    """A new token of ``tenant`` valid for ``lifetime`` seconds, and its signed text."""
    expires = int(time.time() if now is None else now) + lifetime
    token = UploadToken(uuid.uuid4(), tenant, expires, scope)
    return token, encode(token, secret)


def encode(token: UploadToken, secret: str) -> str:
    """The signed text of ``token`` (``secret``: the first of ``FILEPIPE_UPLOAD_TOKEN_SECRETS``)."""
    payload = {
        "id": str(token.id),
        "tenant": token.tenant,
        "exp": token.expires,
        "scope": token.scope.as_json(),
    }
    signed = TOKEN_PREFIX + _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{signed}.{_b64(_mac(secret, signed))}"


def decode(text: str, secrets: Sequence[str] | None, now: float | None = None) -> UploadToken:
    """The token ``text`` holds if one of ``secrets`` signed it and it has not expired;
    ``Unauthorized`` (``reason`` ``invalid`` or ``expired``) otherwise (always without
    ``secrets``: ``FILEPIPE_UPLOAD_TOKEN_SECRETS`` unset)."""
    signed, dot, signature = text.rpartition(".")
    if not (dot and is_upload_token(signed) and len(text) <= MAX_TOKEN_LENGTH):
        raise _invalid()
    try:
        mac = _unb64(signature)
    except ValueError:
        raise _invalid() from None
    if not any(hmac.compare_digest(mac, _mac(secret, signed)) for secret in secrets or ()):
        raise _invalid()
    token = _parse(signed[len(TOKEN_PREFIX) :])
    if token.expires_in(now) <= 0:
        raise Unauthorized("the upload token has expired; ask for a new one", reason="expired")
    return token


def _parse(payload_part: str) -> UploadToken:
    """The payload of a token whose signature checked (so malformed means a signer's bug)."""
    try:
        payload = json.loads(_unb64(payload_part))
        scope = payload["scope"]
        return UploadToken(
            id=uuid.UUID(payload["id"]),
            tenant=str(payload["tenant"]),
            expires=int(payload["exp"]),
            scope=Scope(
                max_files=int(scope["max_files"]),
                max_file_bytes=int(scope["max_file_bytes"]),
                content_types=tuple(scope["content_types"]),
                metadata=dict(scope["metadata"]),
                label=scope["label"],
            ),
        )
    except (ValueError, KeyError, TypeError):
        raise _invalid() from None


def _invalid() -> Unauthorized:
    return Unauthorized("invalid upload token", reason="invalid")


def _mac(secret: str, signed: str) -> bytes:
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Unpadded base64url, strictly (``ValueError`` for any other character)."""
    if not text or not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
