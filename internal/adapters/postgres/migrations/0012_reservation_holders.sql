-- Who took each reservation (the identity of the call log its call is
-- recorded in, and the run of the process writing to it) and whose call it
-- is for, so that a process restarted on the same call log can charge the
-- holds an earlier run of it left with no intent or record of their calls
-- (Ledger.Orphans). NULL in the reservations of earlier releases.
ALTER TABLE tidygate_reservations
    ADD COLUMN holder_log text,
    ADD COLUMN holder_run text,
    ADD COLUMN key_id     text,
    ADD COLUMN endpoint   text,
    ADD COLUMN for_model  text,
    ADD COLUMN for_group  text;

-- The holds a restart may have to charge: held, or given back for their
-- age and never settled.
CREATE INDEX tidygate_reservations_orphans_idx
    ON tidygate_reservations (holder_log) WHERE state IN ('held', 'expired') AND holder_log IS NOT NULL;
