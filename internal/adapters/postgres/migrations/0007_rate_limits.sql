-- The rate and concurrency limits of users and teams: requests and tokens
-- per window and calls in flight, all their keys together; 0 is no limit.
-- Expand only: a new table that earlier releases never read, so that
-- replicas of the previous release keep working against this schema during
-- a rolling upgrade (they enforce only each key's own limits meanwhile).
CREATE TABLE tidygate_rate_limits (
    scope_kind     text    NOT NULL CHECK (scope_kind IN ('user', 'team')),
    scope_id       text    NOT NULL,              -- the user or the team
    rpm            integer NOT NULL DEFAULT 0 CHECK (rpm >= 0),
    tpm            integer NOT NULL DEFAULT 0 CHECK (tpm >= 0),
    max_concurrent integer NOT NULL DEFAULT 0 CHECK (max_concurrent >= 0),
    PRIMARY KEY (scope_kind, scope_id)
);
