"""A process's start-up and the long-lived objects of a function, built once from the environment.

``start(service)`` configures JSON logs and tracing (entry points call it at start-up; functions
through ``filepipe.web.start_function``). Function handlers call ``current()`` at their entry; the
first call reads the configuration and opens the pool and clients (never at import). Tests build
a ``Runtime`` from explicit settings or reset the process-wide one between cases.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from flask import Flask
from psycopg_pool import ConnectionPool
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from filepipe import metrics, telemetry
from filepipe.config import Settings
from filepipe.db import create_pool
from filepipe.events import Publisher
from filepipe.logs import configure_logging
from filepipe.presigner import Presigner
from filepipe.storage import COMPLETION_READ_TIMEOUT, create_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from filepipe.files.background import BackgroundPublisher
    from filepipe.files.republisher import Republisher


REDIS_TIMEOUT = 2.0
"""Seconds a Redis command waits for its answer."""
REDIS_CONNECT_TIMEOUT = 1.0


def start(service: str, app: Flask | None = None) -> Settings:
    """Configure logging and tracing for ``service`` (``K_SERVICE`` wins); instrument ``app``."""
    settings = Settings.from_env()
    name = settings.service_name or service
    configure_logging(settings.log_level, service=name)
    telemetry.setup(name, otlp_endpoint=settings.otlp_endpoint)
    if app is not None:
        telemetry.instrument_app(app)
    return settings


@dataclass
class Runtime:
    settings: Settings
    pool: ConnectionPool[Any] = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        pool = create_pool(
            settings.database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            checkout_timeout=settings.db_checkout_timeout,
            wait=False,
        )
        return cls(settings=settings, pool=pool)

    @cached_property
    def s3(self) -> S3Client:
        """The client functions use to read and write objects."""
        return create_s3_client(self.settings)

    @cached_property
    def s3_assembler(self) -> S3Client:
        """The client that completes multipart uploads (a long wait while storage assembles)."""
        return create_s3_client(self.settings, read_timeout=COMPLETION_READ_TIMEOUT)

    @cached_property
    def s3_presigner(self) -> S3Client:
        """The client that signs URLs for the endpoint clients reach."""
        return create_s3_client(self.settings, public=True)

    @cached_property
    def url_signer(self) -> Presigner:
        """Signs single-PUT upload URLs like ``s3_presigner``, without botocore's per-URL work."""
        return Presigner.of(self.s3_presigner)

    @cached_property
    def redis(self) -> Redis:
        """Quick to fail: redis-py's default retries (10, with backoff) would hold a request for
        many seconds while Redis is down; one immediate retry replaces a dropped connection."""
        return Redis.from_url(
            self.settings.redis_url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
        )

    @cached_property
    def publisher(self) -> Publisher | None:
        """Publishes to ``K_SINK``; a failure wakes the republisher."""
        if not self.settings.k_sink:
            return None
        return Publisher(
            self.settings.k_sink,
            timeout=self.settings.publish_timeout,
            on_failure=lambda: self.republisher.wake(),
        )

    @cached_property
    def republisher(self) -> Republisher:
        """Retries the outbox in the background after a failed publish (its thread starts on
        the first failure)."""
        assert self.publisher is not None, "nothing to republish without K_SINK"
        # imported here: filepipe.files imports filepipe.web, whose package imports this module
        from filepipe.files.republisher import Republisher

        return Republisher(self.pool, self.publisher, batch=self.settings.reconcile_batch)

    @cached_property
    def background(self) -> BackgroundPublisher:
        """Publishes committed events after the answer (its thread starts on the first event)."""
        assert self.publisher is not None, "nothing to publish without K_SINK"
        from filepipe.files.background import BackgroundPublisher  # as for the republisher

        return BackgroundPublisher(self.pool, self.publisher)

    def close(self) -> None:
        if "background" in self.__dict__:
            self.background.close()
        if "republisher" in self.__dict__:
            self.republisher.close()
        self.pool.close()
        if "redis" in self.__dict__:
            self.redis.close()


_current: Runtime | None = None
_lock = threading.Lock()


def current() -> Runtime:
    """The process-wide runtime, built from the environment on first use."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                settings = Settings.from_env()
                configure_logging(settings.log_level)
                _current = Runtime.from_settings(settings)
                metrics.serve(settings.metrics_port)
    return _current


def reset() -> None:
    """Close and forget the process-wide runtime (the next ``current()`` builds a new one)."""
    global _current
    with _lock:
        if _current is not None:
            _current.close()
        _current = None
