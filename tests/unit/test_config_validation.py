"""Every configuration value is checked when ``Settings`` is built: the error names the variable
and the rule, and never shows a secret."""

from __future__ import annotations

import pytest

from filepipe.config import Settings
from filepipe.errors import ConfigError

COMPOSE_ENV = {  # compose.local.yaml's x-filepipe-env, as a function sees it
    "FILEPIPE_DATABASE_URL": "postgresql://postgres:postgres@postgres:5432/filepipe",
    "FILEPIPE_REDIS_URL": "redis://redis:6379/0",
    "FILEPIPE_AMQP_URL": "amqp://guest:guest@rabbitmq:5672/%2F",
    "FILEPIPE_S3_ENDPOINT_URL": "http://minio:9000",
    "FILEPIPE_S3_PUBLIC_ENDPOINT_URL": "http://localhost:9000",
    "FILEPIPE_S3_BUCKET": "uploads",
    "FILEPIPE_S3_REGION": "us-east-1",
    "FILEPIPE_S3_ACCESS_KEY_ID": "filepipe-local",
    "FILEPIPE_S3_SECRET_ACCESS_KEY": "filepipe-local-secret",
    "FILEPIPE_S3_NOTIFY_EXCHANGE": "minio-events",
    "FILEPIPE_CURSOR_SECRET": "local-development-cursor-secret",
    "FILEPIPE_LOG_LEVEL": "INFO",
    "K_SINK": "http://broker:8090/",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
    "K_SERVICE": "presign",
    "FILEPIPE_METRICS_PORT": "9082",
}


def test_the_local_environment_is_valid() -> None:
    settings = Settings.from_env(COMPOSE_ENV)
    assert settings.s3_bucket == "uploads" and settings.service_name == "presign"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FILEPIPE_DATABASE_URL", "postgresql:///filepipe?host=/var/run/postgresql"),
        ("FILEPIPE_DATABASE_URL", "postgres://app:pw@db.example.com/filepipe?sslmode=require"),
        ("FILEPIPE_REDIS_URL", "rediss://:pw@cache.example.com:6380/1"),
        ("FILEPIPE_REDIS_URL", "unix:///run/redis/redis.sock?db=0"),
        ("FILEPIPE_AMQP_URL", "amqps://user:pw@mq.example.com:5671/vhost"),
        ("FILEPIPE_S3_ENDPOINT_URL", "https://minio.example.com"),
        ("FILEPIPE_CACHE_TTL", "0"),
        ("FILEPIPE_RECONCILE_GRACE", "0"),
        ("FILEPIPE_PUBLISH_TIMEOUT", "1e-1"),
        ("FILEPIPE_DB_POOL_MIN", "0"),
        ("FILEPIPE_METRICS_PORT", "0"),
        ("FILEPIPE_METRICS_PORT", "65535"),
        ("FILEPIPE_ALLOWED_CONTENT_TYPES", "*/*"),
        ("FILEPIPE_ALLOWED_CONTENT_TYPES", "application/vnd.openxmlformats-officedocument.x+xml"),
        ("FILEPIPE_S3_BUCKET", "my.uploads-2026"),
        ("FILEPIPE_S3_NOTIFY_EXCHANGE", "filepipe-test-abc.minio-events"),
        ("FILEPIPE_CURSOR_SECRET", "0123456789abcdef"),
        ("FILEPIPE_LOG_LEVEL", "warning"),
        ("FILEPIPE_WEBHOOK_RETRY_SCHEDULE", "0"),
        ("PORT", "1"),
        ("PORT", "65535"),
        ("FILEPIPE_MAX_REQUEST_BYTES", "1024"),
        ("FILEPIPE_MAX_REQUEST_BYTES", str(64 * 1024 * 1024)),
        ("FILEPIPE_WEBHOOK_RETRY_SCHEDULE", "0.05, 1e3, 604799.5"),
    ],
)
def test_valid_values_are_accepted(name: str, value: str) -> None:
    Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("FILEPIPE_DATABASE_URL", "mysql://db/filepipe", "scheme postgresql or postgres"),
        ("FILEPIPE_DATABASE_URL", "host=db dbname=filepipe", "scheme postgresql or postgres"),
        ("FILEPIPE_DATABASE_URL", "postgresql://db:99999/x", "out of range"),
        ("FILEPIPE_REDIS_URL", "http://cache:6379", "scheme redis or rediss or unix"),
        ("FILEPIPE_REDIS_URL", "redis://", "and a host"),
        ("FILEPIPE_REDIS_URL", "unix://", "scheme redis or rediss or unix"),
        ("FILEPIPE_AMQP_URL", "amqp:///%2F", "scheme amqp or amqps and a host"),
        ("FILEPIPE_AMQP_URL", "rabbitmq:5672", "scheme amqp or amqps"),
        ("FILEPIPE_S3_ENDPOINT_URL", "minio:9000", "scheme http or https and a host"),
        ("FILEPIPE_S3_PUBLIC_ENDPOINT_URL", "ftp://uploads.example.com", "scheme http or https"),
        ("FILEPIPE_S3_PUBLIC_ENDPOINT_URL", "https://", "and a host"),
        ("K_SINK", "broker-ingress", "scheme http or https"),
        ("K_SINK", "http://broker ingress/", "scheme http or https"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317", "scheme http or https"),
        ("FILEPIPE_PUBLISH_TIMEOUT", "0", "> 0"),
        ("FILEPIPE_PUBLISH_TIMEOUT", "inf", "not a finite number"),
        ("FILEPIPE_PUBLISH_TIMEOUT", "nan", "not a finite number"),
        ("FILEPIPE_WEBHOOK_TIMEOUT", "-1", "> 0"),
        ("FILEPIPE_LOCK_TTL", "0", "> 0"),
        ("FILEPIPE_CACHE_TTL", "-1", ">= 0"),
        ("FILEPIPE_RECONCILE_GRACE", "-0.5", ">= 0"),
        ("FILEPIPE_RECONCILE_BATCH", "0", "at least 1"),
        ("FILEPIPE_WEBHOOK_MAX_FAILURES", "0", "at least 1"),
        ("FILEPIPE_GATEWAY_QUEUE_SIZE", "0", "at least 1"),
        ("FILEPIPE_DB_POOL_MIN", "-1", "at least 0"),
        ("FILEPIPE_METRICS_PORT", "65536", "TCP port"),
        ("PORT", "0", "TCP port (1-65535)"),
        ("PORT", "65536", "TCP port (1-65535)"),
        ("PORT", "http", "not a whole number"),
        ("FILEPIPE_MAX_REQUEST_BYTES", "1023", "between 1024 (1 KiB) and 67108864 (64 MiB)"),
        ("FILEPIPE_MAX_REQUEST_BYTES", str(64 * 1024 * 1024 + 1), "between 1024"),
        ("FILEPIPE_MAX_REQUEST_BYTES", "256k", "not a whole number"),
        ("FILEPIPE_MAX_UPLOAD_BYTES", "0", "between 1 and"),
        ("FILEPIPE_MAX_UPLOAD_BYTES", str(5 * 1024**4 + 1), "5 TiB"),
        ("FILEPIPE_MULTIPART_THRESHOLD", "0", "between 1 and 5368709120 (5 GiB"),
        ("FILEPIPE_PART_SIZE", str(5 * 1024**3 + 1), "between 5242880 (5 MiB)"),
        ("FILEPIPE_MULTIPART_EXPIRES", str(30 * 86400 + 1), "30 days"),
        ("FILEPIPE_UPLOAD_URL_EXPIRES", "604801", "7 days"),
        ("FILEPIPE_DOWNLOAD_URL_EXPIRES", "0", "between 1 and 3600"),
        ("FILEPIPE_DOWNLOAD_URL_EXPIRES", "3601", "1 hour"),
        ("FILEPIPE_LOG_LEVEL", "verbose", "must be one of CRITICAL"),
        ("FILEPIPE_CURSOR_SECRET", "too-short", "at least 16 bytes"),
        ("FILEPIPE_ALLOWED_CONTENT_TYPES", ",", "at least one type"),
        ("FILEPIPE_ALLOWED_CONTENT_TYPES", "application/pdf,pdf", "type/subtype"),
        ("FILEPIPE_ALLOWED_CONTENT_TYPES", "text/plain; charset=utf-8", "no parameters"),
        ("FILEPIPE_ALLOWED_CONTENT_TYPES", "*/plain", "type/subtype"),
        ("FILEPIPE_ALLOWED_CONTENT_TYPES", "text/", "type/subtype"),
        ("FILEPIPE_S3_BUCKET", "Uploads", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "up", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "my_uploads", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "-uploads", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "my..uploads", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "my.-uploads", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "192.168.1.10", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "xn--uploads", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "uploads-s3alias", "S3 bucket name"),
        ("FILEPIPE_S3_BUCKET", "u" * 64, "S3 bucket name"),
        ("FILEPIPE_S3_REGION", "us east 1", "letters, digits"),
        ("FILEPIPE_S3_NOTIFY_EXCHANGE", "minio events", "AMQP exchange name"),
        ("FILEPIPE_S3_ACCESS_KEY_ID", "AKID", "must be set together"),
        ("FILEPIPE_WEBHOOK_RETRY_SCHEDULE", ",", "at least one delay"),
        ("FILEPIPE_WEBHOOK_RETRY_SCHEDULE", "1,5,soon", "'soon' is not a number"),
        ("FILEPIPE_WEBHOOK_RETRY_SCHEDULE", "1,-5", "between 0 and 7 days"),
        ("FILEPIPE_WEBHOOK_RETRY_SCHEDULE", "1,604800", "between 0 and 7 days"),
        ("FILEPIPE_WEBHOOK_RETRY_SCHEDULE", "1,inf", "not a finite number"),
        ("FILEPIPE_RECONCILE_BATCH", "1e3", "not a whole number"),
        ("FILEPIPE_RECONCILE_BATCH", "2.5", "not a whole number"),
        ("FILEPIPE_RECONCILE_BATCH", "1_000", "not a whole number"),
        ("FILEPIPE_RECONCILE_BATCH", "0x10", "not a whole number"),
    ],
)
def test_invalid_values_name_the_variable_and_the_rule(name: str, value: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(name) and rule in str(caught.value)


def test_port_and_request_limit_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"PORT": "8080", "FILEPIPE_MAX_REQUEST_BYTES": "1048576"})
    assert settings.port == 8080 and settings.max_request_bytes == 1024 * 1024
    defaults = Settings.from_env({})
    assert defaults.port is None and defaults.max_request_bytes == 256 * 1024


def test_metrics_port_must_differ_from_the_server_port() -> None:
    with pytest.raises(ConfigError, match=r"^FILEPIPE_METRICS_PORT must differ from PORT"):
        Settings.from_env({"PORT": "8080", "FILEPIPE_METRICS_PORT": "8080"})
    assert Settings.from_env({"PORT": "8080", "FILEPIPE_METRICS_PORT": "9080"}).port == 8080


def test_the_pool_minimum_must_not_exceed_the_maximum() -> None:
    with pytest.raises(ConfigError, match=r"^FILEPIPE_DB_POOL_MAX .* FILEPIPE_DB_POOL_MIN \(11\)"):
        Settings.from_env({"FILEPIPE_DB_POOL_MIN": "11", "FILEPIPE_DB_POOL_MAX": "10"})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"db_pool_max": 2.5}, "FILEPIPE_DB_POOL_MAX must be a whole number, not float 2.5"),
        ({"reconcile_batch": True}, "FILEPIPE_RECONCILE_BATCH must be a whole number, not bool"),
        ({"webhook_allow_loopback": "yes"}, "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK must be a boolean"),
        ({"publish_timeout": "5"}, "FILEPIPE_PUBLISH_TIMEOUT must be a number, not str"),
        ({"allowed_content_types": ["text/plain"]}, "must be a tuple of strings, not list"),
        ({"webhook_retry_schedule": ("1", "5")}, "RETRY_SCHEDULE must be a tuple of numbers"),
        ({"webhook_retry_schedule": (1.0, float("nan"))}, "between 0 and 7 days"),
        ({"k_sink": ""}, "K_SINK=''"),
        ({"service_name": ""}, "K_SERVICE must be non-empty"),
        ({"migrations_dir": ""}, "FILEPIPE_MIGRATIONS_DIR must not be empty"),
        ({"s3_access_key_id": "AKID", "s3_secret_access_key": ""}, "must not be empty"),
    ],
)
def test_explicit_arguments_are_checked_too(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        Settings(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "env",
    [
        {"FILEPIPE_DATABASE_URL": "mysql://app:pg-s3cret@db/x"},
        {"FILEPIPE_AMQP_URL": "amqp://guest:mq-s3cret@mq:99999/%2F"},
        {"FILEPIPE_CURSOR_SECRET": "short-s3cret"},
        {"FILEPIPE_S3_ACCESS_KEY_ID": "AKID s3cret"},
    ],
)
def test_errors_never_show_a_secret(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert "s3cret" not in str(caught.value)


def test_names_and_types_are_normalized() -> None:
    settings = Settings(log_level="debug", allowed_content_types=("Image/PNG", "TEXT/*"))
    assert settings.log_level == "DEBUG"
    assert settings.allowed_content_types == ("image/png", "text/*")
