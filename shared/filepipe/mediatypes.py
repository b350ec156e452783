"""Media types (RFC 9110 §8.3.1): parsing, essences, allow-lists and the aliases we normalise.

A media type is ``type/subtype`` (tokens) followed by ``; name=value`` parameters whose value is
a token or a quoted string, with spaces or tabs only around the ``;``; anything else (other white
space, control characters, NUL) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_LENGTH = 255
TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - the RFC 9110 token grammar
_QUOTED = r'"(?:[\t\x20-\x21\x23-\x5b\x5d-\x7e]|\\[\t\x20-\x7e])*"'
"""A quoted string of printable ASCII (no obs-text: the value ends up in a signed HTTP header)."""
_PARAMETER = rf"[ \t]*;[ \t]*{TOKEN}=(?:{TOKEN}|{_QUOTED})"
_MEDIA_TYPE = re.compile(rf"(?P<essence>{TOKEN}/{TOKEN})(?P<params>(?:{_PARAMETER})*)")
ESSENCE = re.compile(rf"{TOKEN}/{TOKEN}")

ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-gzip": "application/gzip",
    "application/x-pdf": "application/pdf",
    "application/x-zip-compressed": "application/zip",
    "text/xml": "application/xml",
}


def parse(value: str) -> str | None:
    """``value`` with its essence lower-cased, or ``None`` if it is not a valid media type."""
    if len(value) > MAX_LENGTH:
        return None
    match = _MEDIA_TYPE.fullmatch(value)
    if match is None:
        return None
    return match["essence"].lower() + match["params"]


def essence(content_type: str) -> str:
    """``type/subtype`` of a media type, lower-cased, without parameters."""
    return content_type.split(";", 1)[0].strip().lower()


def normalise(content_type: str) -> str:
    """The essence, with common aliases replaced by their registered names."""
    plain = essence(content_type)
    return ALIASES.get(plain, plain)


def allowed(content_type: str, allow_list: Sequence[str]) -> bool:
    """Whether the essence matches an allow-list entry (``type/subtype``, ``type/*`` or ``*/*``)."""
    plain = essence(content_type)
    major = plain.split("/", 1)[0]
    return any(entry in (plain, f"{major}/*", "*/*") for entry in allow_list)
