-- A key's own bound on its concurrent calls; 0 means the gateway's
-- per-key share (MAX_CONCURRENT_PER_KEY).
ALTER TABLE tidygate_api_keys
    ADD COLUMN max_concurrent integer NOT NULL DEFAULT 0 CHECK (max_concurrent >= 0);
