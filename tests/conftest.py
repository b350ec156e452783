"""Fixtures for the real services: a throw-away PostgreSQL database, the local S3 server,
RabbitMQ names of this session's own, and an environment that points functions at them."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg.rows import dict_row

from filepipe import db, metrics, runtime
from filepipe.config import Settings
from tests.support.inbox import Inbox, inbox
from tests.support.processes import running
from tests.support.receiver import Receiver, receiving
from tests.support.stack import LOCAL_ORIGINS
from tests.support.waiting import free_port

ADMIN_URL = os.environ.get(
    "FILEPIPE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("FILEPIPE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
SESSION = uuid.uuid4().hex[:10]
WEBHOOK_SECRET_KEY = Fernet.generate_key().decode()
"""This session's key for webhook secrets at rest (``make up`` has one in local/filepipe.env)."""
UPLOAD_TOKEN_SECRET = f"test-upload-token-secret-{uuid.uuid4().hex}"
"""This session's key of upload tokens (``make up`` has one in local/filepipe.env)."""


@contextmanager
def throwaway_database(name: str) -> Iterator[str]:
    """An empty database called ``name`` (its URL), dropped afterwards."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    with throwaway_database(f"filepipe_test_{SESSION}") as url:
        db.migrate(url)
        yield url


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database of this test alone, without any migration applied."""
    with throwaway_database(f"filepipe_empty_{uuid.uuid4().hex[:10]}") as url:
        yield url


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as connection:
        yield connection


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    local_state = tmp_path_factory.mktemp("s3-state")
    return {
        # the local S3's objects and queued notifications: this session's, not the worktree's
        "FILEPIPE_S3_DATA_DIR": str(local_state / "data"),
        "FILEPIPE_S3_QUEUE_DIR": str(local_state / "queue"),
        "FILEPIPE_S3_BUCKET": "uploads",
        "FILEPIPE_S3_REGION": "us-east-1",
        "FILEPIPE_S3_ACCESS_KEY_ID": "filepipe-test",
        "FILEPIPE_S3_SECRET_ACCESS_KEY": "filepipe-test-secret",
        "FILEPIPE_AMQP_URL": AMQP_URL,
        "FILEPIPE_S3_NOTIFY_EXCHANGE": f"filepipe-test-{SESSION}.minio-events",
    }


@pytest.fixture(scope="session")
def s3_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's S3 server writes its output: a JSON log line per request."""
    return tmp_path_factory.mktemp("s3") / "s3.log"


@pytest.fixture(scope="session")
def s3_server(s3_env: dict[str, str], s3_log: Path) -> Iterator[str]:
    """The local S3 server (moto + MinIO-format notifications) as a real process; pages on
    ``LOCAL_ORIGINS`` may use it (CORS)."""
    port = free_port()
    args = ["-m", "local.s3_server", "--port", str(port)]
    env = {**s3_env, "FILEPIPE_ALLOWED_ORIGINS": LOCAL_ORIGINS}
    with running(args, port=port, env=env, output=s3_log):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def service_env(database_url: str, s3_server: str, s3_env: dict[str, str]) -> dict[str, str]:
    """The environment a function process gets under ``make up``, pointed at the test services."""
    return {
        **s3_env,
        "FILEPIPE_DATABASE_URL": database_url,
        "FILEPIPE_S3_ENDPOINT_URL": s3_server,
        "FILEPIPE_DB_POOL_MAX": "4",
        "FILEPIPE_PUBLISH_TIMEOUT": "2",
        # Webhook secrets encrypted as under make up; receivers on any port (the port rule's own
        # tests set FILEPIPE_WEBHOOK_PORTS themselves).
        "FILEPIPE_WEBHOOK_SECRET_KEYS": WEBHOOK_SECRET_KEY,
        "FILEPIPE_UPLOAD_TOKEN_SECRETS": UPLOAD_TOKEN_SECRET,
        "FILEPIPE_WEBHOOK_PORTS": "1-65535",
        # Tests create many uploads fast, some tenants across a whole session; the quotas' own
        # tests set small limits.
        "FILEPIPE_UPLOAD_RATE": "10000",
        "FILEPIPE_UPLOAD_BURST": "100000",
    }


@pytest.fixture
def function_env(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """``service_env`` set in this process; functions build their runtime from it on first use."""
    for name in [n for n in os.environ if n.startswith("FILEPIPE_") or n == "K_SINK"]:
        monkeypatch.delenv(name)
    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield service_env
    runtime.reset()


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    return Settings.from_env(service_env)


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """Handlers a test adds to the root logger don't leak into the next test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _isolated_metrics() -> Iterator[None]:
    """Each test counts from zero: fresh metrics, and no metrics server left running."""
    metrics.reset()
    yield
    metrics.reset()


@pytest.fixture
def event_receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture
def closed_port_url() -> str:
    """A URL on which nothing listens: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}/"


@pytest.fixture
def notifications(s3_env: dict[str, str]) -> Iterator[Inbox]:
    """Notifications the S3 server publishes from now on (``notifications.next()``)."""
    with inbox(s3_env["FILEPIPE_AMQP_URL"], s3_env["FILEPIPE_S3_NOTIFY_EXCHANGE"]) as box:
        yield box
