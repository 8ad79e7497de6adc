-- Keys are cached in each replica's memory. Every change of what a cached
-- caller carries is announced on the channel tidygate_keys, in the
-- transaction that makes it (so it is heard only if it commits), and each
-- replica drops what it affects. A payload names a scope: 'key:ID' for a
-- key's row, 'user:NAME', 'team:NAME' or 'key:ID' for a budget of that
-- scope; '*' when a table is emptied. Additive only: replicas of earlier
-- releases cache nothing and ignore the notifications.

CREATE FUNCTION tidygate_keys_notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tidygate_keys', 'key:' || OLD.id);
    IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
        PERFORM pg_notify('tidygate_keys', 'key:' || NEW.id);
    END IF;
    RETURN NULL;
END
$$;

-- last_used_at alone changes on every flush of the keys' last uses, which
-- changes nothing a caller carries: it is not announced.
CREATE TRIGGER tidygate_api_keys_notify_update
    AFTER UPDATE ON tidygate_api_keys
    FOR EACH ROW
    WHEN (to_jsonb(OLD) - 'last_used_at' IS DISTINCT FROM to_jsonb(NEW) - 'last_used_at')
    EXECUTE FUNCTION tidygate_keys_notify_key();

CREATE TRIGGER tidygate_api_keys_notify_delete
    AFTER DELETE ON tidygate_api_keys
    FOR EACH ROW EXECUTE FUNCTION tidygate_keys_notify_key();

-- Both budget tables have scope_kind ('key', 'user' or 'team') and scope_id.
CREATE FUNCTION tidygate_keys_notify_budget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('tidygate_keys', OLD.scope_kind || ':' || OLD.scope_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('tidygate_keys', NEW.scope_kind || ':' || NEW.scope_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION tidygate_keys_notify_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tidygate_keys', '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER tidygate_budgets_notify
    AFTER INSERT OR DELETE ON tidygate_budgets
    FOR EACH ROW EXECUTE FUNCTION tidygate_keys_notify_budget();

-- An upsert that sets the limit a budget already has changes nothing.
CREATE TRIGGER tidygate_budgets_notify_update
    AFTER UPDATE ON tidygate_budgets
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION tidygate_keys_notify_budget();

CREATE TRIGGER tidygate_budget_limits_notify
    AFTER INSERT OR DELETE ON tidygate_budget_limits
    FOR EACH ROW EXECUTE FUNCTION tidygate_keys_notify_budget();

CREATE TRIGGER tidygate_budget_limits_notify_update
    AFTER UPDATE ON tidygate_budget_limits
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION tidygate_keys_notify_budget();

CREATE TRIGGER tidygate_api_keys_notify_truncate
    AFTER TRUNCATE ON tidygate_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tidygate_keys_notify_all();

CREATE TRIGGER tidygate_budgets_notify_truncate
    AFTER TRUNCATE ON tidygate_budgets
    FOR EACH STATEMENT EXECUTE FUNCTION tidygate_keys_notify_all();

CREATE TRIGGER tidygate_budget_limits_notify_truncate
    AFTER TRUNCATE ON tidygate_budget_limits
    FOR EACH STATEMENT EXECUTE FUNCTION tidygate_keys_notify_all();
