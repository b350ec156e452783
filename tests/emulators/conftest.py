"""Fixtures shared by the emulator tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.signing import clock_shifter


@pytest.fixture
def signing_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``signing_clock(seconds)`` moves the time botocore signs at."""
    return clock_shifter(monkeypatch)
