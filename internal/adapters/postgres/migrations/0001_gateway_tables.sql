-- The gateway's own tables. They carry the tidygate_ prefix so that they can
-- sit beside MLflow's tables in the same database.

-- API keys. Only the SHA-256 of a key's secret is stored.
CREATE TABLE tidygate_api_keys (
    id             text        PRIMARY KEY,
    key_hash       text        NOT NULL UNIQUE,
    user_id        text        NOT NULL,
    team_id        text        NOT NULL,
    allowed_models text[]      NOT NULL DEFAULT '{}', -- empty: every model in the catalogue
    rpm            integer     NOT NULL DEFAULT 0 CHECK (rpm >= 0), -- 0: unlimited
    tpm            integer     NOT NULL DEFAULT 0 CHECK (tpm >= 0), -- 0: unlimited
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);

-- Spending limits of users and teams, per day or per month (UTC).
CREATE TABLE tidygate_budgets (
    scope_kind   text   NOT NULL CHECK (scope_kind IN ('user', 'team')),
    scope_id     text   NOT NULL,
    period       text   NOT NULL CHECK (period IN ('day', 'month')),
    limit_micros bigint NOT NULL CHECK (limit_micros >= 0),
    PRIMARY KEY (scope_kind, scope_id, period)
);

-- What each budget has spent and holds in one period. A reservation raises
-- reserved_micros under the row's lock only while spent + reserved stays
-- within the limit; settling moves the hold into spent_micros.
CREATE TABLE tidygate_spend (
    scope_kind      text   NOT NULL,
    scope_id        text   NOT NULL,
    period          text   NOT NULL,
    period_start    date   NOT NULL, -- the UTC day, or the first day of the UTC month
    spent_micros    bigint NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    reserved_micros bigint NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
    PRIMARY KEY (scope_kind, scope_id, period, period_start)
);

-- One row per call: the worst-case amount held and what became of it. The
-- state makes settle and release idempotent; created_at (the database's
-- clock) lets a sweep expire holds left behind by a crashed process.
CREATE TABLE tidygate_reservations (
    id            text        PRIMARY KEY,
    amount_micros bigint      NOT NULL CHECK (amount_micros >= 0),
    reserved_at   timestamptz NOT NULL, -- the reservation's own time: its periods and its usage day
    state         text        NOT NULL DEFAULT 'held'
                              CHECK (state IN ('held', 'settled', 'released', 'expired')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

CREATE INDEX tidygate_reservations_held_idx
    ON tidygate_reservations (created_at) WHERE state = 'held';

-- The spend rows a reservation holds its amount against, so that settling
-- and releasing touch exactly the periods that were reserved, even after
-- midnight.
CREATE TABLE tidygate_reservation_holds (
    reservation_id text NOT NULL REFERENCES tidygate_reservations (id) ON DELETE CASCADE,
    scope_kind     text NOT NULL,
    scope_id       text NOT NULL,
    period         text NOT NULL,
    period_start   date NOT NULL,
    PRIMARY KEY (reservation_id, scope_kind, scope_id, period)
);

-- Usage per day, user, team, key and model. The primary key starts with
-- (user_id, day), so it also serves a user's rows by day.
CREATE TABLE tidygate_usage (
    user_id           text   NOT NULL,
    day               date   NOT NULL,
    team_id           text   NOT NULL,
    key_id            text   NOT NULL,
    model             text   NOT NULL,
    requests          bigint NOT NULL DEFAULT 0,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cost_micros       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, team_id, key_id, model)
);
