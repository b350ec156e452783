"""When to try a request again, and how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers worth another try: rate limited, or the server (or what is in front of it) failing."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt ``n`` (0-based) waits up to
    ``base * 2**n`` seconds, at most ``cap``; ``retries`` more tries after the first."""

    retries: int = 3
    base: float = 0.25
    cap: float = 10.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry ``attempt``; ``Retry-After`` wins, up to ``cap``."""
        wanted = parse_retry_after(retry_after)
        if wanted is not None:
            return min(wanted, self.cap)
        ceiling = min(self.cap, self.base * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) in seconds from now; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
