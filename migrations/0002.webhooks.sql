-- Webhook delivery state: one durable message per (endpoint, event), retried until delivered.
-- depends: 0001.initial-schema

-- The pending-delivery queue. The primary key dedupes a re-delivered CloudEvent; the notify
-- function claims due rows with FOR UPDATE SKIP LOCKED and a lease (next_attempt_at moved past
-- the attempt), so retries survive restarts and two workers never send the same attempt.
CREATE TABLE webhook_messages (
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    payload         text NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'delivered', 'failed', 'abandoned')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_messages_event ON webhook_messages (event_id) WHERE state = 'pending';

ALTER TABLE webhook_endpoints
    ADD COLUMN disabled_at timestamptz,
    ADD CONSTRAINT webhook_endpoints_events_present CHECK (cardinality(event_types) > 0),
    ADD CONSTRAINT webhook_endpoints_url_length CHECK (length(url) <= 2048);

-- One row per attempt; attempt numbers of a message are unique.
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_attempt_positive
    CHECK (attempt >= 1);
CREATE UNIQUE INDEX webhook_deliveries_attempt
    ON webhook_deliveries (endpoint_id, event_id, attempt);
