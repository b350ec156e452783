"""The notify function's two targets with fast retries, a receiver, and a fresh tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from filepipe import auth, runtime
from tests.support.functions import function_app
from tests.support.receiver import Receiver
from tests.support.webhooks import WEBHOOK_ENV, Conn


@pytest.fixture
def env(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in WEBHOOK_ENV.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    return {**function_env, **WEBHOOK_ENV}


@pytest.fixture
def api(env: dict[str, str]) -> FlaskClient:
    return function_app("notify", "webhooks").test_client()


@pytest.fixture
def notify(env: dict[str, str]) -> FlaskClient:
    return function_app("notify", "notify").test_client()


@pytest.fixture
def tenant(conn: Conn) -> tuple[str, str]:
    """A fresh tenant and its API key."""
    name = f"wh-{uuid.uuid4().hex[:8]}"
    return name, auth.create_key(conn, name)


@pytest.fixture
def receiver(event_receiver: Receiver) -> Iterator[Receiver]:
    yield event_receiver
