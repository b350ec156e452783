"""Validation of ``POST /uploads`` bodies and headers (pure: no I/O).

Every rule answers with the status that fits: 413 for a size over the limit, 415 for a content
type outside the allow-list, 400 (listing every field at fault) for anything else.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from filepipe import filenames, mediatypes
from filepipe.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from filepipe.upload.multipart import MAX_PART_SIZE, MIN_PART_SIZE, part_size_of

MAX_FILENAME_BYTES = 255
MAX_METADATA_ENTRIES = 32
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_METADATA_BYTES = 2048
MAX_IDEMPOTENCY_KEY = 255

_ABSENT = object()
"""An optional field left out (``null`` is not the same: it is refused)."""
_FIELDS = frozenset(
    {"filename", "content_type", "size", "sha256", "metadata", "multipart", "part_size"}
)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_METADATA_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class UploadRequest:
    filename: str
    content_type: str
    size: int | None
    """None: unknown (the Companion routes), bounded by the size limit alone."""
    sha256: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    multipart: bool | None = None
    """``None``: multipart from ``FILEPIPE_MULTIPART_THRESHOLD`` bytes on."""
    part_size: int | None = None

    def fingerprint(self) -> str:
        """A digest of the request, to tell an idempotent retry from a conflicting reuse.

        ``multipart`` and ``part_size`` count only when given, so fingerprints recorded before
        they existed still match."""
        fields: list[Any] = [
            self.filename, self.content_type, self.size, self.sha256, dict(self.metadata)
        ]  # fmt: skip
        if self.multipart is not None or self.part_size is not None:
            fields.append({"multipart": self.multipart, "part_size": self.part_size})
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_upload_request(
    body: Mapping[str, Any], *, max_size: int, allowed_types: Sequence[str], sized: bool = True
) -> UploadRequest:
    """The valid request; with ``sized=False`` one of unknown size (``size`` is not read)."""
    errors: list[dict[str, str]] = []

    def fail(name: str, message: str) -> None:
        errors.append({"field": name, "message": message})

    for unknown in sorted(set(body) - _FIELDS):
        fail(unknown, "unknown field")
    filename = _filename(body.get("filename"), fail)
    content_type = _content_type(body.get("content_type"), fail)
    size = _size(body.get("size"), fail) if sized else None
    sha256 = _sha256(body.get("sha256", _ABSENT), fail)
    metadata = parse_metadata(body.get("metadata", _ABSENT), fail)
    multipart = body.get("multipart")
    if "multipart" in body and not isinstance(multipart, bool):
        fail("multipart", "must be true or false")
    part_size = part_size_of(body.get("part_size"))
    if "part_size" in body and part_size is None:
        fail("part_size", f"must be an integer from {MIN_PART_SIZE} to {MAX_PART_SIZE} bytes")
    if errors:
        raise BadRequest("the upload request is invalid", errors=errors)
    assert filename is not None and content_type is not None and (size is not None or not sized)
    if size is not None and size > max_size:
        raise PayloadTooLarge(
            f"size {size} is over the limit of {max_size} bytes", max_size=max_size
        )
    if not mediatypes.allowed(content_type, allowed_types):
        raise UnsupportedMediaType(
            f"content type {mediatypes.essence(content_type)!r} is not allowed",
            allowed=list(allowed_types),
        )
    return UploadRequest(filename, content_type, size, sha256, metadata, multipart, part_size)


def validate_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY or not _IDEMPOTENCY_KEY.fullmatch(value):
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return value


def _filename(value: Any, fail: Any) -> str | None:
    if not isinstance(value, str):
        fail("filename", "required, a string")
        return None
    normalized = filenames.normalize(value)
    if not normalized.strip() or normalized in (".", ".."):
        fail("filename", "must not be empty, '.' or '..'")
    elif max(len(value.encode()), len(normalized.encode())) > MAX_FILENAME_BYTES:
        fail("filename", f"must be at most {MAX_FILENAME_BYTES} bytes in UTF-8 (also as NFKC)")
    elif any(filenames.is_invisible(ch) for ch in normalized):
        fail("filename", "must not contain control or invisible formatting characters")
    elif any(filenames.is_separator(ch) for ch in normalized):
        fail("filename", "must not contain path separators or characters that look like them")
    else:
        return normalized
    return None


def _content_type(value: Any, fail: Any) -> str | None:
    if not isinstance(value, str):
        fail("content_type", "required, a media type such as 'application/pdf'")
        return None
    parsed = mediatypes.parse(value)
    if parsed is None:
        fail("content_type", "must be a media type such as 'application/pdf'")
    return parsed


def _size(value: Any, fail: Any) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 1.0 is the integer 1 (as JSON Schema says)
    if isinstance(value, bool) or not isinstance(value, int):
        fail("size", "required, an integer number of bytes")
        return None
    if value < 1:
        fail("size", "must be at least 1 byte")
        return None
    return value


def _sha256(value: Any, fail: Any) -> str | None:
    if value is _ABSENT:
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        fail("sha256", "must be 64 hexadecimal characters (the SHA-256 of the content)")
        return None
    return value.lower()


def parse_metadata(value: Any, fail: Any) -> dict[str, str]:
    if value is _ABSENT:
        return {}
    if not isinstance(value, dict):
        fail("metadata", "must be an object of string keys to string values")
        return {}
    if len(value) > MAX_METADATA_ENTRIES:
        fail("metadata", f"must have at most {MAX_METADATA_ENTRIES} entries")
        return {}
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY or not _METADATA_KEY.fullmatch(key):
            fail(f"metadata.{key}"[:80], f"keys are 1-{MAX_METADATA_KEY} of A-Z a-z 0-9 . _ -")
        elif not isinstance(item, str):
            fail(f"metadata.{key}", "values must be strings")
        elif len(item) > MAX_METADATA_VALUE or any(unicodedata.category(ch) == "Cc" for ch in item):
            fail(
                f"metadata.{key}",
                f"values are at most {MAX_METADATA_VALUE} characters, no control characters",
            )
    if len(json.dumps(value).encode()) > MAX_METADATA_BYTES:
        fail("metadata", f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return dict(value)
