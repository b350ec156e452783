"""Streaming inspection of an uploaded object: SHA-256, size and the sniffed content type.

Memory stays constant whatever the size: chunks are hashed as they arrive, only the first
``SNIFF_BYTES`` are kept for content sniffing (puremagic), and reading stops once the object is
known to be larger than allowed. ``prefetch`` reads the next chunks into reused buffers in a
thread while the current one is hashed (socket reads and hashlib both release the GIL), so
throughput approaches the slower of network and hash rather than their sum.
"""

from __future__ import annotations

import codecs
import hashlib
import queue
import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass

import puremagic

from filepipe import mediatypes

SNIFF_BYTES = 8192
TEXTUAL_TYPES = frozenset(
    {"application/json", "application/xml", "application/csv", "application/x-ndjson"}
)


OCTET_STREAM = "application/octet-stream"
CONTAINERS = {"application/zip": (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")}
"""Container formats, by signature: puremagic's best match for a ZIP is often a format built on
it (OOXML, ODF, EPUB, JAR), and a file declared as the container is the container."""


@dataclass(frozen=True)
class Inspection:
    size: int
    """Bytes read; when ``truncated``, reading stopped here, past the limit."""
    sha256: str | None
    """Hex digest of the whole object; ``None`` when ``truncated``."""
    head: bytes
    truncated: bool
    text: bool | None = None
    """Whether the whole object is UTF-8 without NUL; ``None`` when that was not checked."""


def inspect(
    chunks: Iterable[bytes | memoryview],
    *,
    limit: int,
    on_chunk: Callable[[], None] | None = None,
    text: bool = False,
) -> Inspection:
    """Hash and measure ``chunks``; stop as soon as more than ``limit`` bytes have arrived.

    With ``text``, also decode every byte as UTF-8 (incrementally: a character may straddle two
    chunks) and look for NULs, so a textual declaration is checked against the whole object.
    """
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")() if text else None
    is_text = text
    head = bytearray()
    size = 0
    for chunk in chunks:
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        size += len(chunk)
        if size > limit:
            return Inspection(size=size, sha256=None, head=bytes(head), truncated=True)
        digest.update(chunk)
        if decoder is not None and is_text:
            is_text = _decodes(decoder, chunk, final=False)
        if on_chunk is not None:
            on_chunk()
    if decoder is not None and is_text:
        is_text = _decodes(decoder, b"", final=True)
    return Inspection(
        size=size,
        sha256=digest.hexdigest(),
        head=bytes(head),
        truncated=False,
        text=is_text if text else None,
    )


def _decodes(decoder: codecs.IncrementalDecoder, chunk: bytes | memoryview, *, final: bool) -> bool:
    """Feed ``chunk`` to ``decoder``: whether it is still UTF-8 text without NUL."""
    try:
        return "\x00" not in decoder.decode(chunk, final=final)
    except UnicodeDecodeError:
        return False


def sniff(head: bytes, declared: str, *, text: bool | None = None) -> str:
    """The content type the bytes show: ``declared`` when the bytes are what it says.

    - A textual declared type (``text/*``, JSON, XML, CSV, ``+json``, ``+xml``) is checked by
      decoding: the bytes are it when they are UTF-8 without NUL (``text``: what decoding the
      whole object found; ``None``: the first ``SNIFF_BYTES`` are judged).
    - Otherwise the magic numbers decide, and only puremagic's best matches (those of the highest
      confidence) count, not any candidate; a container declared for a format built on it is
      the container (``CONTAINERS``).
    - Bytes with no magic are ``text/plain`` when they are text, else octet-stream.
    """
    wanted = mediatypes.normalise(declared)
    is_text = _looks_like_text(head) if text is None else text
    best = _best_matches(head)
    if is_textual(wanted):
        if is_text:
            return wanted
        binary = [candidate for candidate in best if not is_textual(candidate)]
        return binary[0] if binary else OCTET_STREAM
    if best:
        if wanted in best or head.startswith(CONTAINERS.get(wanted, ())):
            return wanted
        return best[0]
    return "text/plain" if is_text else OCTET_STREAM


def _best_matches(head: bytes) -> list[str]:
    """puremagic's candidates of the highest confidence, normalised (none: ``[]``)."""
    try:
        matches = [match for match in puremagic.magic_string(head) if match.mime_type]
    except puremagic.PureError:
        return []
    if not matches:
        return []
    best = max(match.confidence for match in matches)
    return [mediatypes.normalise(m.mime_type) for m in matches if m.confidence == best]


def is_textual(essence: str) -> bool:
    """Whether a media type essence names text (checked by decoding rather than by magic)."""
    return (
        essence.startswith("text/")
        or essence in TEXTUAL_TYPES
        or essence.endswith(("+json", "+xml"))
    )


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for cut in range(4):  # the sample may end inside a multi-byte character
        try:
            head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def prefetch(
    readinto: Callable[[memoryview], int], *, chunk_size: int, depth: int = 4
) -> Generator[memoryview, None, None]:
    """Yield chunks that a thread reads ahead (``depth`` at most) into reused buffers.

    ``readinto`` fills a buffer and returns the byte count (0 at the end), so reading allocates
    nothing and copies nothing. Each yielded view is valid until the next is requested. Errors
    of the reader surface in order; closing the generator early stops the reader.
    """
    free: queue.Queue[bytearray] = queue.Queue()
    for _ in range(depth + 1):
        free.put(bytearray(chunk_size))
    ready: queue.Queue[tuple[bytearray, int] | BaseException | None] = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                buffer = free.get()
                count = readinto(memoryview(buffer))
                if not count:
                    break
                ready.put((buffer, count))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises
            ready.put(exc)
            return
        ready.put(None)

    reader = threading.Thread(target=read, name="object-prefetch", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            buffer, count = item
            yield memoryview(buffer)[:count]
            free.put(buffer)
    finally:
        stop.set()
        free.put(bytearray(0))  # wakes a reader waiting for a buffer; it then sees ``stop``
        reader.join()
