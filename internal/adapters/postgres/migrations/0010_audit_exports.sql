-- The audit log's export to MLflow: one row per audit entry written to
-- MLflow as a trace, in the transaction that claimed the entry. The audit
-- log itself stays append-only; an entry without a row here is still to be
-- exported. Additive only: a replica of the previous release ignores it.
CREATE TABLE tidygate_audit_exports (
    audit_id    bigint      PRIMARY KEY REFERENCES tidygate_audit_log (id),
    trace_id    text        NOT NULL,
    exported_at timestamptz NOT NULL DEFAULT now()
);
