from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest

from filepipe.files.store import Position
from filepipe.query import cursors
from filepipe.query.cursors import CursorCodec, InvalidCursor, codec_for, scope_digest

SECRET = b"0123456789abcdef0123456789abcdef"
POSITION = Position(datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC), uuid.uuid4())
SCOPE = scope_digest("tenant-a", '{"status": "PROCESSED"}')


def test_a_cursor_round_trips_to_the_microsecond_and_is_url_safe() -> None:
    codec = CursorCodec(SECRET)
    cursor = codec.encode(POSITION, SCOPE)
    assert codec.decode(cursor, SCOPE) == POSITION
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def altered(cursor: str) -> list[str]:
    payload, mac = cursor.split(".")
    flip = {"A": "B", "B": "A"}
    return [
        f"{payload[:-2]}{flip.get(payload[-2], 'A')}{payload[-1]}.{mac}",  # payload changed
        f"{payload}.{mac[:-1]}{flip.get(mac[-1], 'A')}",  # signature changed
        f"{payload}.{mac}x",  # signature extended
        f"{payload}.",
        f".{mac}",
        payload,
        f"{payload}.{mac}.{mac}",
        f"{payload}!.{mac}",
        f"{payload}é.{mac}",
        "",
        "x" * 600,
    ]


def test_altered_or_malformed_cursors_are_refused() -> None:
    codec = CursorCodec(SECRET)
    for bad in altered(codec.encode(POSITION, SCOPE)):
        with pytest.raises(InvalidCursor) as caught:
            codec.decode(bad, SCOPE)
        assert caught.value.status == 400
        assert caught.value.extensions["errors"][0]["field"] == "cursor"


def test_a_cursor_is_bound_to_its_secret_and_its_scope() -> None:
    cursor = CursorCodec(SECRET).encode(POSITION, SCOPE)
    with pytest.raises(InvalidCursor):
        CursorCodec(b"another secret, long enough!").decode(cursor, SCOPE)
    with pytest.raises(InvalidCursor, match="other filters"):
        CursorCodec(SECRET).decode(cursor, scope_digest("tenant-a", "{}"))
    with pytest.raises(InvalidCursor):
        CursorCodec(SECRET).decode(cursor, scope_digest("tenant-b", '{"status": "PROCESSED"}'))


def test_a_forged_payload_signed_with_the_right_secret_but_wrong_shape_is_refused() -> None:
    codec = CursorCodec(SECRET)
    payload = b'["not a number", "zz", "scope"]'
    forged = f"{cursors._b64(payload)}.{cursors._b64(codec._mac(payload))}"
    with pytest.raises(InvalidCursor):
        codec.decode(forged, "scope")


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        CursorCodec(b"short")


def test_without_a_secret_the_process_draws_one_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cursors._process_secret.cache_clear()
    with caplog.at_level(logging.WARNING, logger="filepipe.query.cursors"):
        first, second = codec_for(None), codec_for("")
    assert len(caplog.records) == 1
    assert "FILEPIPE_CURSOR_SECRET" in caplog.records[0].getMessage()
    assert second.decode(first.encode(POSITION, SCOPE), SCOPE) == POSITION
    configured = codec_for("a configured secret of some length")
    with pytest.raises(InvalidCursor):
        configured.decode(first.encode(POSITION, SCOPE), SCOPE)
