"""Uploading a file from disk, resumably: ``POST /uploads``, then one PUT or the parts.

A file under ``SINGLE_PUT_BELOW`` goes by one presigned PUT with its SHA-256 declared (read once
first: a small file is cheap); a larger one is left to the server's threshold and normally goes
multipart (``filepipe_client._parts``), its SHA-256 computed while the parts are read and given
when completing. ``part_size`` asks for multipart with parts of that size.

Resuming: the ``Idempotency-Key`` is derived from the file's identity (absolute path, size,
mtime, content type, metadata, part size), so running again after a crash replays the same file
and upload id; the parts storage holds are then read but not sent. An upload whose URL expired
(409) or that was cancelled or expired is started afresh under the next key (``<key>.1``, …); a
replayed file past PENDING was uploaded before and is not uploaded again.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filepipe_client._client import Client
from filepipe_client._errors import Conflict, ConnectionFailed, StorageError
from filepipe_client._models import CreatedUpload, File, MultipartUpload, SingleUpload, Status
from filepipe_client._parts import READ_PIECE, PartSender, Progress, plan_parts

MIB = 1024 * 1024
SINGLE_PUT_BELOW = 64 * MIB
PUT_ATTEMPTS = 5
FRESH_KEYS = 20
"""Keys tried after the identity's own when earlier uploads expired or were cancelled."""
OCTET_STREAM = "application/octet-stream"


class _Silent:
    def start(self, path: Path, total: int) -> None:
        pass

    def advance(self, path: Path, amount: int) -> None:
        pass


@dataclass(frozen=True)
class UploadResult:
    path: Path
    file: File
    """The file after uploading (PENDING until processed), or as it was if uploaded before."""
    sent_parts: int
    """Parts (1 for a single PUT) this run sent."""
    stored_parts: int
    """Parts storage held already (a resumed upload)."""
    already_uploaded: bool
    """An earlier run uploaded this file; nothing was sent."""


def guess_content_type(path: Path) -> str:
    """The media type of ``path``'s name (``mimetypes``), else ``application/octet-stream``."""
    guessed, _ = mimetypes.guess_type(path.name, strict=False)
    return guessed or OCTET_STREAM


def identity_key(
    path: Path,
    stat: os.stat_result,
    content_type: str,
    metadata: dict[str, str],
    part_size: int | None,
) -> str:
    """A stable ``Idempotency-Key`` for uploading this file as it is now."""
    identity = json.dumps(
        [
            str(path.absolute()),
            stat.st_size,
            stat.st_mtime_ns,
            content_type,
            sorted(metadata.items()),
            part_size,
        ]
    )
    return "fpc-" + hashlib.sha256(identity.encode()).hexdigest()[:48]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while piece := source.read(READ_PIECE):
            digest.update(piece)
    return digest.hexdigest()


class Uploader:
    """Uploads files with ``client``: ``concurrency`` parts in flight, ``progress`` told."""

    def __init__(
        self, client: Client, *, concurrency: int = 4, progress: Progress | None = None
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.progress: Progress = progress or _Silent()

    def upload(
        self,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        part_size: int | None = None,
        restart: bool = False,
    ) -> UploadResult:
        """Upload ``path`` (or resume its upload); ``restart`` cancels an unfinished one first."""
        stat = path.stat()
        content_type = content_type or guess_content_type(path)
        metadata = dict(metadata or {})
        body: dict[str, Any] = {
            "filename": path.name,
            "content_type": content_type,
            "size": stat.st_size,
        }
        if metadata:
            body["metadata"] = metadata
        if part_size is not None:
            body.update(multipart=True, part_size=part_size)
        elif stat.st_size < SINGLE_PUT_BELOW:
            body.update(multipart=False, sha256=file_sha256(path))
        key = identity_key(path, stat, content_type, metadata, part_size)
        created = self._create(body, key, restart=restart)
        if created.replayed and created.file.status != Status.PENDING:
            return UploadResult(path, created.file, 0, 0, already_uploaded=True)
        self.progress.start(path, stat.st_size)
        upload = created.upload
        if isinstance(upload, SingleUpload):
            self._put(path, upload, stat.st_size)
            return UploadResult(path, created.file, 1, 0, already_uploaded=False)
        stored = (
            {part.number: part for part in self.client.stored_parts(created.file.id).parts}
            if created.replayed
            else {}
        )
        plan = plan_parts(stat.st_size, upload.part_size)
        sender = PartSender(
            self.client,
            created.file.id,
            path,
            concurrency=self.concurrency,
            progress=self.progress,
        )
        sent = sender.send(plan, stored)
        file = self.client.complete_upload(created.file.id, sent.etags, sent.sha256)
        return UploadResult(path, file, sent.sent, len(plan) - sent.sent, already_uploaded=False)

    def _create(self, body: dict[str, Any], key: str, *, restart: bool) -> CreatedUpload:
        """The upload of the first key (``key``, ``key.1``, …) whose file can still be uploaded."""
        for attempt in range(FRESH_KEYS + 1):
            try:
                created = self.client.create_upload(
                    body, idempotency_key=key if attempt == 0 else f"{key}.{attempt}"
                )
            except Conflict:
                continue  # this key's upload URL expired
            status = created.file.status
            if not created.replayed:
                return created  # a new file
            if status in (Status.CANCELLED, Status.EXPIRED):
                continue  # that upload is over: the next key starts afresh
            if status != Status.PENDING or not restart:
                return created  # uploaded before, or to be resumed
            if isinstance(created.upload, MultipartUpload):
                self.client.abort_upload(created.file.id)  # --restart: cancelled, then afresh
        raise Conflict(409, f"no fresh upload after {FRESH_KEYS} keys; try again later")

    def _put(self, path: Path, upload: SingleUpload, size: int) -> None:
        """One presigned PUT of ``size`` bytes, streamed from disk; tried again on failures that
        may pass."""
        attempt = 0
        while True:
            sent = 0

            def pieces() -> Iterator[bytes]:
                nonlocal sent
                with path.open("rb") as source:
                    while piece := source.read(READ_PIECE):
                        sent += len(piece)
                        self.progress.advance(path, len(piece))
                        yield piece

            try:
                self.client.put(upload.url, upload.headers, pieces(), length=size)
                return
            except StorageError as exc:
                if exc.status == 412:
                    return  # an earlier run's PUT created the object: it is uploaded
                if exc.status < 500 or attempt + 1 >= PUT_ATTEMPTS:
                    raise
            except ConnectionFailed:
                if attempt + 1 >= PUT_ATTEMPTS:
                    raise
            self.progress.advance(path, -sent)
            self.client.sleep(self.client.backoff.delay(attempt))
            attempt += 1
