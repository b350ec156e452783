"""Helpers for tests of signed S3 requests: altering a presigned URL, moving botocore's clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import botocore.auth
import botocore.signers
import pytest


def with_query(url: str, **changes: str) -> str:
    """``url`` with query parameters set to ``changes`` (the rest kept as they are)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def clock_shifter(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``shift(seconds)`` moves the time botocore signs at (URLs, headers, POST policies)."""
    real: Any = getattr(botocore.auth, "get_current_datetime")  # noqa: B009 (untyped)

    def shift(seconds: float) -> None:
        def shifted(*args: Any, **kwargs: Any) -> dt.datetime:
            now: dt.datetime = real(*args, **kwargs)
            return now + dt.timedelta(seconds=seconds)

        monkeypatch.setattr(botocore.auth, "get_current_datetime", shifted)
        monkeypatch.setattr(botocore.signers, "get_current_datetime", shifted)

    return shift
