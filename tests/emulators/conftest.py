"""Fixtures shared by the emulator tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from filepipe.config import Settings
from filepipe.storage import create_s3_client
from tests.support.signing import clock_shifter


@pytest.fixture
def signing_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``signing_clock(seconds)`` moves the time botocore signs at."""
    return clock_shifter(monkeypatch)


@pytest.fixture(scope="module")
def settings(s3_server: str, s3_env: dict[str, str]) -> Settings:
    """The S3 settings of the functions (no database: these tests need none)."""
    return Settings.from_env({**s3_env, "FILEPIPE_S3_ENDPOINT_URL": s3_server})


@pytest.fixture(scope="module")
def admin(settings: Settings) -> Any:
    """A client signing with the server's key pair, as the functions do."""
    return create_s3_client(settings)


@pytest.fixture(scope="module")
def presigner(settings: Settings) -> Any:
    return create_s3_client(settings, public=True)
