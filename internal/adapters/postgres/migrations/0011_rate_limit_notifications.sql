-- Users' and teams' rate and concurrency limits travel with the callers
-- each replica caches, so a change of them is announced on tidygate_keys
-- as a budget's is (migration 0008): in the transaction that makes it,
-- naming 'user:NAME' or 'team:NAME', whichever way it was made (the admin
-- API, the console, the tidygate keys command). Additive only: replicas of
-- earlier releases ignore the notifications.

CREATE TRIGGER tidygate_rate_limits_notify
    AFTER INSERT OR DELETE ON tidygate_rate_limits
    FOR EACH ROW EXECUTE FUNCTION tidygate_keys_notify_budget();

CREATE TRIGGER tidygate_rate_limits_notify_update
    AFTER UPDATE ON tidygate_rate_limits
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION tidygate_keys_notify_budget();

CREATE TRIGGER tidygate_rate_limits_notify_truncate
    AFTER TRUNCATE ON tidygate_rate_limits
    FOR EACH STATEMENT EXECUTE FUNCTION tidygate_keys_notify_all();
