"""Validation of ``GET /files`` parameters (pure).

The HTTP edge has already refused unknown, repeated and empty parameters; anything else wrong is
a 400 problem listing every parameter at fault in ``errors``. ``limit`` is 1-200 (default 50): a
larger one is refused rather than silently clamped, so a client never mistakes a short page for
the end of the list.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from werkzeug.datastructures import MultiDict

from filepipe import mediatypes
from filepipe.errors import BadRequest
from filepipe.files.model import Status
from filepipe.files.store import FileFilters
from filepipe.web.routing import parse_bounded_int

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_FILENAME_BYTES = 255
PARAMETERS = frozenset(
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
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# RFC 3339 date-time (section 5.6), upper-case T and Z as the API documents them. A '+' of an
# offset that was not percent-encoded arrives as a space ("...T10:00:00 02:00"): taken as '+'.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|(?P<sign>[+ -])[0-9]{2}:[0-9]{2})"
)

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


def _status(value: str | None, fail: Fail) -> Status | None:
    if value is None:
        return None
    if value.upper() not in Status.__members__:
        fail("status", f"must be one of {', '.join(Status)}")
        return None
    return Status(value.upper())


def _content_type(value: str | None, fail: Fail) -> str | None:
    if value is None:
        return None
    if len(value) > mediatypes.MAX_LENGTH or not mediatypes.ESSENCE.fullmatch(value):
        fail("content_type", "must be a media type without parameters, such as 'text/csv'")
        return None
    return value.lower()


def _filename(value: str | None, fail: Fail) -> str | None:
    if value is None:
        return None
    if len(value.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        fail("filename", f"must be at most {MAX_FILENAME_BYTES} bytes in UTF-8")
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        fail("filename", "must not contain control characters or lone surrogates")
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
    match = _RFC3339.fullmatch(value)
    parsed = None
    if match is not None:
        text = (
            value
            if match["sign"] != " "
            else f"{value[: match.start('sign')]}+{value[match.end('sign') :]}"
        )
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:  # out of range: month 13, second 60...
            parsed = None
    if parsed is None:
        fail(name, "must be an RFC 3339 date-time with an offset, such as 2026-01-31T09:30:00Z")
        return None
    return parsed


def _limit(value: str | None, fail: Fail) -> int:
    if value is None:
        return DEFAULT_LIMIT
    limit = parse_bounded_int(value, low=1, high=MAX_LIMIT)
    if limit is None:
        fail("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        return DEFAULT_LIMIT
    return limit
