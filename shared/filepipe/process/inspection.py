"""Streaming inspection of an uploaded object: SHA-256, size and the sniffed content type.

Memory stays constant whatever the size: chunks are hashed as they arrive, only the first
``SNIFF_BYTES`` are kept for content sniffing (puremagic), and reading stops once the object is
known to be larger than allowed. ``prefetch`` reads the next chunks into reused buffers in a
thread while the current one is hashed (socket reads and hashlib both release the GIL), so
throughput approaches the slower of network and hash rather than their sum.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Inspection:
    size: int
    """Bytes read; when ``truncated``, reading stopped here, past the limit."""
    sha256: str | None
    """Hex digest of the whole object; ``None`` when ``truncated``."""
    head: bytes
    truncated: bool


def inspect(
    chunks: Iterable[bytes | memoryview],
    *,
    limit: int,
    on_chunk: Callable[[], None] | None = None,
) -> Inspection:
    """Hash and measure ``chunks``; stop as soon as more than ``limit`` bytes have arrived."""
    digest = hashlib.sha256()
    head = bytearray()
    size = 0
    for chunk in chunks:
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        size += len(chunk)
        if size > limit:
            return Inspection(size=size, sha256=None, head=bytes(head), truncated=True)
        digest.update(chunk)
        if on_chunk is not None:
            on_chunk()
    return Inspection(size=size, sha256=digest.hexdigest(), head=bytes(head), truncated=False)


def sniff(head: bytes, declared: str) -> str:
    """The content type the bytes show, preferring ``declared`` when the bytes allow it.

    Magic numbers decide binary formats. Bytes with no magic that are valid UTF-8 without NULs
    are text: they satisfy a textual declared type (``text/*``, JSON, XML, CSV) and are
    ``text/plain`` otherwise. Anything else is ``application/octet-stream``.
    """
    wanted = mediatypes.normalise(declared)
    try:
        candidates = [
            mediatypes.normalise(match.mime_type)
            for match in puremagic.magic_string(head)
            if match.mime_type
        ]
    except puremagic.PureError:
        candidates = []
    if candidates:
        return wanted if wanted in candidates else candidates[0]
    if _looks_like_text(head):
        return wanted if _is_textual(wanted) else "text/plain"
    return "application/octet-stream"


def _is_textual(essence: str) -> bool:
    return essence.startswith("text/") or essence in TEXTUAL_TYPES or essence.endswith("+json")


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
