-- Administration: admin keys and the audit log of every administrative change.

-- Admin keys. Like API keys, only the SHA-256 of the secret is stored.
CREATE TABLE tidygate_admin_keys (
    id         text        PRIMARY KEY,
    key_hash   text        NOT NULL UNIQUE,
    name       text        NOT NULL,
    scopes     text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- One row per administrative change, written in the change's own transaction.
-- before and after are the target's state (never a secret or a hash).
CREATE TABLE tidygate_audit_log (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor_kind text        NOT NULL,
    actor_id   text        NOT NULL,
    action     text        NOT NULL,
    target     text        NOT NULL,
    reason     text        NOT NULL CHECK (reason <> ''),
    before     jsonb,
    after      jsonb
);

CREATE INDEX tidygate_audit_log_target_idx ON tidygate_audit_log (target, id);

-- The audit log is append-only: no statement may change or delete an entry.
CREATE FUNCTION tidygate_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;

CREATE TRIGGER tidygate_audit_log_append_only
    BEFORE UPDATE OR DELETE ON tidygate_audit_log
    FOR EACH ROW EXECUTE FUNCTION tidygate_audit_log_append_only();
