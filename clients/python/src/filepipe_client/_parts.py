"""Sending a multipart upload's parts from disk, in parallel, in bounded memory.

The file is read once, in part order, on the calling thread: each part's bytes feed the
whole-file SHA-256 and their own, and a part that storage holds already (a resumed upload) is
read but not sent, and compared with the stored one (by SHA-256 when the server lists it, else
by the part's ETag when that is its MD5). At most ``concurrency`` parts are held in memory,
each from its read until storage has it; the URLs of the parts read while a slot was free are
asked for in one request, with their digests, which storage checks. A part that fails is sent
again with a fresh URL (``PART_ATTEMPTS`` times), never the whole file.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from filepipe_client._client import Client
from filepipe_client._errors import (
    ConnectionFailed,
    FilepipeError,
    IntegrityError,
    StorageError,
)
from filepipe_client._models import StoredPart

MIB = 1024 * 1024
READ_PIECE = MIB
SEND_PIECE = 256 * 1024
MAX_BATCH = 1000
"""Part numbers one ``POST /uploads/{id}/parts`` may ask for."""
PART_ATTEMPTS = 5
_MD5 = re.compile(r"[0-9a-f]{32}")


class Progress(Protocol):
    """Told how many bytes of ``path`` went out (negative: a failed try taken back)."""

    def start(self, path: Path, total: int) -> None: ...

    def advance(self, path: Path, amount: int) -> None: ...


@dataclass(frozen=True)
class PartSpan:
    """Part ``number`` (1-based): ``length`` bytes from ``offset``."""

    number: int
    offset: int
    length: int


def plan_parts(size: int, part_size: int) -> list[PartSpan]:
    """The parts of ``size`` bytes cut every ``part_size`` bytes (the last may be shorter)."""
    if size < 1 or part_size < 1:
        raise ValueError("size and part size must be at least 1 byte")
    return [
        PartSpan(index + 1, offset, min(part_size, size - offset))
        for index, offset in enumerate(range(0, size, part_size))
    ]


@dataclass
class _Read:
    number: int
    data: bytes
    sha256: str


@dataclass(frozen=True)
class SentParts:
    etags: dict[int, str]
    sha256: str
    """Hex SHA-256 of the whole file."""
    sent: int
    """Parts this run sent (the others were stored already)."""


class PartSender:
    """Sends the parts of ``path`` for the multipart upload of file ``file_id``."""

    def __init__(
        self,
        client: Client,
        file_id: str,
        path: Path,
        *,
        concurrency: int,
        progress: Progress,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.file_id = file_id
        self.path = path
        self.concurrency = concurrency
        self.progress = progress

    def send(self, plan: list[PartSpan], stored: Mapping[int, StoredPart]) -> SentParts:
        whole = hashlib.sha256()
        etags: dict[int, str] = {}
        slots = threading.Semaphore(self.concurrency)
        futures: list[Future[tuple[int, str]]] = []
        batch: list[_Read] = []
        with (
            self.path.open("rb") as source,
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="part") as pool,
        ):

            def submit() -> None:
                if batch:
                    futures.extend(self._submit(pool, batch, slots.release))
                    batch.clear()

            try:
                for span in plan:
                    if any(f.done() and f.exception() for f in futures):
                        break  # a part failed for good: its error is raised below
                    source.seek(span.offset)
                    known = stored.get(span.number)
                    if known is not None:
                        self._check_stored(source, span, known, whole)
                        etags[span.number] = known.etag
                        continue
                    if not slots.acquire(blocking=False):
                        submit()
                        slots.acquire()
                    data = _read_exactly(source, span.length)
                    whole.update(data)
                    batch.append(_Read(span.number, data, hashlib.sha256(data).hexdigest()))
                    if len(batch) >= MAX_BATCH:
                        submit()
                submit()
                for future in futures:
                    number, etag = future.result()
                    etags[number] = etag
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return SentParts(etags, whole.hexdigest(), len(futures))

    def _submit(
        self, pool: ThreadPoolExecutor, batch: list[_Read], release: Callable[[], None]
    ) -> Iterator[Future[tuple[int, str]]]:
        urls = self.client.part_urls(self.file_id, {part.number: part.sha256 for part in batch})
        by_number = {url.number: url for url in urls}
        for part in batch:
            future = pool.submit(
                self._send_part, part, by_number[part.number].url, by_number[part.number].headers
            )
            future.add_done_callback(lambda _: release())
            yield future

    def _send_part(self, part: _Read, url: str, headers: dict[str, str]) -> tuple[int, str]:
        attempt = 0
        while True:
            sent = 0

            def pieces() -> Iterator[bytes]:
                nonlocal sent
                for start in range(0, len(part.data), SEND_PIECE):
                    piece = part.data[start : start + SEND_PIECE]
                    sent += len(piece)
                    self.progress.advance(self.path, len(piece))
                    yield piece

            try:
                etag = self.client.put(url, headers, pieces(), length=len(part.data))
                return part.number, etag
            except (StorageError, ConnectionFailed):
                attempt += 1
                if attempt >= PART_ATTEMPTS:
                    raise
            self.progress.advance(self.path, -sent)
            self.client.sleep(self.client.backoff.delay(attempt))
            fresh = self.client.part_urls(self.file_id, {part.number: part.sha256})[0]
            url, headers = fresh.url, fresh.headers

    def _check_stored(
        self, source: BinaryIO, span: PartSpan, known: StoredPart, whole: hashlib._Hash
    ) -> None:
        """Read a stored part into the whole digest; ``IntegrityError`` if it changed."""
        digest, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        left = span.length
        while left:
            piece = source.read(min(READ_PIECE, left))
            if not piece:
                break
            left -= len(piece)
            for each in (digest, md5, whole):
                each.update(piece)
        if known.size != span.length or left or not _same(known, digest, md5):
            raise IntegrityError(
                f"{self.path} changed since its upload began (part {span.number} differs from"
                " the stored one); start over with --restart"
            )
        self.progress.advance(self.path, span.length)


def _same(known: StoredPart, sha256: hashlib._Hash, md5: hashlib._Hash) -> bool:
    """Whether a part read from disk is the stored one: by its SHA-256 when storage lists it,
    else by its ETag when that is a plain MD5 (S3's, MinIO's and moto's for unencrypted parts)."""
    if known.sha256 is not None:
        return known.sha256 == sha256.hexdigest()
    etag = known.etag.strip('"').lower()
    if _MD5.fullmatch(etag):
        return etag == md5.hexdigest()
    return True


def _read_exactly(source: BinaryIO, length: int) -> bytes:
    data = source.read(length)
    if len(data) != length:
        raise FilepipeError(f"{source.name} is shorter than when its upload began")
    return data
