-- filepipe data model: tenants, API keys, files, processing logs, the event outbox, webhooks.
-- depends:

CREATE TABLE tenants (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a key is stored; keys are 256-bit random tokens, so a fast hash suffices.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    tenant      text NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    prefix      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant);

CREATE TABLE files (
    id                      uuid PRIMARY KEY,
    tenant                  text NOT NULL REFERENCES tenants (name),
    bucket                  text NOT NULL,
    key                     text NOT NULL,
    filename                text NOT NULL,
    declared_content_type   text NOT NULL,
    declared_size           bigint NOT NULL CHECK (declared_size > 0),
    declared_sha256         text CHECK (declared_sha256 ~ '^[0-9a-f]{64}$'),
    status                  text NOT NULL DEFAULT 'PENDING' CHECK (status IN
                                ('PENDING', 'UPLOADED', 'PROCESSING', 'PROCESSED',
                                 'REJECTED', 'FAILED', 'EXPIRED')),
    sha256                  text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes              bigint,
    content_type            text,
    etag                    text,
    error                   text,
    metadata                jsonb NOT NULL DEFAULT '{}'::jsonb,
    version                 integer NOT NULL DEFAULT 1,
    idempotency_key         text,
    request_fingerprint     text,
    upload_expires_at       timestamptz NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    processed_at            timestamptz,
    UNIQUE (bucket, key),
    UNIQUE (tenant, idempotency_key)
);
-- GET /files: newest first with keyset order (created_at, id), one index per filter.
CREATE INDEX files_tenant_created ON files (tenant, created_at DESC, id DESC);
CREATE INDEX files_tenant_status_created ON files (tenant, status, created_at DESC, id DESC);
CREATE INDEX files_tenant_type_created
    ON files (tenant, (coalesce(content_type, declared_content_type)), created_at DESC, id DESC);
CREATE INDEX files_tenant_filename_created ON files (tenant, filename, created_at DESC, id DESC);
CREATE INDEX files_tenant_sha256_created ON files (tenant, sha256, created_at DESC, id DESC)
    WHERE sha256 IS NOT NULL;
-- reconcile: PENDING rows by expiry.
CREATE INDEX files_pending_expiry ON files (upload_expires_at) WHERE status = 'PENDING';

CREATE TABLE processing_logs (
    id          bigserial PRIMARY KEY,
    file_id     uuid NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    tenant      text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    message     text NOT NULL DEFAULT '',
    trace_id    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processing_logs_file ON processing_logs (file_id, id);

-- The outbox: every event is written with the state change that causes it, published after commit.
CREATE TABLE events (
    id            text PRIMARY KEY,
    type          text NOT NULL,
    source        text NOT NULL,
    subject       text NOT NULL,
    tenant        text NOT NULL,
    file_id       uuid REFERENCES files (id) ON DELETE CASCADE,
    data          jsonb NOT NULL,
    traceparent   text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text
);
CREATE INDEX events_unpublished ON events (created_at) WHERE published_at IS NULL;
CREATE INDEX events_file ON events (file_id, created_at);

CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY,
    tenant          text NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    url             text NOT NULL,
    secret          text NOT NULL,
    event_types     text[] NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    failure_count   integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant, created_at DESC);

CREATE TABLE webhook_deliveries (
    id            bigserial PRIMARY KEY,
    endpoint_id   uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id      text NOT NULL,
    attempt       integer NOT NULL,
    status_code   integer,
    duration_ms   integer,
    error         text,
    succeeded     boolean NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
