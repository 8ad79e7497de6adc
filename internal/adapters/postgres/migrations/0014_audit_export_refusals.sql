-- An audit entry whose trace MLflow's database refuses for its data (a
-- constraint or a limit of MLflow's schema that the entry breaks) is
-- recorded as refused, with PostgreSQL's reason, in place of a trace ID:
-- exports go on with the entries after it instead of retrying it forever,
-- and the entry itself stays in the audit log. Additive only: a replica of
-- the previous release shows a refused entry as not exported and skips it,
-- as it skips an exported one.
ALTER TABLE tidygate_audit_exports ALTER COLUMN trace_id DROP NOT NULL;
ALTER TABLE tidygate_audit_exports ADD COLUMN refused text;
ALTER TABLE tidygate_audit_exports ADD CONSTRAINT tidygate_audit_exports_trace_or_refusal
    CHECK ((trace_id IS NULL) <> (refused IS NULL));
