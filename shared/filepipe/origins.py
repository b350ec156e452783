"""Which browser origins may call filepipe (``FILEPIPE_ALLOWED_ORIGINS``): one matcher for the
HTTP functions' CORS (``filepipe.web.cors``), the WebSocket gateway's ``Origin`` check and the
local S3 server's CORS (``local.s3_cors``).

An entry is one of:

- ``*``: any origin;
- an origin, ``scheme://host[:port]`` (RFC 6454 section 6.2, as browsers send it in ``Origin``);
- a pattern of one: ``*`` as the port (``http://localhost:*``: any port, or none) and/or as the
  leftmost labels of the host (``https://*.example.com``: any subdomain, at any depth, but not
  ``https://example.com`` itself).

Matching ignores case. An ``Origin`` of ``null`` (sandboxed frames, ``file:`` pages) matches
only ``*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ANY = "*"
_ENTRY = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<subdomains>\*\.)?"
    r"(?P<host>[a-z0-9_~!$&'()+,;=%-]+(?:\.[a-z0-9_~!$&'()+,;=%-]+)*|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>\*|[0-9]{1,5}))?",
    re.IGNORECASE,
)
_LABELS = r"(?:[a-z0-9_-]+\.)+"
_ANY_PORT = r"(?::[0-9]{1,5})?"


def is_entry(value: str) -> bool:
    """Whether ``value`` is ``*``, an origin or a pattern of one (see the module docstring)."""
    return value == ANY or _ENTRY.fullmatch(value) is not None


class AllowedOrigins:
    """The origins ``entries`` allow; ``allows(origin)`` answers for one ``Origin`` header."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = tuple(entries)
        invalid = [entry for entry in self.entries if not is_entry(entry)]
        if invalid:
            raise ValueError(f"not an origin or origin pattern: {invalid[0]!r}")
        self._any = ANY in self.entries
        alternatives = [_pattern(entry) for entry in self.entries if entry != ANY]
        self._match = re.compile("|".join(alternatives) or r"(?!)", re.IGNORECASE).fullmatch

    def allows(self, origin: str) -> bool:
        return self._any or self._match(origin.strip()) is not None

    def __bool__(self) -> bool:
        return bool(self.entries)


def _pattern(entry: str) -> str:
    parts = _ENTRY.fullmatch(entry)
    assert parts is not None  # checked by is_entry
    scheme, host, port = parts["scheme"], parts["host"], parts["port"]
    subdomains = _LABELS if parts["subdomains"] else ""
    port_pattern = _ANY_PORT if port == ANY else (f":{port}" if port else "")
    return f"(?:{re.escape(scheme)}://{subdomains}{re.escape(host)}{port_pattern})"
