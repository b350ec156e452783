"""Fixtures of the pipeline tests: each module defines its own ``pipe`` (see support.pipeline)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from filepipe import auth
from tests.support.pipeline import Pipeline, presign_client


@pytest.fixture
def presign(
    pipe: Pipeline, function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> FlaskClient:
    """The presign function, publishing to the module's pipeline."""
    return presign_client(pipe, monkeypatch)


@pytest.fixture
def api_key(conn: psycopg.Connection[dict[str, Any]]) -> str:
    return auth.create_key(conn, "pipeline-tenant")
