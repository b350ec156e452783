"""Each environment variable is named once, in ``filepipe.config``, and read only there."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import filepipe
from filepipe import config
from filepipe.config import Settings

PACKAGE = Path(filepipe.__file__).parent

ENV_READERS_ELSEWHERE = {
    "metrics.py": "PROMETHEUS_MULTIPROC_DIR, which prometheus-client itself reads",
}
"""Modules besides config.py that still touch ``os.environ``, and why."""


def env_constants() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(config).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", value)
    }


def test_every_field_has_one_variable_and_every_variable_a_field() -> None:
    names = config._ENV_NAMES
    assert set(names) == {spec.name for spec in dataclasses.fields(Settings)}
    assert len(set(names.values())) == len(names)
    assert set(env_constants().values()) == set(names.values())


def test_every_variable_is_read_and_parsed_into_its_field() -> None:
    env = {
        "FILEPIPE_DATABASE_URL": "postgresql://app@db/x",
        "FILEPIPE_DB_POOL_MIN": "2",
        "FILEPIPE_DB_POOL_MAX": "3",
        "FILEPIPE_REDIS_URL": "redis://cache/1",
        "FILEPIPE_AMQP_URL": "amqp://mq/%2F",
        "FILEPIPE_S3_ENDPOINT_URL": "http://s3:9000",
        "FILEPIPE_S3_PUBLIC_ENDPOINT_URL": "https://s3.example.com",
        "FILEPIPE_S3_REGION": "eu-west-1",
        "FILEPIPE_S3_BUCKET": "files",
        "FILEPIPE_S3_ACCESS_KEY_ID": "AKID",
        "FILEPIPE_S3_SECRET_ACCESS_KEY": "secret",
        "FILEPIPE_S3_NOTIFY_EXCHANGE": "s3-events",
        "K_SINK": "http://broker",
        "FILEPIPE_PUBLISH_TIMEOUT": "2.5",
        "FILEPIPE_MAX_UPLOAD_BYTES": "4096",
        "FILEPIPE_ALLOWED_CONTENT_TYPES": "text/plain",
        "FILEPIPE_UPLOAD_URL_EXPIRES": "60",
        "FILEPIPE_DOWNLOAD_URL_EXPIRES": "30",
        "FILEPIPE_MULTIPART_THRESHOLD": "1000",
        "FILEPIPE_PART_SIZE": str(8 * 1024**2),
        "FILEPIPE_MULTIPART_EXPIRES": "3600",
        "FILEPIPE_MIGRATIONS_DIR": "/srv/migrations",
        "FILEPIPE_LOG_LEVEL": "DEBUG",
        "FILEPIPE_LOCK_TTL": "7",
        "FILEPIPE_RECONCILE_GRACE": "8",
        "FILEPIPE_RECONCILE_BATCH": "9",
        "FILEPIPE_STUCK_AFTER": "14",
        "FILEPIPE_PROCESS_GIVE_UP": "15",
        "FILEPIPE_PROCESS_MAX_DEAD_LETTERS": "16",
        "FILEPIPE_MISSING_CHECK_BATCH": "17",
        "FILEPIPE_OBJECT_RETENTION": "18",
        "FILEPIPE_HISTORY_RETENTION": "19",
        "FILEPIPE_UPLOAD_RATE": "2.5",
        "FILEPIPE_UPLOAD_BURST": "21",
        "FILEPIPE_MAX_PENDING_FILES": "22",
        "FILEPIPE_MAX_PENDING_BYTES": "23",
        "FILEPIPE_DB_CHECKOUT_TIMEOUT": "0.5",
        "FILEPIPE_CACHE_TTL": "10",
        "FILEPIPE_CURSOR_SECRET": "0123456789abcdef",
        "FILEPIPE_EVENT_TOKEN": "event-token-0123456789",
        "FILEPIPE_WEBHOOK_RETRY_SCHEDULE": "1,2",
        "FILEPIPE_WEBHOOK_TIMEOUT": "11",
        "FILEPIPE_WEBHOOK_MAX_FAILURES": "12",
        "FILEPIPE_WEBHOOK_ENDPOINT_CONCURRENCY": "4",
        "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "on",
        "FILEPIPE_WEBHOOK_PORTS": "443,8443",
        "FILEPIPE_WEBHOOK_SECRET_KEYS": "A" * 43 + "=",
        "FILEPIPE_UPLOAD_TOKEN_SECRETS": "u" * 32,
        "FILEPIPE_REALTIME_DEDUPE_TTL": "24",
        "FILEPIPE_GATEWAY_QUEUE_SIZE": "13",
        "FILEPIPE_GATEWAY_MAX_CONNECTIONS_PER_TENANT": "3",
        "FILEPIPE_ALLOWED_ORIGINS": "https://app.example.com",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318",
        "K_SERVICE": "query",
        "FILEPIPE_METRICS_PORT": "9083",
        "PORT": "8083",
        "FILEPIPE_MAX_REQUEST_BYTES": "2048",
    }
    assert set(env) == set(config._ENV_NAMES.values())
    settings = Settings.from_env(env)
    assert Settings.from_env({}) == Settings()
    for spec in dataclasses.fields(Settings):
        assert getattr(settings, spec.name) != getattr(Settings(), spec.name), spec.name


def test_no_other_module_reads_or_spells_an_environment_variable() -> None:
    names = set(config._ENV_NAMES.values())
    readers, spellings = set(), set()
    for path in PACKAGE.rglob("*.py"):
        module = path.relative_to(PACKAGE).as_posix()
        if module == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), module)):
            reads_os = (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(alias.name in ("environ", "getenv") for alias in node.names)
            )
            if reads_os:
                readers.add(module)
            if isinstance(node, ast.Constant) and node.value in names:
                spellings.add(f"{module}: {node.value}")
    assert readers <= set(ENV_READERS_ELSEWHERE)
    assert spellings == set()
