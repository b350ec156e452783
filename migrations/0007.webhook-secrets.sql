-- Webhook secrets encrypted at rest, secret rotation with overlap, replayable deliveries.
-- depends: 0004.trace-context
--
-- SQL has no key, so this migration encrypts nothing: rows written before it keep their plain
-- `secret` until the notify function's next sweep (the webhook-retries PingSource, every minute)
-- encrypts it into `secret_ciphertext` and clears `secret` (filepipe.notify.webhooks.encryption).
-- New secrets are only ever written encrypted. Exactly one of the two columns is set.

ALTER TABLE webhook_endpoints
    ALTER COLUMN secret DROP NOT NULL,
    ADD COLUMN secret_ciphertext text,
    ADD COLUMN secret_key_id text,
    ADD COLUMN previous_secret_ciphertext text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD CONSTRAINT webhook_endpoints_one_secret CHECK (num_nonnulls(secret, secret_ciphertext) = 1),
    ADD CONSTRAINT webhook_endpoints_key_id CHECK (
        (secret_ciphertext IS NULL) = (secret_key_id IS NULL)
    ),
    ADD CONSTRAINT webhook_endpoints_previous_secret CHECK (
        (previous_secret_ciphertext IS NULL) = (previous_secret_expires_at IS NULL)
        AND (previous_secret_ciphertext IS NULL OR secret_ciphertext IS NOT NULL)
    );

-- A replay re-queues a message with a fresh retry schedule: retries count from retry_base.
ALTER TABLE webhook_messages
    ADD COLUMN retry_base integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT webhook_messages_retry_base CHECK (retry_base >= 0 AND retry_base <= attempts);

-- Every path id of the API is a UUID: a delivery attempt gets one (its bigserial id stays the
-- internal order). Existing rows get theirs here (the table is rewritten once).
ALTER TABLE webhook_deliveries ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX webhook_deliveries_public_id ON webhook_deliveries (public_id);
