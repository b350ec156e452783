"""Just enough HTTP/1.1 (RFC 9112) for ``local.front`` to relay messages without buffering them.

Heads are parsed into ``Head``; bodies are relayed as their raw bytes, framing included
(``Content-Length``, chunked with its trailers, or until the connection closes), in pieces of at
most ``PIECE`` bytes. Malformed input raises ``filepipe.errors.BadRequest`` (or
``HeaderFieldsTooLarge``); a peer that goes away raises ``EOFError``/``OSError``; one that stays
silent ``TIMEOUT`` seconds, ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from string import hexdigits

from filepipe.errors import BadRequest, HeaderFieldsTooLarge

TIMEOUT = 60.0
"""Seconds to wait for an upstream's answer, or between reads of a body (nginx's defaults)."""
UNTIL_CLOSE = -1
"""Body framing of a response with neither ``Content-Length`` nor chunked encoding."""
HEAD_LIMIT = 64 * 1024
PIECE = 64 * 1024
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate"}
    | {"proxy-authorization", "te", "trailer", "upgrade"}
)


@dataclass(frozen=True)
class Head:
    """A request or response head: its start line's three parts and its header fields."""

    start: tuple[str, str, str]
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        found = [value for key, value in self.headers if key.lower() == name]
        return ", ".join(found) if found else None

    def without(self, names: frozenset[str]) -> list[tuple[str, str]]:
        listed = {n.strip().lower() for n in (self.get("connection") or "").split(",")}
        drop = names | HOP_BY_HOP | listed
        return [(key, value) for key, value in self.headers if key.lower() not in drop]


async def read_head(reader: asyncio.StreamReader) -> Head:
    """The next head on ``reader``; ``BadRequest`` if it is not HTTP/1.x."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise HeaderFieldsTooLarge("the request head is too large") from exc
    lines = raw.decode("latin-1").lstrip("\r\n").split("\r\n")[:-2]
    parts = lines[0].split(" ", 2) if lines else []
    headers = [line.split(":", 1) for line in lines[1:]]
    if len(parts) != 3 or any(len(h) != 2 or h[0] != h[0].strip() or not h[0] for h in headers):
        raise BadRequest("the request is not HTTP/1.1")
    return Head((parts[0], parts[1], parts[2]), [(k, v.strip()) for k, v in headers])


def request_framing(head: Head) -> int | None:
    """The request body's length, or None for chunked; ``BadRequest`` if ambiguous."""
    encoding, length = head.get("transfer-encoding"), head.get("content-length")
    if encoding is not None:
        if encoding.lower() != "chunked" or length is not None:
            raise BadRequest("only a chunked Transfer-Encoding without Content-Length is allowed")
        return None
    return _length(length or "0")


def response_framing(method: str, status: int, head: Head) -> int | None:
    """Body length of a response; None: chunked; ``UNTIL_CLOSE``: until the upstream closes."""
    if method == "HEAD" or status < 200 or status in (204, 304):
        return 0
    if (head.get("transfer-encoding") or "").lower().endswith("chunked"):
        return None
    length = head.get("content-length")
    return UNTIL_CLOSE if length is None else _length(length)


def _length(text: str) -> int:
    values = {value.strip() for value in text.split(",")}
    if len(values) != 1 or not (value := values.pop()).isdigit():
        raise BadRequest("the Content-Length is not a number")
    return int(value)


async def body(reader: asyncio.StreamReader, framing: int | None) -> AsyncIterator[bytes]:
    """The body's raw bytes as they arrive, framing included, in pieces of at most ``PIECE``."""
    if framing == UNTIL_CLOSE:
        while piece := await asyncio.wait_for(reader.read(PIECE), TIMEOUT):
            yield piece
        return
    if framing is not None:
        async for piece in _exactly(reader, framing):
            yield piece
        return
    while True:  # chunked: size line, data, CRLF; after the last chunk, trailers and a CRLF
        line = await _line(reader)
        size = line.split(b";", 1)[0].strip().decode("latin-1")
        if not size or any(c not in hexdigits for c in size):
            raise BadRequest("malformed chunked body")
        yield line
        if int(size, 16) == 0:
            break
        async for piece in _exactly(reader, int(size, 16) + 2):
            yield piece
    while (line := await _line(reader)) != b"\r\n":
        yield line
    yield line


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n"), TIMEOUT)
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("malformed chunked body") from exc


async def _exactly(reader: asyncio.StreamReader, size: int) -> AsyncIterator[bytes]:
    while size > 0:
        piece = await asyncio.wait_for(reader.read(min(size, PIECE)), TIMEOUT)
        if not piece:
            raise asyncio.IncompleteReadError(b"", size)
        size -= len(piece)
        yield piece


def encode(start: tuple[str, str, str], headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [" ".join(start), *(f"{key}: {value}" for key, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")
