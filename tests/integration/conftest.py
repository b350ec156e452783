"""Fixtures of the integration tests: the presign function of a pipeline (each module defines its
own ``pipe``, see support.pipeline), an API key, a Redis client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from redis import Redis

from filepipe import auth
from filepipe.config import Settings
from tests.support.pipeline import Pipeline, presign_client


@pytest.fixture
def presign(
    pipe: Pipeline, function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> FlaskClient:
    """The presign function, publishing to the module's pipeline."""
    return presign_client(pipe, monkeypatch)


@pytest.fixture
def redis(settings: Settings) -> Iterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    client.close()


@pytest.fixture
def api_key(conn: psycopg.Connection[dict[str, Any]]) -> str:
    return auth.create_key(conn, "pipeline-tenant")
