"""Validation of the query function's inputs: ``GET /files`` parameters and file ids (pure).

Anything wrong is a 400 problem listing every parameter at fault in ``errors``; a parameter the
endpoint does not know, or one given twice, is wrong too. ``limit`` is 1-200 (default 50): a
larger one is refused rather than silently clamped, so a client never mistakes a short page for
the end of the list.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from werkzeug.datastructures import MultiDict

from filepipe.errors import BadRequest
from filepipe.file_queries import FileFilters
from filepipe.transitions import EXPIRED, FAILED, PENDING, PROCESSED, PROCESSING, REJECTED, UPLOADED

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_FILENAME_BYTES = 255
STATUSES = (PENDING, UPLOADED, PROCESSING, PROCESSED, REJECTED, FAILED, EXPIRED)

_PARAMETERS = frozenset(
    {
        "status",
        "content_type",
        "filename",
        "sha256",
        "created_after",
        "created_before",
        "limit",
        "cursor",
    }
)
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - RFC 9110 token
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_DECIMAL = re.compile(r"[0-9]{1,4}")
# A '+' of a UTC offset that was not percent-encoded arrives as a space: "...T10:00:00 02:00".
_UNENCODED_OFFSET = re.compile(r"(T[0-9:.]+) ([0-9]{2}:?[0-9]{2})$")

Fail = Callable[[str, str], None]


@dataclass(frozen=True)
class ListQuery:
    filters: FileFilters
    limit: int
    cursor: str | None


def parse_list_query(args: MultiDict[str, str]) -> ListQuery:
    """The validated parameters of ``GET /files``, or ``BadRequest`` listing all that is wrong."""
    errors: list[dict[str, str]] = []

    def fail(name: str, message: str) -> None:
        errors.append({"field": name, "message": message})

    for name in sorted(set(args)):
        if name not in _PARAMETERS:
            fail(name[:80], "unknown parameter")
        elif len(args.getlist(name)) > 1:
            fail(name, "given more than once")
        elif not args[name]:
            fail(name, "must not be empty")
    if errors:
        raise BadRequest("the query parameters are invalid", errors=errors)
    created_after = _timestamp("created_after", args.get("created_after"), fail)
    created_before = _timestamp("created_before", args.get("created_before"), fail)
    if created_after and created_before and created_after >= created_before:
        fail("created_after", "must be earlier than created_before")
    filters = FileFilters(
        status=_status(args.get("status"), fail),
        content_type=_content_type(args.get("content_type"), fail),
        filename=_filename(args.get("filename"), fail),
        sha256=_sha256(args.get("sha256"), fail),
        created_after=created_after,
        created_before=created_before,
    )
    limit = _limit(args.get("limit"), fail)
    if errors:
        raise BadRequest("the query parameters are invalid", errors=errors)
    return ListQuery(filters, limit, args.get("cursor"))


def refuse_parameters(args: MultiDict[str, str]) -> None:
    """A 400 naming every query parameter, for routes that take none."""
    if args:
        raise BadRequest(
            "this route takes no query parameters",
            errors=[{"field": name[:80], "message": "unknown parameter"} for name in sorted(args)],
        )


def parse_file_id(value: str) -> uuid.UUID:
    """A file id from the path: a UUID in its canonical 8-4-4-4-12 form, or a 400 problem."""
    try:
        file_id = uuid.UUID(value)
    except ValueError:
        file_id = None
    if file_id is None or str(file_id) != value.lower():
        raise BadRequest(
            "the file id must be a UUID", errors=[{"field": "id", "message": "not a UUID"}]
        )
    return file_id


def _status(value: str | None, fail: Fail) -> str | None:
    if value is None:
        return None
    if value.upper() not in STATUSES:
        fail("status", f"must be one of {', '.join(STATUSES)}")
        return None
    return value.upper()


def _content_type(value: str | None, fail: Fail) -> str | None:
    if value is None:
        return None
    if len(value) > 255 or not _MEDIA_TYPE.fullmatch(value):
        fail("content_type", "must be a media type without parameters, such as 'text/csv'")
        return None
    return value.lower()


def _filename(value: str | None, fail: Fail) -> str | None:
    if value is None:
        return None
    if len(value.encode()) > MAX_FILENAME_BYTES:
        fail("filename", f"must be at most {MAX_FILENAME_BYTES} bytes in UTF-8")
        return None
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        fail("filename", "must not contain control characters")
        return None
    return value


def _sha256(value: str | None, fail: Fail) -> str | None:
    if value is None:
        return None
    if not _SHA256.fullmatch(value):
        fail("sha256", "must be 64 hexadecimal characters")
        return None
    return value.lower()


def _timestamp(name: str, value: str | None, fail: Fail) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(_UNENCODED_OFFSET.sub(r"\1+\2", value.strip()))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        fail(name, "must be an RFC 3339 date-time with an offset, such as 2026-01-31T09:30:00Z")
        return None
    return parsed


def _limit(value: str | None, fail: Fail) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not _DECIMAL.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        fail("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        return DEFAULT_LIMIT
    return int(value)
