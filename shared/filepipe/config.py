"""Configuration read from the environment (12-factor), once, at start-up.

Every environment variable filepipe reads is named in this module. ``Settings.from_env`` is the
only place that reads them; nothing reads the environment at import time. Explicit arguments
(``dataclasses.replace`` or the constructor) beat the environment, which beats the defaults.
``repr(settings)`` shows no password or secret: URLs go through ``redact_url``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from filepipe.errors import ConfigError

DATABASE_URL = "FILEPIPE_DATABASE_URL"
DB_POOL_MIN = "FILEPIPE_DB_POOL_MIN"
DB_POOL_MAX = "FILEPIPE_DB_POOL_MAX"
REDIS_URL = "FILEPIPE_REDIS_URL"
AMQP_URL = "FILEPIPE_AMQP_URL"
S3_ENDPOINT_URL = "FILEPIPE_S3_ENDPOINT_URL"
S3_PUBLIC_ENDPOINT_URL = "FILEPIPE_S3_PUBLIC_ENDPOINT_URL"
S3_REGION = "FILEPIPE_S3_REGION"
S3_BUCKET = "FILEPIPE_S3_BUCKET"
S3_ACCESS_KEY_ID = "FILEPIPE_S3_ACCESS_KEY_ID"
S3_SECRET_ACCESS_KEY = "FILEPIPE_S3_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name
S3_NOTIFY_EXCHANGE = "FILEPIPE_S3_NOTIFY_EXCHANGE"
K_SINK = "K_SINK"
PUBLISH_TIMEOUT = "FILEPIPE_PUBLISH_TIMEOUT"
MAX_UPLOAD_BYTES = "FILEPIPE_MAX_UPLOAD_BYTES"
ALLOWED_CONTENT_TYPES = "FILEPIPE_ALLOWED_CONTENT_TYPES"
UPLOAD_URL_EXPIRES = "FILEPIPE_UPLOAD_URL_EXPIRES"
MIGRATIONS_DIR = "FILEPIPE_MIGRATIONS_DIR"
LOG_LEVEL = "FILEPIPE_LOG_LEVEL"
LOCK_TTL = "FILEPIPE_LOCK_TTL"
RECONCILE_GRACE = "FILEPIPE_RECONCILE_GRACE"
RECONCILE_BATCH = "FILEPIPE_RECONCILE_BATCH"
CACHE_TTL = "FILEPIPE_CACHE_TTL"
CURSOR_SECRET = "FILEPIPE_CURSOR_SECRET"  # noqa: S105 - a variable name
WEBHOOK_RETRY_SCHEDULE = "FILEPIPE_WEBHOOK_RETRY_SCHEDULE"
WEBHOOK_TIMEOUT = "FILEPIPE_WEBHOOK_TIMEOUT"
WEBHOOK_MAX_FAILURES = "FILEPIPE_WEBHOOK_MAX_FAILURES"
WEBHOOK_ALLOW_LOOPBACK = "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK"
GATEWAY_QUEUE_SIZE = "FILEPIPE_GATEWAY_QUEUE_SIZE"
METRICS_PORT = "FILEPIPE_METRICS_PORT"
"""Port of the process's Prometheus ``/metrics`` server (0 disables); see ``filepipe.metrics``."""
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
K_SERVICE = "K_SERVICE"
PORT = "PORT"
"""The port a server entry point listens on (Knative sets it); read by ``filepipe.gateway``."""

S3_SINGLE_PUT_LIMIT = 5 * 1024**3
"""S3 and MinIO refuse a single PUT above 5 GiB, so a presigned PUT can't be larger."""

DEFAULT_ALLOWED_CONTENT_TYPES = (
    "application/pdf",
    "application/json",
    "application/zip",
    "application/gzip",
    "text/plain",
    "text/csv",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
)


_URL_PASSWORD = re.compile(
    # scheme://user:password@host: the password runs to the authority's last "@" (as urlsplit
    # reads it), so an unencoded "@" in it is masked too.
    r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:)[^\s/?#]+(?=@)"
)
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#\s]+", re.I)
"""libpq also takes the password as a query parameter of the URL."""


def redact_url(url: str) -> str:
    """``url`` (or any text with URLs in it) with each password replaced by ``***``:
    ``postgresql://app:s3cret@db/x`` → ``postgresql://app:***@db/x``."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***", url))


@dataclass(frozen=True)
class Settings:
    """Everything a filepipe function needs to know about its surroundings.

    ``repr`` masks URL passwords and shows the ``repr=False`` (secret) fields as ``***``."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/filepipe"
    db_pool_min: int = 1
    db_pool_max: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = "uploads"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    s3_notify_exchange: str = "minio-events"
    k_sink: str | None = None
    publish_timeout: float = 5.0
    max_upload_bytes: int = 1024**3
    allowed_content_types: tuple[str, ...] = DEFAULT_ALLOWED_CONTENT_TYPES
    upload_url_expires: int = 900
    migrations_dir: str | None = None
    log_level: str = "INFO"
    lock_ttl: float = 30.0
    reconcile_grace: float = 60.0
    reconcile_batch: int = 200
    cache_ttl: float = 300.0
    cursor_secret: str | None = field(default=None, repr=False)
    webhook_retry_schedule: tuple[str, ...] = ("1", "5", "30", "120", "600")
    """Seconds to wait before each retry of a failed webhook delivery."""
    webhook_timeout: float = 5.0
    webhook_max_failures: int = 20
    """Consecutive failed deliveries after which an endpoint is disabled."""
    webhook_allow_loopback: bool = False
    """Development only: let webhooks target loopback addresses (on under ``make up``)."""
    gateway_queue_size: int = 100
    """Events the WebSocket gateway holds for one client; a client further behind is closed."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP collector base URL (e.g. ``http://127.0.0.1:4318``); unset: spans not exported."""
    service_name: str | None = None
    """The service name in logs and traces (Knative sets ``K_SERVICE``); else the entry point's."""
    metrics_port: int = 0
    """Where ``/metrics`` is served (by convention the function's port + 1000); 0 disables."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_upload_bytes <= S3_SINGLE_PUT_LIMIT:
            raise ConfigError(
                f"{MAX_UPLOAD_BYTES} must be between 1 and {S3_SINGLE_PUT_LIMIT} (one S3 PUT)"
            )
        if not 1 <= self.upload_url_expires <= 7 * 24 * 3600:
            raise ConfigError(f"{UPLOAD_URL_EXPIRES} must be between 1 s and 7 days (SigV4)")
        if not self.allowed_content_types:
            raise ConfigError(f"{ALLOWED_CONTENT_TYPES} must name at least one type")
        if self.lock_ttl <= 0 or self.reconcile_grace < 0 or self.reconcile_batch < 1:
            raise ConfigError(
                f"{LOCK_TTL} must be > 0, {RECONCILE_GRACE} >= 0, {RECONCILE_BATCH} >= 1"
            )
        if self.db_pool_min < 0 or self.db_pool_max < max(1, self.db_pool_min):
            raise ConfigError(f"{DB_POOL_MAX} must be at least 1 and at least {DB_POOL_MIN}")
        if self.gateway_queue_size < 1:
            raise ConfigError(f"{GATEWAY_QUEUE_SIZE} must be at least 1")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"{METRICS_PORT} must be a port number (0 disables)")

    def __repr__(self) -> str:
        shown = []
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not spec.repr and value is not None:
                value = "***"
            elif isinstance(value, str):
                value = redact_url(value)
            shown.append(f"{spec.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``); unset keys keep defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            name = _ENV_NAMES[spec.name]
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[spec.name] = _parse(name, raw.strip(), spec.type)
        return cls(**values)  # type: ignore[arg-type]


_ENV_NAMES = {
    "database_url": DATABASE_URL,
    "db_pool_min": DB_POOL_MIN,
    "db_pool_max": DB_POOL_MAX,
    "redis_url": REDIS_URL,
    "amqp_url": AMQP_URL,
    "s3_endpoint_url": S3_ENDPOINT_URL,
    "s3_public_endpoint_url": S3_PUBLIC_ENDPOINT_URL,
    "s3_region": S3_REGION,
    "s3_bucket": S3_BUCKET,
    "s3_access_key_id": S3_ACCESS_KEY_ID,
    "s3_secret_access_key": S3_SECRET_ACCESS_KEY,
    "s3_notify_exchange": S3_NOTIFY_EXCHANGE,
    "k_sink": K_SINK,
    "publish_timeout": PUBLISH_TIMEOUT,
    "max_upload_bytes": MAX_UPLOAD_BYTES,
    "allowed_content_types": ALLOWED_CONTENT_TYPES,
    "upload_url_expires": UPLOAD_URL_EXPIRES,
    "migrations_dir": MIGRATIONS_DIR,
    "log_level": LOG_LEVEL,
    "lock_ttl": LOCK_TTL,
    "reconcile_grace": RECONCILE_GRACE,
    "reconcile_batch": RECONCILE_BATCH,
    "cache_ttl": CACHE_TTL,
    "cursor_secret": CURSOR_SECRET,
    "webhook_retry_schedule": WEBHOOK_RETRY_SCHEDULE,
    "webhook_timeout": WEBHOOK_TIMEOUT,
    "webhook_max_failures": WEBHOOK_MAX_FAILURES,
    "webhook_allow_loopback": WEBHOOK_ALLOW_LOOPBACK,
    "gateway_queue_size": GATEWAY_QUEUE_SIZE,
    "otlp_endpoint": OTLP_ENDPOINT,
    "service_name": K_SERVICE,
    "metrics_port": METRICS_PORT,
}


def _parse(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    if kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if kind.startswith("tuple"):
        return tuple(item.strip().lower() for item in raw.split(",") if item.strip())
    return raw
