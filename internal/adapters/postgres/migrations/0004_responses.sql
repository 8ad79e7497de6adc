-- Stored responses of the OpenAI Responses API, each owned by one user
-- (the user of the key that created it). The conversation and the answer
-- are one JSON document in body, which only tidygate reads; bytea rather
-- than jsonb, as jsonb cannot hold the NUL characters a prompt may carry.
-- expires_at is indexed for the sweep that deletes expired responses.
CREATE TABLE tidygate_responses (
    id         text        PRIMARY KEY,
    owner_id   text        NOT NULL,
    key_id     text        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    body       bytea       NOT NULL
);

CREATE INDEX tidygate_responses_expires_at ON tidygate_responses (expires_at);
