"""Large objects in bounded memory: moto's multipart completion and GetObject, chunk by chunk.

What moto 5.2.5 does (``moto/s3/models.py``, ``moto/s3/responses.py``): an object's bytes live in
its ``FakeKey``'s ``SpooledTemporaryFile`` (in memory up to ``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE``,
5 MiB by default, then in a temporary file), and so does each part UploadPart stored. But
``FakeMultipart.complete`` joins the parts in a ``bytearray`` (reading each part's ``value``, a
copy, once for the bytes and once for the checksum, and, without a checksum algorithm, keeping a
second whole copy for the CRC), copies it into ``bytes`` and hands that to ``put_object``, which
writes it into the new key's file: two to three times the object in memory at once. GetObject
answers with ``key.value``, the whole object read into memory, for a Range request too (sliced
afterwards).

What this module replaces, at two seams, leaving the rest to moto (CompleteMultipartUpload's
answer and its ``ObjectCreated:CompleteMultipartUpload`` notification, ``put_object``, HEAD, the
other GETs):

- ``install`` points ``FakeMultipart.complete`` at ``assemble``: the same checks and results
  (InvalidPart for a missing part or another ETag, EntityTooSmall for a part under 5 MiB but the
  last, MalformedXML for none; the ETag ``<MD5 of the parts' MD5s>-<count>``; the checksum
  ``MultipartChecksumBuilder`` computes), but the parts are copied 1 MiB at a time into a new
  spooled file, checksummed on the way, and that file (``Assembled``) is returned instead of
  bytes. ``FakeKey.value``'s setter adopts an ``Assembled`` file as the key's buffer (no copy);
  any other value is stored as moto stores it, and the getter is moto's.
- ``create_app`` is moto's S3 app answering with ``StreamingS3Response``: moto's ``get_object``
  runs unchanged (conditional requests, Content-Range, checksum headers, ``response-content-*``
  overrides) on a key whose ``value`` is an ``ObjectBody``, which werkzeug sends 1 MiB at a time,
  each chunk read under the key's lock. The app is out of Flask's debug mode, in which each
  request's body (a whole part, for UploadPart) stayed in a reference cycle until the next
  garbage collection.

Still whole in memory, as moto reads them: one request's body (a part, or a single PUT) and the
source of a CopyObject.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import tempfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask
from moto import settings
from moto.core.common_types import TYPE_RESPONSE
from moto.core.compat import HAS_CRT
from moto.core.utils import convert_to_flask_response
from moto.moto_server.werkzeug_app import create_backend_app
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeKey, FakeMultipart
from moto.s3.responses import S3Response
from moto.s3.utils import compute_checksum

from local.s3_body import Crc, Hasher

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Assembled:
    """A completed multipart object's bytes, in the spooled file its key adopts."""

    file: tempfile.SpooledTemporaryFile[bytes]
    size: int


def chunks(key: FakeKey, start: int, stop: int) -> Iterator[bytes]:
    """Bytes ``start`` to ``stop`` of ``key``'s value, ``CHUNK`` at a time, read under its lock."""
    buffer = key._value_buffer
    position = start
    while position < stop:
        with key.lock:
            buffer.seek(position)
            chunk = buffer.read(min(CHUNK, stop - position))
        if not chunk:
            raise EOFError(f"key {key.name} ends at byte {position}, not {stop}")
        position += len(chunk)
        yield chunk


def running_checksum(algorithm: str) -> Hasher:
    """``moto.s3.utils.compute_checksum``'s digest, fed chunk by chunk, with its fallbacks.

    Like moto, CRC32C without the ``crc32c`` package and CRC64NVME without ``awscrt`` are CRC32.
    """
    if algorithm == "SHA1":
        return hashlib.sha1(usedforsecurity=False)
    if algorithm == "CRC32C":
        with suppress(ImportError):
            return Crc(importlib.import_module("crc32c").crc32c)
    if algorithm == "CRC64NVME" and HAS_CRT:
        return Crc(importlib.import_module("awscrt.checksums").crc64nvme, width=8)
    if algorithm in {"CRC32", "CRC32C", "CRC64NVME"}:
        return Crc()
    return hashlib.sha256()


class MultipartChecksum:
    """What moto's ``MultipartChecksumBuilder`` builds, from the parts' bytes as they stream by.

    CRC64NVME unless the upload named an algorithm; FULL_OBJECT (one checksum of every byte) for
    CRC64NVME unless it named a type, else COMPOSITE (the checksum of the parts' checksums).
    """

    def __init__(self, algorithm: str | None, kind: str | None) -> None:
        self.algorithm = algorithm or "CRC64NVME"
        self.kind = kind or ("FULL_OBJECT" if self.algorithm == "CRC64NVME" else "COMPOSITE")
        self.whole = running_checksum(self.algorithm)
        self.digests = bytearray()
        self.parts = 0

    def part(self) -> Hasher:
        """The hasher the next part's bytes go to."""
        self.parts += 1
        return running_checksum(self.algorithm) if self.kind == "COMPOSITE" else self.whole

    def part_done(self, hasher: Hasher) -> None:
        if self.kind == "COMPOSITE":
            self.digests += hasher.digest()

    def result(self) -> tuple[str, str, int]:
        """``(type, base64 checksum, part count)``, as ``MultipartChecksumBuilder.build``."""
        if self.kind == "COMPOSITE":
            value = compute_checksum(bytes(self.digests), self.algorithm).decode()
            return self.kind, value, self.parts
        return self.kind, base64.b64encode(self.whole.digest()).decode(), 1


def assemble(
    multipart: FakeMultipart, body: Iterator[tuple[int, str]]
) -> tuple[Assembled, str, tuple[str, str, int]]:
    """``FakeMultipart.complete``, copying the listed parts chunk by chunk into a new file."""
    metadata = multipart.metadata
    checksum = MultipartChecksum(
        metadata.get("x-amz-checksum-algorithm"), metadata.get("x-amz-checksum-type")
    )
    md5s = hashlib.md5(usedforsecurity=False)
    file: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
        max_size=settings.get_s3_default_key_buffer_size()  # as moto's keys; the key keeps it
    )
    size = count = 0
    last: FakeKey | None = None
    try:
        for number, etag in body:
            part = multipart.parts.get(number)
            part_etag = part.etag.replace('"', "") if part is not None else None
            if part is None or part_etag != etag.replace('"', ""):
                raise InvalidPart()
            if last is not None and last.contentsize < settings.S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            md5s.update(bytes.fromhex(part_etag))
            hasher = checksum.part()
            for chunk in chunks(part, 0, part.size):
                file.write(chunk)
                hasher.update(chunk)
            checksum.part_done(hasher)
            size += part.size
            last = part
            count += 1
        if count == 0:
            raise MalformedXML()
    except BaseException:
        file.close()
        raise
    return Assembled(file, size), f"{md5s.hexdigest()}-{count}", checksum.result()


_MOTO_VALUE: property = vars(FakeKey)["value"]


def _set_value(key: FakeKey, value: Any) -> None:
    """moto's ``FakeKey.value`` setter, except that an ``Assembled`` file becomes the buffer."""
    if isinstance(value, Assembled):
        key._value_buffer.close()
        key._value_buffer = value.file
        key.contentsize = value.size
    else:
        _MOTO_VALUE.__set__(key, value)


def install() -> None:
    """Complete multipart uploads with ``assemble`` and let keys adopt its file (once)."""
    if vars(FakeMultipart)["complete"] is not assemble:
        FakeMultipart.complete = assemble  # type: ignore[method-assign,assignment]
        FakeKey.value = _MOTO_VALUE.setter(_set_value)  # type: ignore[method-assign,assignment]


class ObjectBody:
    """Stands in for GetObject's ``bytes``: a length and slices (what moto's Range handling
    takes), then the bytes, read from the key's buffer as werkzeug iterates."""

    def __init__(self, key: FakeKey, start: int = 0, stop: int | None = None) -> None:
        self.key = key
        self.start = start
        self.stop = key.size if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, window: slice) -> ObjectBody:
        start, stop, step = window.indices(len(self))
        if step != 1:
            raise ValueError("an object body slices by contiguous ranges only")
        return ObjectBody(self.key, self.start + start, self.start + max(start, stop))

    def __iter__(self) -> Iterator[bytes]:
        return chunks(self.key, self.start, self.stop)


class _StreamedKey:
    """A key whose ``value`` is an ``ObjectBody``; every other attribute is the key's own."""

    def __init__(self, key: FakeKey) -> None:
        self._key = key

    @property
    def value(self) -> ObjectBody:
        return ObjectBody(self._key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)


class StreamingS3Response(S3Response):
    """moto's S3 responses, but GetObject's body is an ``ObjectBody`` (one instance per request)."""

    streaming = False

    def get_object(self) -> TYPE_RESPONSE:
        self.streaming = True
        return super().get_object()

    def _get_key(self, validate_storage_class: bool = True) -> tuple[FakeKey, bool]:
        key, not_modified = super()._get_key(validate_storage_class)
        if self.streaming:
            return cast(FakeKey, _StreamedKey(key)), not_modified
        return key, not_modified


def create_app() -> Flask:
    """moto's S3 app, completing with ``assemble`` and answering with ``StreamingS3Response``."""
    install()
    app = create_backend_app("s3")
    # In debug mode Flask gives each request's ``files`` a class of its own that refers back to
    # the request (``flask.debughelpers.attach_enctype_error_multidict``): a reference cycle that
    # keeps each request body (a whole part) in memory until the garbage collector runs.
    app.debug = False
    for view in app.view_functions.values():
        if not isinstance(view, convert_to_flask_response):
            continue
        handler = view.callback  # S3Response.bucket_dispatch, .key_dispatch, …
        if getattr(handler, "__self__", None) is S3Response:
            view.callback = getattr(StreamingS3Response, handler.__name__)
    return app
