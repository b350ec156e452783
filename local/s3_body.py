"""Request bodies: read once in constant memory, hashed on the way, checked before anything is kept.

MinIO checks a body against what its request declares while reading it (``internal/hash``,
``cmd/object-handlers.go``); so does this module, with MinIO's answers (``local.s3_errors``):

- fewer bytes than ``Content-Length`` → 400 ``IncompleteBody``;
- ``Content-MD5`` malformed → 400 ``InvalidDigest``, different → 400 ``BadDigest``;
- the SHA-256 a header signature covers (``x-amz-content-sha256``) different → 400
  ``XAmzContentSHA256Mismatch``;
- ``x-amz-checksum-<algorithm>`` (at most one; base64 of the right length, else 400
  ``InvalidArgument``) different → 400 ``XAmzContentChecksumMismatch`` (S3 says ``BadDigest``).
  SHA-256, SHA-1 and CRC32 are verified; CRC32C and CRC64NVME need a C extension the local
  server does not have, so it answers 501 ``NotImplemented`` rather than store them unverified.

The bytes go to a ``SpooledTemporaryFile`` (memory up to ``SPOOL_MAX_MEMORY``, then disk), which
the caller hands on once they passed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol

from local import s3_errors as errors

CHECKSUM_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
"""``x-amz-checksum-<algorithm>`` → bytes of its digest."""
VERIFIABLE = frozenset({"crc32", "sha1", "sha256"})
CHECKSUM_PREFIX = "x-amz-checksum-"
CHUNK = 1024 * 1024
SPOOL_MAX_MEMORY = 1024 * 1024


@dataclass(frozen=True)
class Declared:
    """What a request says its body is."""

    length: int
    sha256_hex: str | None = None
    """The hex SHA-256 the request's signature covers."""
    md5: bytes | None = None
    """``Content-MD5``, decoded."""
    checksum: tuple[str, bytes] | None = None
    """``(algorithm, digest)`` from ``x-amz-checksum-<algorithm>``."""


def declared_checksum(values: Mapping[str, str]) -> tuple[str, bytes] | None:
    """The one ``x-amz-checksum-*`` among ``values`` (lower-case names: headers or form fields)."""
    found = [
        (algorithm, values[CHECKSUM_PREFIX + algorithm])
        for algorithm in CHECKSUM_SIZES
        if CHECKSUM_PREFIX + algorithm in values
    ]
    if not found:
        return None
    if len(found) > 1:
        raise errors.INVALID_CHECKSUM()
    [(algorithm, text)] = found
    digest = _base64(text, errors.INVALID_CHECKSUM)
    if len(digest) != CHECKSUM_SIZES[algorithm]:
        raise errors.INVALID_CHECKSUM()
    if algorithm not in VERIFIABLE:
        raise errors.NOT_IMPLEMENTED(f"{CHECKSUM_PREFIX}{algorithm} is not verified locally")
    return algorithm, digest


def declared_md5(value: str | None) -> bytes | None:
    """``Content-MD5`` decoded (None when absent)."""
    if value is None:
        return None
    digest = _base64(value, errors.INVALID_DIGEST)
    if len(digest) != 16:
        raise errors.INVALID_DIGEST()
    return digest


def _base64(text: str, refusal: errors.Refusal) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise refusal() from None


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class Crc:
    """A CRC as a ``Hasher``: ``function(data, previous)`` as ``zlib.crc32``, ``width`` bytes."""

    def __init__(self, function: Callable[[bytes, int], int] = zlib.crc32, width: int = 4) -> None:
        self.function = function
        self.width = width
        self.value = 0

    def update(self, data: bytes, /) -> None:
        self.value = self.function(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self.width, "big")


class Digests:
    """The running digests that a body's declaration needs, and their verdict."""

    def __init__(self, declared: Declared) -> None:
        self.declared = declared
        self.size = 0
        algorithm = declared.checksum[0] if declared.checksum else None
        self._hashers: dict[str, Hasher] = {}
        if declared.md5 is not None:
            self._hashers["md5"] = hashlib.md5(usedforsecurity=False)
        if declared.sha256_hex or algorithm == "sha256":
            self._hashers["sha256"] = hashlib.sha256()
        if algorithm == "sha1":
            self._hashers["sha1"] = hashlib.sha1(usedforsecurity=False)
        if algorithm == "crc32":
            self._hashers["crc32"] = Crc()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        for hasher in self._hashers.values():
            hasher.update(chunk)

    def verify(self) -> None:
        """Raise the first mismatch, in MinIO's order: MD5, then SHA-256, then the checksum."""
        declared = self.declared
        if declared.md5 is not None and self._hashers["md5"].digest() != declared.md5:
            raise errors.BAD_DIGEST()
        if declared.sha256_hex and (
            self._hashers["sha256"].digest().hex() != declared.sha256_hex.lower()
        ):
            raise errors.CONTENT_SHA256_MISMATCH()
        if declared.checksum is not None:
            algorithm, expected = declared.checksum
            if self._hashers[algorithm].digest() != expected:
                raise errors.CHECKSUM_MISMATCH()


def spool(stream: IO[bytes] | Any, declared: Declared) -> IO[bytes]:
    """Exactly ``declared.length`` bytes of ``stream``, verified, in a rewound temporary file.

    Raises ``S3Error`` (and keeps nothing) if the stream ends early or a digest differs.
    """
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY)  # noqa: SIM115
    try:
        digests = Digests(declared)
        remaining = declared.length
        while remaining > 0:
            chunk = stream.read(min(CHUNK, remaining))
            if not chunk:
                raise errors.INCOMPLETE_BODY()
            digests.update(chunk)
            spooled.write(chunk)
            remaining -= len(chunk)
        digests.verify()
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled
