"""Configuration of the broker emulator, read from the environment once, in ``main()``.

Every environment variable the emulator reads is named here and ``Settings.from_env`` is the only
place that reads them; nothing reads the environment at import time. Explicit arguments (the
constructor or ``dataclasses.replace``) beat the environment, which beats the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from filepipe.config import AMQP_URL, EVENT_TOKEN, LOG_LEVEL, S3_NOTIFY_EXCHANGE
from local.broker.errors import ConfigError

HOST = "FILEPIPE_BROKER_HOST"
PORT = "FILEPIPE_BROKER_PORT"
KNATIVE_DIR = "FILEPIPE_KNATIVE_DIR"
SUBSCRIBERS = "FILEPIPE_SUBSCRIBERS"
PREFIX = "FILEPIPE_BROKER_PREFIX"
SOURCE_EXCHANGE = S3_NOTIFY_EXCHANGE
PING_INTERVAL = "FILEPIPE_PING_INTERVAL"
BACKOFF_SCALE = "FILEPIPE_BROKER_BACKOFF_SCALE"
DELIVERY_TIMEOUT = "FILEPIPE_BROKER_DELIVERY_TIMEOUT"
METRICS_PORT = "FILEPIPE_BROKER_METRICS_PORT"
MAX_WAITING = "FILEPIPE_BROKER_MAX_WAITING"

DEFAULT_SUBSCRIBERS = {"process": "http://127.0.0.1:8082", "notify": "http://127.0.0.1:8084"}

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Everything the emulator needs to know about its surroundings."""

    host: str = "127.0.0.1"
    port: int = 8090
    knative_dir: Path = Path("knative/eventing")
    subscribers: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SUBSCRIBERS))
    """Knative Service name → base URL; a Destination's ``uri`` path is appended to it."""
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    prefix: str = "filepipe.broker"
    """Prefix of every exchange and queue the emulator declares (tests isolate with it)."""
    source_exchange: str | None = None
    """Overrides the ``exchangeName`` of every RabbitmqSource."""
    ping_interval: float | None = None
    """Seconds between PingSource events; None derives it from the schedule, 0 disables."""
    backoff_scale: float = 1.0
    """Multiplies every retry delay (tests use small values)."""
    delivery_timeout: float = 30.0
    """Seconds one HTTP delivery may take when the Trigger sets no ``delivery.timeout``."""
    max_waiting: int = 100
    """Events per Trigger that may wait for a retry beyond its parallelism (the channel's
    prefetch is parallelism + this); more failing events hold the queue back (flow control)."""
    log_level: str = "INFO"
    metrics_port: int = 0
    """Where the emulator serves ``/metrics`` (dead letters; 9090 under ``make up``); 0: off."""
    event_token: str | None = field(default=None, repr=False)
    """Sent as ``X-Filepipe-Event-Token`` with every delivery (the functions' internal targets
    refuse events without it when they are given one)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from ``environ``; unset or empty variables keep their defaults."""
        defaults = cls()

        def get(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{name}={raw!r}: {exc}") from exc

        return cls(
            host=get(HOST, str, defaults.host),
            port=get(PORT, _port, defaults.port),
            knative_dir=get(KNATIVE_DIR, Path, defaults.knative_dir),
            subscribers=get(SUBSCRIBERS, parse_subscribers, defaults.subscribers),
            amqp_url=get(AMQP_URL, str, defaults.amqp_url),
            prefix=get(PREFIX, str, defaults.prefix),
            source_exchange=get(SOURCE_EXCHANGE, str, defaults.source_exchange),
            ping_interval=get(PING_INTERVAL, _non_negative, defaults.ping_interval),
            backoff_scale=get(BACKOFF_SCALE, _non_negative, defaults.backoff_scale),
            delivery_timeout=get(DELIVERY_TIMEOUT, _positive, defaults.delivery_timeout),
            max_waiting=get(MAX_WAITING, _count, defaults.max_waiting),
            log_level=get(LOG_LEVEL, str.upper, defaults.log_level),
            metrics_port=get(METRICS_PORT, _metrics_port, defaults.metrics_port),
            event_token=get(EVENT_TOKEN, str, defaults.event_token),
        )


def parse_subscribers(text: str) -> dict[str, str]:
    """``"process=http://127.0.0.1:8082,notify=http://…"`` → ``{"process": "http://…", …}``."""
    subscribers: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, url = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise ValueError(f"expected NAME=URL, got {item.strip()!r}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{name}: {url!r} is not an http(s) URL")
        subscribers[name] = url.rstrip("/")
    return subscribers


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError("not a TCP port")
    return port


def _metrics_port(text: str) -> int:
    return 0 if int(text) == 0 else _port(text)


def _count(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535 - 1000:  # AMQP's prefetch count is 16 bits; parallelism <= 1000
        raise ValueError("must be an integer from 0 to 64535")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a finite number >= 0")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise ValueError("must be > 0")
    return value
