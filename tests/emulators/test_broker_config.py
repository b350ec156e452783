"""Emulator settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.broker.config import Settings, parse_subscribers
from local.broker.errors import ConfigError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.port == 8090
    assert settings.knative_dir == Path("knative/eventing")
    assert settings.subscribers == {
        "process": "http://127.0.0.1:8082",
        "notify": "http://127.0.0.1:8084",
    }
    assert (settings.prefix, settings.ping_interval, settings.backoff_scale) == (
        "filepipe.broker",
        None,
        1.0,
    )


def test_reads_every_variable() -> None:
    settings = Settings.from_env(
        {
            "FILEPIPE_BROKER_PORT": "9999",
            "FILEPIPE_KNATIVE_DIR": "/tmp/k",
            "FILEPIPE_SUBSCRIBERS": "process=http://h:1/, notify=http://h:2",
            "FILEPIPE_AMQP_URL": "amqp://u:p@h:5672/v",
            "FILEPIPE_BROKER_PREFIX": "t.1",
            "FILEPIPE_S3_NOTIFY_EXCHANGE": "t.1.minio",
            "FILEPIPE_PING_INTERVAL": "0",
            "FILEPIPE_BROKER_BACKOFF_SCALE": "0.01",
            "FILEPIPE_BROKER_DELIVERY_TIMEOUT": "2.5",
            "FILEPIPE_BROKER_MAX_WAITING": "7",
            "FILEPIPE_LOG_LEVEL": "debug",
        }
    )
    assert settings == Settings(
        port=9999,
        knative_dir=Path("/tmp/k"),
        subscribers={"process": "http://h:1", "notify": "http://h:2"},
        amqp_url="amqp://u:p@h:5672/v",
        prefix="t.1",
        source_exchange="t.1.minio",
        ping_interval=0.0,
        backoff_scale=0.01,
        delivery_timeout=2.5,
        max_waiting=7,
        log_level="DEBUG",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FILEPIPE_BROKER_PORT", "http"),
        ("FILEPIPE_BROKER_PORT", "70000"),
        ("FILEPIPE_PING_INTERVAL", "-1"),
        ("FILEPIPE_BROKER_BACKOFF_SCALE", "nan"),
        ("FILEPIPE_BROKER_DELIVERY_TIMEOUT", "0"),
        ("FILEPIPE_BROKER_MAX_WAITING", "-1"),
        ("FILEPIPE_BROKER_MAX_WAITING", "70000"),
        ("FILEPIPE_SUBSCRIBERS", "process"),
        ("FILEPIPE_SUBSCRIBERS", "process=ftp://h"),
    ],
)
def test_names_the_variable_it_cannot_use(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_subscriber_list_tolerates_blanks() -> None:
    assert parse_subscribers(" a=http://x , ,b=https://y/z/ ") == {
        "a": "http://x",
        "b": "https://y/z",
    }


def test_metrics_port_is_off_by_default_and_read_from_its_variable() -> None:
    assert Settings.from_env({}).metrics_port == 0
    assert Settings.from_env({"FILEPIPE_BROKER_METRICS_PORT": "9090"}).metrics_port == 9090
    assert Settings.from_env({"FILEPIPE_BROKER_METRICS_PORT": "0"}).metrics_port == 0
    with pytest.raises(ConfigError, match="FILEPIPE_BROKER_METRICS_PORT"):
        Settings.from_env({"FILEPIPE_BROKER_METRICS_PORT": "70000"})
