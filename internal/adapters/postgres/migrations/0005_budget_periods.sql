-- Budgets per key, per week, over rolling windows and per model or model
-- group, and budget alerts. Expand only: every table and column of earlier
-- releases stays as it was, so that replicas of the previous release keep
-- working against this schema during a rolling upgrade (docs/DEPLOYMENT.md).
-- Budgets of the shape earlier releases know (a user's or team's budget
-- per day or month on every model) stay in tidygate_budgets, where those
-- replicas read and enforce them; every other budget lives here, where
-- they never look.
CREATE TABLE tidygate_budget_limits (
    scope_kind   text   NOT NULL CHECK (scope_kind IN ('key', 'user', 'team')),
    scope_id     text   NOT NULL,                 -- the key's ID, the user or the team
    period       text   NOT NULL,                 -- day, week, month or rolling:DURATION
    model        text   NOT NULL DEFAULT '',      -- '' every model, a model's name, or group:NAME
    limit_micros bigint NOT NULL CHECK (limit_micros >= 0),
    PRIMARY KEY (scope_kind, scope_id, period, model)
);

-- The spending of rolling windows: one row per reservation and rolling
-- budget, holding its amount until the call ends, then its cost. A
-- reservation checks its window with one index range scan that sums the
-- rows of the window (the index carries the amounts, so the scan reads
-- the index only); reservations on one rolling budget take turns under a
-- transaction-level advisory lock. Calendar periods keep one row per
-- period in tidygate_spend, whose period column also names the model or
-- group of a budget on one ("day gpt-4o", "week group:premium").
CREATE TABLE tidygate_window_spend (
    reservation_id text        NOT NULL REFERENCES tidygate_reservations (id) ON DELETE CASCADE,
    scope_kind     text        NOT NULL,
    scope_id       text        NOT NULL,
    period         text        NOT NULL, -- rolling:DURATION, then the model or group after a space
    at             timestamptz NOT NULL, -- the reservation's time
    limit_micros   bigint      NOT NULL, -- the budget's limit at the reservation, for alerts
    held_micros    bigint      NOT NULL DEFAULT 0 CHECK (held_micros >= 0),
    spent_micros   bigint      NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    PRIMARY KEY (reservation_id, scope_kind, scope_id, period)
);

CREATE INDEX tidygate_window_spend_window_idx
    ON tidygate_window_spend (scope_kind, scope_id, period, at) INCLUDE (held_micros, spent_micros);

-- The limit a hold was made under, for the alert thresholds its
-- settlement may cross; NULL in holds made by earlier releases.
ALTER TABLE tidygate_reservation_holds ADD COLUMN limit_micros bigint;

-- Budget alerts: each threshold once per budget and period (the unique
-- constraint holds across replicas), written in the transaction that
-- settles the spending that crossed it, and kept as an outbox until the
-- webhook has taken it.
CREATE TABLE tidygate_budget_alerts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope_kind      text        NOT NULL,
    scope_id        text        NOT NULL,
    period          text        NOT NULL, -- as in tidygate_spend
    period_start    timestamptz NOT NULL, -- the period's first day (UTC midnight of that date), or the rolling slot's start
    threshold       integer     NOT NULL CHECK (threshold > 0),
    limit_micros    bigint      NOT NULL,
    spent_micros    bigint      NOT NULL,
    fired_at        timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text,
    UNIQUE (scope_kind, scope_id, period, period_start, threshold)
);

CREATE INDEX tidygate_budget_alerts_pending_idx
    ON tidygate_budget_alerts (next_attempt_at) WHERE delivered_at IS NULL;
