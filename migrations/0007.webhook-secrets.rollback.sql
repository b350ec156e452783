-- Back to plain-text secrets: only possible while no secret is encrypted (SQL has no key to
-- decrypt them, and dropping the ciphertext would lose the secrets).

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_endpoints WHERE secret IS NULL) THEN
        RAISE EXCEPTION 'webhook secrets are encrypted (secret_ciphertext); rolling back 0007 '
            'would lose them';
    END IF;
END
$$;

DROP INDEX webhook_deliveries_public_id;
ALTER TABLE webhook_deliveries DROP COLUMN public_id;

ALTER TABLE webhook_messages
    DROP CONSTRAINT webhook_messages_retry_base,
    DROP COLUMN retry_base;

ALTER TABLE webhook_endpoints
    DROP CONSTRAINT webhook_endpoints_previous_secret,
    DROP CONSTRAINT webhook_endpoints_key_id,
    DROP CONSTRAINT webhook_endpoints_one_secret,
    DROP COLUMN previous_secret_expires_at,
    DROP COLUMN previous_secret_ciphertext,
    DROP COLUMN secret_key_id,
    DROP COLUMN secret_ciphertext,
    ALTER COLUMN secret SET NOT NULL;
