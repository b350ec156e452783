-- API-key lifecycle: an operator's label, an optional expiry (enforced on every authentication)
-- and when the key was last used (written at most once a minute per key, not per request).
-- Revocation keeps using revoked_at (0001); rotation revokes the old key or sets its expiry.
-- depends: 0004.trace-context

ALTER TABLE api_keys
    ADD COLUMN name text CHECK (length(name) BETWEEN 1 AND 200),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD CONSTRAINT api_keys_expires_after_creation CHECK (expires_at > created_at);

-- revoke-key / rotate-key find a key by the prefix list-keys shows.
CREATE INDEX api_keys_prefix ON api_keys (prefix);
