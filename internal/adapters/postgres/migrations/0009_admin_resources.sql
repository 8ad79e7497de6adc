-- The admin API: keys paged in SQL, and usage reports that name the MLflow
-- trace of each settled call. Additive only: a replica of the previous
-- release keeps working on this schema and leaves the new columns NULL.

-- Who a settled reservation was for and which model answered, written when
-- the call is settled. A call's MLflow trace ID is derived from its request
-- ID, the reservation's ID, so the usage report lists trace IDs from here.
ALTER TABLE tidygate_reservations
    ADD COLUMN user_id text,
    ADD COLUMN team_id text,
    ADD COLUMN model   text;

CREATE INDEX tidygate_reservations_settled_idx
    ON tidygate_reservations (reserved_at) WHERE model IS NOT NULL;

-- Key lists are paged oldest first and filtered by user and team.
CREATE INDEX tidygate_api_keys_created_idx ON tidygate_api_keys (created_at, id);
CREATE INDEX tidygate_api_keys_user_idx ON tidygate_api_keys (user_id);
CREATE INDEX tidygate_api_keys_team_idx ON tidygate_api_keys (team_id);
