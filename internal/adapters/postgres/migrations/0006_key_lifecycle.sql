-- Keys that expire and rotate, and when each was last used. Additive only
-- (the expand step): a replica of the previous version keeps working on
-- this schema; it ignores expiries and accepts only current secrets until it
-- is replaced.
ALTER TABLE tidygate_api_keys
    ADD COLUMN expires_at           timestamptz,             -- NULL: the key never expires
    ADD COLUMN rotated_at           timestamptz,             -- when the secret was last replaced
    ADD COLUMN previous_key_hash    text UNIQUE,             -- the secret that rotation replaced
    ADD COLUMN previous_valid_until timestamptz,             -- the end of that rotation's grace period
    ADD COLUMN last_used_at         timestamptz;             -- written in batches, never once per call
