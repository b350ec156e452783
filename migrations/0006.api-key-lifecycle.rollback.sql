-- Forget the keys' names, expiries and last use.

DROP INDEX api_keys_prefix;
ALTER TABLE api_keys
    DROP CONSTRAINT api_keys_expires_after_creation,
    DROP COLUMN last_used_at,
    DROP COLUMN expires_at,
    DROP COLUMN name;
