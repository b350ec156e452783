"""Fixtures of the integration tests: the presign function of a pipeline (each module defines its
own ``pipe``, see support.pipeline), one whose broker is down, an API key, fresh tenants, a
Redis client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from redis import Redis

from filepipe import auth
from filepipe.config import Settings
from tests.support.files import tenants
from tests.support.functions import function_app
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
def make_tenant(
    conn: psycopg.Connection[dict[str, Any]],
) -> Iterator[Callable[[], tuple[str, str]]]:
    """Makes fresh tenants (name, API key), their files deleted after the test."""
    with tenants(conn) as make:
        yield make


@pytest.fixture
def presign_broker_down(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, closed_port_url: str
) -> FlaskClient:
    """The presign function with its sink (``K_SINK``, ``closed_port_url``) refusing every
    connection: the events it writes stay unpublished until someone retries them."""
    monkeypatch.setenv("K_SINK", closed_port_url)
    return function_app("presign").test_client()


@pytest.fixture
def api_key(conn: psycopg.Connection[dict[str, Any]]) -> str:
    return auth.create_key(conn, "pipeline-tenant")
