"""Configuration read from the environment (12-factor), once, at start-up.

Every environment variable filepipe reads is named in this module, once (``_ENV_NAMES`` maps
each ``Settings`` field to its variable). ``Settings.from_env`` is the only place that reads them;
nothing reads the environment at import time. Explicit arguments (``dataclasses.replace`` or the
constructor) beat the environment, which beats the defaults. Every value, however given, is
checked when ``Settings`` is built: a bad one is a ``ConfigError`` naming the variable and the
rule, so a process stops at start-up. ``repr(settings)`` shows no password or secret: URLs go
through ``redact_url``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from filepipe import origins
from filepipe import settings_values as values
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
DOWNLOAD_URL_EXPIRES = "FILEPIPE_DOWNLOAD_URL_EXPIRES"
MULTIPART_THRESHOLD = "FILEPIPE_MULTIPART_THRESHOLD"
PART_SIZE = "FILEPIPE_PART_SIZE"
MULTIPART_EXPIRES = "FILEPIPE_MULTIPART_EXPIRES"
MIGRATIONS_DIR = "FILEPIPE_MIGRATIONS_DIR"
LOG_LEVEL = "FILEPIPE_LOG_LEVEL"
LOCK_TTL = "FILEPIPE_LOCK_TTL"
RECONCILE_GRACE = "FILEPIPE_RECONCILE_GRACE"
RECONCILE_BATCH = "FILEPIPE_RECONCILE_BATCH"
STUCK_AFTER = "FILEPIPE_STUCK_AFTER"
PROCESS_GIVE_UP = "FILEPIPE_PROCESS_GIVE_UP"
PROCESS_MAX_DEAD_LETTERS = "FILEPIPE_PROCESS_MAX_DEAD_LETTERS"
MISSING_CHECK_BATCH = "FILEPIPE_MISSING_CHECK_BATCH"
OBJECT_RETENTION = "FILEPIPE_OBJECT_RETENTION"
HISTORY_RETENTION = "FILEPIPE_HISTORY_RETENTION"
UPLOAD_RATE = "FILEPIPE_UPLOAD_RATE"
UPLOAD_BURST = "FILEPIPE_UPLOAD_BURST"
MAX_PENDING_FILES = "FILEPIPE_MAX_PENDING_FILES"
MAX_PENDING_BYTES = "FILEPIPE_MAX_PENDING_BYTES"
DB_CHECKOUT_TIMEOUT = "FILEPIPE_DB_CHECKOUT_TIMEOUT"
WEBHOOK_ENDPOINT_CONCURRENCY = "FILEPIPE_WEBHOOK_ENDPOINT_CONCURRENCY"
REALTIME_DEDUPE_TTL = "FILEPIPE_REALTIME_DEDUPE_TTL"
CACHE_TTL = "FILEPIPE_CACHE_TTL"
CURSOR_SECRET = "FILEPIPE_CURSOR_SECRET"  # noqa: S105 - a variable name
EVENT_TOKEN = "FILEPIPE_EVENT_TOKEN"  # noqa: S105 - a variable name
WEBHOOK_RETRY_SCHEDULE = "FILEPIPE_WEBHOOK_RETRY_SCHEDULE"
WEBHOOK_TIMEOUT = "FILEPIPE_WEBHOOK_TIMEOUT"
WEBHOOK_MAX_FAILURES = "FILEPIPE_WEBHOOK_MAX_FAILURES"
WEBHOOK_ALLOW_LOOPBACK = "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK"
WEBHOOK_PORTS = "FILEPIPE_WEBHOOK_PORTS"
WEBHOOK_SECRET_KEYS = "FILEPIPE_WEBHOOK_SECRET_KEYS"  # noqa: S105 - a variable name
UPLOAD_TOKEN_SECRETS = "FILEPIPE_UPLOAD_TOKEN_SECRETS"  # noqa: S105 - a variable name
GATEWAY_QUEUE_SIZE = "FILEPIPE_GATEWAY_QUEUE_SIZE"
GATEWAY_MAX_CONNECTIONS_PER_TENANT = "FILEPIPE_GATEWAY_MAX_CONNECTIONS_PER_TENANT"
ALLOWED_ORIGINS = "FILEPIPE_ALLOWED_ORIGINS"
"""Browser origins (``scheme://host[:port]``, or ``*``) the WebSocket gateway accepts."""
METRICS_PORT = "FILEPIPE_METRICS_PORT"
"""Port of the process's Prometheus ``/metrics`` server (0 disables); see ``filepipe.metrics``."""
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
K_SERVICE = "K_SERVICE"
PORT = "PORT"
"""The port a server entry point listens on (Knative sets it): ``Settings.port``."""
MAX_REQUEST_BYTES = "FILEPIPE_MAX_REQUEST_BYTES"

S3_SINGLE_PUT_LIMIT = 5 * 1024**3
"""S3 and MinIO refuse a single PUT above 5 GiB, so a presigned PUT can't be larger."""
S3_MAX_OBJECT = 5 * 1024**4
"""S3's largest object (5 TiB), uploaded in parts."""
S3_PART_SIZES = (5 * 1024**2, 5 * 1024**3)
"""S3's smallest and largest part of a multipart upload (5 MiB, 5 GiB; the last may be smaller)."""
MULTIPART_MAX_EXPIRES = 30 * 24 * 3600
MAX_REQUEST_BYTES_RANGE = (1024, 64 * 1024**2)
"""``max_request_bytes`` may be set between 1 KiB and 64 MiB."""
SIGV4_MAX_EXPIRES = 7 * 24 * 3600
"""A SigV4 presigned URL is valid for at most 7 days."""
DOWNLOAD_MAX_EXPIRES = 3600
"""A download URL is short-lived: valid for at most an hour."""

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
    # reads it), so an unencoded "@" in it is masked too. The scheme's length is bounded so that
    # long dotted text costs linear time.
    r"(\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s/?#@:]*:)[^\s/?#]+(?=@)"
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
    max_upload_bytes: int = S3_MAX_OBJECT
    multipart_threshold: int = 64 * 1024**2
    """Uploads of at least this many bytes are multipart unless the request says otherwise."""
    part_size: int = 16 * 1024**2
    """The default part size, raised for files that would need more than 10,000 parts."""
    multipart_expires: int = 86400
    """Seconds a multipart upload stays open (its parts' URLs never outlive it)."""
    allowed_content_types: tuple[str, ...] = DEFAULT_ALLOWED_CONTENT_TYPES
    upload_url_expires: int = 900
    download_url_expires: int = 300
    """Seconds a ``GET /files/{id}/download`` URL stays valid (1 to 3600)."""
    migrations_dir: str | None = None
    log_level: str = "INFO"
    lock_ttl: float = 10.0
    """Seconds a file lock lives unless its holder's heartbeat renews it (every third of it): a
    dead worker's lock is free again this soon."""
    reconcile_grace: float = 60.0
    reconcile_batch: int = 200
    stuck_after: float = 120.0
    """Seconds an UPLOADED or PROCESSING file may stay unchanged before reconcile re-drives it."""
    process_give_up: float = 86400.0
    """Seconds after it was created that an UPLOADED or PROCESSING file still unsettled (its
    causes transient) ends FAILED with the last cause recorded."""
    process_max_dead_letters: int = 10
    """Dead letters of one file (each after the broker's retries) before it ends FAILED."""
    missing_check_batch: int = 50
    """PROCESSED files whose object reconcile checks still exists per run (least recently
    checked first); 0 disables the check."""
    object_retention: float = 7 * 86400.0
    """Seconds the objects of REJECTED, EXPIRED, FAILED, CANCELLED and MISSING files are kept
    before reconcile removes them (DELETED files' objects go at once)."""
    history_retention: float = 30 * 86400.0
    """Seconds published events, processing logs and webhook deliveries are kept."""
    upload_rate: float = 20.0
    """Uploads one tenant may create per second, on average (``POST /uploads``; 429 beyond)."""
    upload_burst: int = 100
    """Uploads one tenant may create at once above ``upload_rate``."""
    max_pending_files: int = 10_000
    """PENDING files one tenant may hold (429 beyond)."""
    max_pending_bytes: int = 1024**4
    """Declared bytes of one tenant's PENDING files (429 beyond); 1 TiB."""
    db_checkout_timeout: float = 2.0
    """Seconds a request waits for a database connection before answering 503."""
    cache_ttl: float = 300.0
    cursor_secret: str | None = field(default=None, repr=False)
    event_token: str | None = field(default=None, repr=False)
    """The shared secret the broker sends as ``X-Filepipe-Event-Token`` to internal targets
    (process, notify); unset: they accept any sender (development only)."""
    webhook_retry_schedule: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0)
    """Seconds to wait before retry 1, 2, … of a failed webhook delivery (comma list in the
    environment); its length is the number of retries."""
    webhook_timeout: float = 5.0
    """Seconds one webhook attempt may take in all (connecting, sending, the answer's status
    and headers): a receiver that trickles bytes is cut at this deadline."""
    webhook_max_failures: int = 20
    """Consecutive failed deliveries after which an endpoint is disabled."""
    webhook_endpoint_concurrency: int = 2
    """Deliveries to one webhook endpoint in flight at once, per notify process: a slow
    receiver holds at most these, never the others' deliveries."""
    webhook_allow_loopback: bool = False
    """Development only: let webhooks target loopback addresses (on under ``make up``)."""
    webhook_ports: tuple[str, ...] = ("80", "443")
    """The TCP ports a webhook URL may name: ports and inclusive ranges (``80,443,8000-8999``);
    see ``webhook_port_ranges``."""
    webhook_secret_keys: tuple[str, ...] | None = field(default=None, repr=False)
    """Fernet keys that encrypt webhook secrets at rest: the first encrypts, every one decrypts
    (comma list, to rotate the key). Unset: the webhooks API answers 503, nothing is delivered."""
    upload_token_secrets: tuple[str, ...] | None = field(default=None, repr=False)
    """HMAC-SHA256 keys of upload tokens (``filepipe.upload_tokens``): the first signs, every one
    verifies (comma list, to rotate); at least 32 bytes each. Unset: no token is made or taken."""
    realtime_dedupe_ttl: float = 86400.0
    """Seconds an event id published to the WebSocket gateways is remembered in Redis, so a
    duplicate notification within that time reaches no client twice."""
    gateway_queue_size: int = 100
    """Events the WebSocket gateway holds for one client; a client further behind is closed."""
    gateway_max_connections_per_tenant: int = 20
    """Open WebSocket connections one tenant may hold on one gateway process (429 beyond)."""
    allowed_origins: tuple[str, ...] = ()
    """``Origin``s browsers may call the HTTP functions (CORS) and open a WebSocket from: comma
    list of origins and patterns (``http://localhost:*``, ``https://*.example.com``; ``*``: any;
    ``filepipe.origins``). A request without ``Origin`` (not a browser) is always allowed; the
    default allows no browser."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP collector base URL (e.g. ``http://127.0.0.1:4318``); unset: spans not exported."""
    service_name: str | None = None
    """The service name in logs and traces (Knative sets ``K_SERVICE``); else the entry point's."""
    metrics_port: int = 0
    """Where ``/metrics`` is served (by convention the function's port + 1000); 0 disables."""
    port: int | None = None
    """The port a server listens on (``PORT``, set by Knative); None: the entry point's default."""
    max_request_bytes: int = 256 * 1024
    """The largest request body an HTTP or CloudEvents function accepts (413 beyond it), enforced
    from ``Content-Length`` before the body is read."""

    def __post_init__(self) -> None:
        for spec in fields(self):
            _check_type(spec.name, getattr(self, spec.name), str(spec.type))
        # Level names and media types are case-insensitive; consumers compare them normalized.
        object.__setattr__(self, "log_level", self.log_level.upper())
        types = tuple(entry.lower() for entry in self.allowed_content_types)
        object.__setattr__(self, "allowed_content_types", types)
        _validate(self)

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
        given: dict[str, object] = {}
        for spec in fields(cls):
            name = _ENV_NAMES[spec.name]
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            given[spec.name] = values.parse(name, raw.strip(), spec.type)
        return cls(**given)  # type: ignore[arg-type]

    @property
    def webhook_port_ranges(self) -> tuple[tuple[int, int], ...]:
        """``webhook_ports`` as inclusive ``(low, high)`` ranges (validated when built)."""
        return tuple(filter(None, map(values.port_range, self.webhook_ports)))


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
    "download_url_expires": DOWNLOAD_URL_EXPIRES,
    "multipart_threshold": MULTIPART_THRESHOLD,
    "part_size": PART_SIZE,
    "multipart_expires": MULTIPART_EXPIRES,
    "migrations_dir": MIGRATIONS_DIR,
    "log_level": LOG_LEVEL,
    "lock_ttl": LOCK_TTL,
    "reconcile_grace": RECONCILE_GRACE,
    "reconcile_batch": RECONCILE_BATCH,
    "stuck_after": STUCK_AFTER,
    "process_give_up": PROCESS_GIVE_UP,
    "process_max_dead_letters": PROCESS_MAX_DEAD_LETTERS,
    "missing_check_batch": MISSING_CHECK_BATCH,
    "object_retention": OBJECT_RETENTION,
    "history_retention": HISTORY_RETENTION,
    "upload_rate": UPLOAD_RATE,
    "upload_burst": UPLOAD_BURST,
    "max_pending_files": MAX_PENDING_FILES,
    "max_pending_bytes": MAX_PENDING_BYTES,
    "db_checkout_timeout": DB_CHECKOUT_TIMEOUT,
    "cache_ttl": CACHE_TTL,
    "cursor_secret": CURSOR_SECRET,
    "event_token": EVENT_TOKEN,
    "webhook_retry_schedule": WEBHOOK_RETRY_SCHEDULE,
    "webhook_timeout": WEBHOOK_TIMEOUT,
    "webhook_max_failures": WEBHOOK_MAX_FAILURES,
    "webhook_endpoint_concurrency": WEBHOOK_ENDPOINT_CONCURRENCY,
    "webhook_allow_loopback": WEBHOOK_ALLOW_LOOPBACK,
    "webhook_ports": WEBHOOK_PORTS,
    "webhook_secret_keys": WEBHOOK_SECRET_KEYS,
    "upload_token_secrets": UPLOAD_TOKEN_SECRETS,
    "realtime_dedupe_ttl": REALTIME_DEDUPE_TTL,
    "gateway_queue_size": GATEWAY_QUEUE_SIZE,
    "gateway_max_connections_per_tenant": GATEWAY_MAX_CONNECTIONS_PER_TENANT,
    "allowed_origins": ALLOWED_ORIGINS,
    "otlp_endpoint": OTLP_ENDPOINT,
    "service_name": K_SERVICE,
    "metrics_port": METRICS_PORT,
    "port": PORT,
    "max_request_bytes": MAX_REQUEST_BYTES,
}


def _check_type(name: str, value: object, annotation: str) -> None:
    kind = annotation.removesuffix(" | None")
    if value is None and kind != annotation:
        return
    described, check = values.KINDS[kind]
    if not check(value):
        shown = f" {value!r}" if values.is_number(value) else ""
        raise ConfigError(
            f"{_ENV_NAMES[name]} must be {described}, not {type(value).__name__}{shown}"
        )


def _validate(s: Settings) -> None:
    """Raise ``ConfigError`` naming the variable and the rule of the first invalid value."""
    for name, schemes in _URL_SCHEMES.items():
        _url(name, getattr(s, name), schemes)
    levels = logging.getLevelNamesMapping()
    low, high = MAX_REQUEST_BYTES_RANGE
    min_part, max_part = S3_PART_SIZES
    bucket = s.s3_bucket
    checks = [
        ("db_pool_min", s.db_pool_min >= 0, "must be at least 0"),
        ("db_pool_max", s.db_pool_max >= max(1, s.db_pool_min),
         f"must be at least 1 and at least {DB_POOL_MIN} ({s.db_pool_min})"),
        ("reconcile_batch", s.reconcile_batch >= 1, "must be at least 1"),
        ("webhook_max_failures", s.webhook_max_failures >= 1, "must be at least 1"),
        ("webhook_endpoint_concurrency", s.webhook_endpoint_concurrency >= 1,
         "must be at least 1"),
        ("process_max_dead_letters", s.process_max_dead_letters >= 1, "must be at least 1"),
        ("missing_check_batch", s.missing_check_batch >= 0, "must be at least 0"),
        ("upload_burst", s.upload_burst >= 1, "must be at least 1"),
        ("max_pending_files", s.max_pending_files >= 1, "must be at least 1"),
        ("max_pending_bytes", s.max_pending_bytes >= 1, "must be at least 1"),
        ("webhook_ports", bool(s.webhook_ports), "must name at least one port"),
        ("webhook_ports", all(map(values.port_range, s.webhook_ports)),
         "entries must each be a TCP port or a range of them (80, 8000-8999; 1-65535)"),
        ("webhook_secret_keys", s.webhook_secret_keys != (), "must name at least one key"),
        ("webhook_secret_keys", all(map(values.fernet_key, s.webhook_secret_keys or ())),
         "entries must each be a Fernet key: 32 bytes in URL-safe base64, 44 characters"
         " (python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"),
        ("upload_token_secrets", s.upload_token_secrets != (), "must name at least one secret"),
        ("upload_token_secrets",
         all(len(secret.encode()) >= 32 for secret in s.upload_token_secrets or ()),
         "entries must each be at least 32 bytes long"),
        ("gateway_queue_size", s.gateway_queue_size >= 1, "must be at least 1"),
        ("gateway_max_connections_per_tenant", s.gateway_max_connections_per_tenant >= 1,
         "must be at least 1"),
        ("allowed_origins", all(map(origins.is_entry, s.allowed_origins)),
         "entries must each be an origin, scheme://host[:port] (no path), a pattern of one with"
         " * as the port or leading subdomains (http://localhost:*, https://*.example.com), or *"),
        ("max_upload_bytes", 1 <= s.max_upload_bytes <= S3_MAX_OBJECT,
         f"must be between 1 and {S3_MAX_OBJECT} (5 TiB, an S3 object)"),
        ("multipart_threshold", 1 <= s.multipart_threshold <= S3_SINGLE_PUT_LIMIT,
         f"must be between 1 and {S3_SINGLE_PUT_LIMIT} (5 GiB, one S3 PUT)"),
        ("part_size", min_part <= s.part_size <= max_part,
         f"must be between {min_part} (5 MiB) and {max_part} (5 GiB), S3's part sizes"),
        ("multipart_expires", 60 <= s.multipart_expires <= MULTIPART_MAX_EXPIRES,
         f"must be between 60 and {MULTIPART_MAX_EXPIRES} seconds (30 days)"),
        ("upload_url_expires", 1 <= s.upload_url_expires <= SIGV4_MAX_EXPIRES,
         f"must be between 1 and {SIGV4_MAX_EXPIRES} seconds (7 days, SigV4)"),
        ("download_url_expires", 1 <= s.download_url_expires <= DOWNLOAD_MAX_EXPIRES,
         f"must be between 1 and {DOWNLOAD_MAX_EXPIRES} seconds (1 hour)"),
        ("metrics_port", 0 <= s.metrics_port <= 65535, "must be a TCP port, or 0 (disabled)"),
        ("metrics_port", s.metrics_port == 0 or s.metrics_port != s.port,
         f"must differ from {PORT}"),
        ("port", s.port is None or 1 <= s.port <= 65535, "must be a TCP port (1-65535)"),
        ("max_request_bytes", low <= s.max_request_bytes <= high,
         f"must be between {low} (1 KiB) and {high} (64 MiB) bytes"),
        ("publish_timeout", values.positive(s.publish_timeout), "must be a number of seconds > 0"),
        ("webhook_timeout", values.positive(s.webhook_timeout), "must be a number of seconds > 0"),
        ("realtime_dedupe_ttl", values.positive(s.realtime_dedupe_ttl),
         "must be a number of seconds > 0"),
        ("lock_ttl", values.positive(s.lock_ttl), "must be a number of seconds > 0"),
        ("stuck_after", values.positive(s.stuck_after), "must be a number of seconds > 0"),
        ("process_give_up", values.positive(s.process_give_up),
         "must be a number of seconds > 0"),
        ("object_retention", values.non_negative(s.object_retention),
         "must be a number of seconds >= 0"),
        ("history_retention", values.non_negative(s.history_retention),
         "must be a number of seconds >= 0"),
        ("upload_rate", values.positive(s.upload_rate), "must be a number > 0 (per second)"),
        ("db_checkout_timeout", values.positive(s.db_checkout_timeout),
         "must be a number of seconds > 0"),
        ("reconcile_grace", values.non_negative(s.reconcile_grace),
         "must be a number of seconds >= 0"),
        ("cache_ttl", values.non_negative(s.cache_ttl), "must be a number of seconds >= 0"),
        ("webhook_retry_schedule", bool(s.webhook_retry_schedule), "must name at least one delay"),
        ("webhook_retry_schedule", all(map(values.retry_delay, s.webhook_retry_schedule)),
         "delays must each be between 0 and 7 days (seconds, 0 <= delay < 604800)"),
        ("allowed_content_types", bool(s.allowed_content_types), "must name at least one type"),
        ("allowed_content_types", all(map(values.MEDIA_RANGE.fullmatch, s.allowed_content_types)),
         "entries must each be type/subtype, type/* or */* (RFC 6838 names, no parameters)"),
        ("log_level", s.log_level in levels, f"must be one of {', '.join(levels)}"),
        ("s3_bucket",
         bool(values.BUCKET.fullmatch(bucket)) and not values.RESERVED.search(bucket),
         values.S3_RULE),
        ("s3_region", bool(values.REGION.fullmatch(s.s3_region)),
         "must be letters, digits, - and _"),
        ("s3_notify_exchange", bool(values.EXCHANGE.fullmatch(s.s3_notify_exchange)),
         "must be 1-255 letters, digits, '-', '_', '.' or ':' (an AMQP exchange name)"),
        ("s3_access_key_id", (s.s3_access_key_id is None) == (s.s3_secret_access_key is None),
         f"and {S3_SECRET_ACCESS_KEY} must be set together, or neither (AWS default chain)"),
        ("s3_access_key_id", values.token(s.s3_access_key_id), "must be non-empty, without spaces"),
        ("s3_secret_access_key", s.s3_secret_access_key != "", "must not be empty"),
        ("service_name", values.token(s.service_name), "must be non-empty, without spaces"),
        ("migrations_dir", s.migrations_dir != "", "must not be empty"),
        ("cursor_secret", s.cursor_secret is None or len(s.cursor_secret.encode()) >= 16,
         "must be at least 16 bytes long"),
        ("event_token", s.event_token is None or len(s.event_token.encode()) >= 16,
         "must be at least 16 bytes long"),
    ]  # fmt: skip
    for name, ok, rule in checks:
        if not ok:
            raise ConfigError(f"{_ENV_NAMES[name]} {rule}{_got(name, getattr(s, name))}")


def _got(name: str, value: object) -> str:
    """`` (got …)`` for a message, but never for a secret, and URLs without their password."""
    if value is None or name in _NOT_ECHOED:
        return ""
    return f" (got {redact_url(value) if isinstance(value, str) else value!r})"


def _url(name: str, url: str | None, schemes: tuple[str, ...]) -> None:
    """Check that ``url`` has one of ``schemes`` and a host (``unix``: a socket path)."""
    if url is None:
        return
    hostless = "postgresql" in schemes  # libpq defaults to the local socket
    rule = f"must be a URL with scheme {' or '.join(schemes)}" + ("" if hostless else " and a host")
    got = f"={redact_url(url)!r}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ConfigError(f"{_ENV_NAMES[name]}{got} {rule}: {exc}") from exc
    located = bool(parts.path if parts.scheme == "unix" else parts.hostname or hostless)
    if parts.scheme not in schemes or not located or any(c.isspace() for c in url):
        raise ConfigError(f"{_ENV_NAMES[name]}{got} {rule}")


_HTTP = ("http", "https")
_URL_SCHEMES = {
    "database_url": ("postgresql", "postgres"),
    "redis_url": ("redis", "rediss", "unix"),
    "amqp_url": ("amqp", "amqps"),
    "s3_endpoint_url": _HTTP,
    "s3_public_endpoint_url": _HTTP,
    "k_sink": _HTTP,
    "otlp_endpoint": _HTTP,
}
_NOT_ECHOED = frozenset(
    {
        "s3_access_key_id",
        "s3_secret_access_key",
        "cursor_secret",
        "event_token",
        "webhook_secret_keys",
        "upload_token_secrets",
    }
)
