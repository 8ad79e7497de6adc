-- Each audit entry's MLflow trace is derived from a key the entry gets when
-- it is written: a random UUID, so that two installations (or one whose
-- database was rebuilt) writing to the same MLflow database cannot derive
-- the same trace from the same entry ID, which would leave the second
-- entry's trace unwritten (an export writes a trace that exists already as
-- a no-op). Entries written before this migration keep a NULL key and
-- their trace derived from the ID, as they were exported. Additive only: a
-- replica of the previous release inserts without the column and gets the
-- default.
ALTER TABLE tidygate_audit_log ADD COLUMN trace_key text;
ALTER TABLE tidygate_audit_log ALTER COLUMN trace_key SET DEFAULT gen_random_uuid()::text;
