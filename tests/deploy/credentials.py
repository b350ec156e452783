"""Which credential each filepipe process reads: the one table the deploy tests hold Knative
(``knative/``) and compose (``compose.local.yaml``) to, so that no process is given a secret
it does not use.

Read in the code: presign signs upload URLs and creates, lists, completes and aborts multipart
uploads (S3, at FILEPIPE_S3_ENDPOINT_URL) and writes rows (PostgreSQL); process reads
objects (S3), locks and invalidates the cache (Redis); query caches (Redis), signs cursors and
download URLs and deletes objects (S3);
notify publishes to Redis and signs webhooks with endpoint secrets it decrypts; the webhooks API
encrypts new endpoint secrets; the gateway checks API keys (PostgreSQL) and reads Redis pub/sub;
presign signs upload tokens, and presign, query and the gateway verify them.
No function speaks AMQP: only the broker (and, locally, its emulator) and MinIO do.
"""

from __future__ import annotations

from filepipe import config

WEBHOOK_SECRET_KEYS: str = getattr(config, "WEBHOOK_SECRET_KEYS", "FILEPIPE_WEBHOOK_SECRET_KEYS")
EVENT_TOKEN: str = getattr(config, "EVENT_TOKEN", "FILEPIPE_EVENT_TOKEN")
PENDING_ENV = frozenset({WEBHOOK_SECRET_KEYS, EVENT_TOKEN})
"""Variables the package is being taught to read (issue 10): accepted before filepipe.config
names them; once it does, the names above come from it."""

SECRET_KEYS: dict[str, str] = {
    "database-url": config.DATABASE_URL,
    "redis-url": config.REDIS_URL,
    "s3-access-key-id": config.S3_ACCESS_KEY_ID,
    "s3-secret-access-key": config.S3_SECRET_ACCESS_KEY,
    "cursor-secret": config.CURSOR_SECRET,
    "webhook-secret-keys": WEBHOOK_SECRET_KEYS,
    "upload-token-secrets": config.UPLOAD_TOKEN_SECRETS,
}
"""Key of the Kubernetes Secret ``filepipe-secrets`` → the variable it is given as."""

CREDENTIALS = frozenset({*SECRET_KEYS.values(), config.AMQP_URL, EVENT_TOKEN})
"""Every variable that carries a credential (a password in a URL, a key, a token)."""

_S3 = {config.S3_ACCESS_KEY_ID, config.S3_SECRET_ACCESS_KEY}
USES: dict[str, frozenset[str]] = {
    "presign": frozenset({config.DATABASE_URL, *_S3, config.UPLOAD_TOKEN_SECRETS}),
    "process": frozenset({config.DATABASE_URL, config.REDIS_URL, *_S3}),
    "query": frozenset(
        {
            config.DATABASE_URL,
            config.REDIS_URL,
            config.CURSOR_SECRET,
            *_S3,
            config.UPLOAD_TOKEN_SECRETS,
        }
    ),
    "notify": frozenset({config.DATABASE_URL, config.REDIS_URL, WEBHOOK_SECRET_KEYS}),
    "webhooks": frozenset({config.DATABASE_URL, WEBHOOK_SECRET_KEYS}),
    "gateway": frozenset({config.DATABASE_URL, config.REDIS_URL, config.UPLOAD_TOKEN_SECRETS}),
    "web": frozenset(),  # the upload page's nginx: static files
}
"""The credentials each function, the gateway and the page read, wherever they run."""

EVENT_TOKEN_RECEIVERS = frozenset({"process", "notify"})
"""The CloudEvent targets that check ``X-Filepipe-Event-Token`` where a sender can add it: under
compose (the broker emulator adds it). On Knative the RabbitMQ broker cannot, so there they are
not given the token (knative/README.md, "Sender authentication")."""
