"""Fixtures shared by the emulator tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from filepipe import multipart_storage
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


@pytest.fixture
def upload(admin: Any, settings: Settings) -> Iterator[tuple[str, str]]:
    """An open multipart upload's key and id; aborted afterwards."""
    key = f"parts/{uuid.uuid4()}/big.pdf"
    upload_id = multipart_storage.start(
        admin, bucket=settings.s3_bucket, key=key, content_type="application/pdf"
    )
    yield key, upload_id
    multipart_storage.abort(admin, bucket=settings.s3_bucket, key=key, upload_id=upload_id)
