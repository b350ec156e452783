"""Opaque, tamper-checked keyset cursors for ``GET /files`` (pure: no I/O).

A cursor names the last row of a page, ``(created_at, id)``, and the *scope* it was issued for
(the tenant and the filters), so it can neither be forged nor reused with other filters. It is
``base64url(payload) "." base64url(HMAC-SHA256(secret, payload)[:16])``; the payload is
``[created_at in epoch microseconds, id hex, scope digest]`` as compact JSON. Cursors carry no
expiry: the next page is simply what comes after that position when it is asked for.

The secret is ``FILEPIPE_CURSOR_SECRET``; without it every process draws a random one (and logs a
warning), so a cursor only works against the process that issued it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from filepipe.config import CURSOR_SECRET
from filepipe.errors import BadRequest
from filepipe.files.store import Position

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAC_BYTES = 16
MAX_CURSOR_LENGTH = 512


class InvalidCursor(BadRequest):
    """The cursor was not issued by this service for this query (forged, altered or reused)."""

    def __init__(self, detail: str = "the cursor is invalid; start again without one") -> None:
        super().__init__(detail, errors=[{"field": "cursor", "message": detail}])


def scope_digest(*parts: str) -> str:
    """A short digest of what a cursor is bound to (tenant, canonical filters)."""
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


class CursorCodec:
    """Encodes positions as signed cursors and decodes them back, refusing anything altered."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._secret = secret

    def encode(self, position: Position, scope: str) -> str:
        micros = (position.created_at - _EPOCH) // timedelta(microseconds=1)
        payload = json.dumps([micros, position.id.hex, scope], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, cursor: str, scope: str) -> Position:
        """The position ``cursor`` names, or ``InvalidCursor``."""
        if len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
            raise InvalidCursor()
        encoded_payload, encoded_mac = cursor.split(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor() from exc
        if _b64(payload) != encoded_payload or _b64(mac) != encoded_mac:
            raise InvalidCursor()  # not the one encoding we issue (e.g. altered padding bits)
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursor()
        try:
            micros, id_hex, issued_for = json.loads(payload)
            position = Position(_EPOCH + timedelta(microseconds=micros), uuid.UUID(hex=id_hex))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidCursor() from exc
        if issued_for != scope:
            raise InvalidCursor("the cursor belongs to a query with other filters")
        return position

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def codec_for(secret: str | None) -> CursorCodec:
    """The codec for the configured secret, or for this process's random one."""
    if secret:
        return CursorCodec(secret.encode())
    return CursorCodec(_process_secret())


@functools.cache
def _process_secret() -> bytes:
    log.warning(
        "%s is not set: cursors are signed with a random per-process secret and only work"
        " against the process that issued them; set it to share cursors between instances",
        CURSOR_SECRET,
    )
    return secrets.token_bytes(32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
