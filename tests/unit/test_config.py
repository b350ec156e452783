from __future__ import annotations

import time

import pytest

from filepipe.config import DEFAULT_ALLOWED_CONTENT_TYPES, Settings, redact_url
from filepipe.errors import ConfigError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.upload_url_expires == 900
    assert settings.download_url_expires == 300
    assert settings.allowed_content_types == DEFAULT_ALLOWED_CONTENT_TYPES
    assert settings.k_sink is None


def test_environment_is_parsed_by_type() -> None:
    settings = Settings.from_env(
        {
            "FILEPIPE_MAX_UPLOAD_BYTES": "2048",
            "FILEPIPE_ALLOWED_CONTENT_TYPES": "Image/PNG, text/* ,",
            "FILEPIPE_PUBLISH_TIMEOUT": "0.5",
            "K_SINK": "http://broker",
            "FILEPIPE_S3_ENDPOINT_URL": "  ",
            "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "true",
            "FILEPIPE_WEBHOOK_RETRY_SCHEDULE": "0.1, 0.2",
        }
    )
    assert settings.webhook_allow_loopback is True
    assert settings.webhook_retry_schedule == (0.1, 0.2)
    assert settings.max_upload_bytes == 2048
    assert settings.allowed_content_types == ("image/png", "text/*")
    assert settings.publish_timeout == 0.5
    assert settings.k_sink == "http://broker"
    assert settings.s3_endpoint_url is None


@pytest.mark.parametrize(
    "env",
    [
        {"FILEPIPE_MAX_UPLOAD_BYTES": "lots"},
        {"FILEPIPE_MAX_UPLOAD_BYTES": str(5 * 1024**4 + 1)},
        {"FILEPIPE_PART_SIZE": str(5 * 1024**2 - 1)},
        {"FILEPIPE_MULTIPART_THRESHOLD": str(5 * 1024**3 + 1)},
        {"FILEPIPE_MULTIPART_EXPIRES": "59"},
        {"FILEPIPE_UPLOAD_URL_EXPIRES": "0"},
        {"FILEPIPE_ALLOWED_CONTENT_TYPES": ","},
        {"FILEPIPE_DB_POOL_MAX": "0"},
        {"FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "maybe"},
    ],
)
def test_bad_values_are_config_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_secret_is_not_in_repr() -> None:
    settings = Settings(s3_access_key_id="AKID", s3_secret_access_key="hunter2")
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://app:s3cret@db/x", "postgresql://app:***@db/x"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("amqps://guest:s3cret@mq:5671/%2F", "amqps://guest:***@mq:5671/%2F"),
        ("postgresql://app:p@ss:w0rd@db:5432/x", "postgresql://app:***@db:5432/x"),
        (
            "postgresql://db/x?sslmode=require&password=s3cret",
            "postgresql://db/x?sslmode=require&password=***",
        ),
        ("postgresql://app@db/x", "postgresql://app@db/x"),
        ("http://host:8080/a@b", "http://host:8080/a@b"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_masks_only_the_password(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_repr_shows_no_password_or_secret() -> None:
    settings = Settings(
        database_url="postgresql://app:pg-s3cret@db/x",
        redis_url="rediss://default:redis-s3cret@cache:6380/0",
        amqp_url="amqp://guest:amqp-s3cret@mq:5672/%2F",
        s3_access_key_id="AKID",
        s3_secret_access_key="s3-s3cret",
        cursor_secret="cursor-s3cret-0123456789",
    )
    shown = repr(settings)
    for secret in ("pg-s3cret", "redis-s3cret", "amqp-s3cret", "s3-s3cret", "cursor-s3cret"):
        assert secret not in shown
    assert "postgresql://app:***@db/x" in shown and "cursor_secret='***'" in shown
    assert "s3_access_key_id='AKID'" in shown and "k_sink=None" in shown  # the others are shown


def test_redact_url_takes_linear_time_on_long_dotted_text() -> None:
    text = "a." * 100_000 + "a-" * 100_000  # quadratic matching would take tens of seconds
    started = time.perf_counter()
    assert redact_url(text) == text
    assert time.perf_counter() - started < 1.0
