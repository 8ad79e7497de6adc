package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
)

// UpdateKey changes the policy of the key with this ID as u says, and the
// budgets of the key, its user or its team that u sets or removes, with
// ifMatch and the audit entry e as in RevokeKey. A revoked key cannot
// change.
func (s *KeyStore) UpdateKey(ctx context.Context, id string, u domain.KeyUpdate, ifMatch string, e domain.AuditEntry) (domain.APIKey, error) {
	if err := u.Validate(); err != nil {
		return domain.APIKey{}, err
	}
	return s.changeKey(ctx, "update the API key", id, ifMatch, e, func(ctx context.Context, tx pgx.Tx, before domain.APIKey) error {
		if before.RevokedAt != nil {
			return revokedKey(id)
		}
		nk := NewKey{User: before.Caller.User, Team: before.Caller.Team, AllowedModels: before.Caller.AllowedModels,
			RPM: before.Caller.RPM, TPM: before.Caller.TPM, MaxConcurrent: before.Caller.MaxConcurrent}
		if u.AllowedModels != nil {
			nk.AllowedModels = *u.AllowedModels
		}
		for _, f := range []struct{ from, to *int }{{u.RPM, &nk.RPM}, {u.TPM, &nk.TPM}, {u.MaxConcurrent, &nk.MaxConcurrent}} {
			if f.from != nil {
				*f.to = *f.from
			}
		}
		if err := checkNewKey(nk); err != nil {
			return err
		}
		models := nk.AllowedModels
		if models == nil {
			models = []string{}
		}
		if _, err := tx.Exec(ctx, "UPDATE tidygate_api_keys SET allowed_models = $2, rpm = $3, tpm = $4, max_concurrent = $5 WHERE id = $1",
			id, models, nk.RPM, nk.TPM, nk.MaxConcurrent); err != nil {
			return err
		}
		budgets := make([]domain.Budget, len(u.Budgets))
		for i, b := range u.Budgets {
			b.ScopeID = map[domain.ScopeKind]string{domain.ScopeKey: id, domain.ScopeUser: nk.User, domain.ScopeTeam: nk.Team}[b.Scope]
			budgets[i] = b
		}
		return changeBudgets(ctx, tx, budgets)
	})
}

const deleteBudget = `DELETE FROM tidygate_budgets WHERE scope_kind = $1 AND scope_id = $2 AND period = $3`

const deleteBudgetLimit = `DELETE FROM tidygate_budget_limits WHERE scope_kind = $1 AND scope_id = $2 AND period = $3 AND model = $4`

// changeBudgets sets each budget with a positive limit and removes each
// with a zero one, in the table its shape belongs in. Spending already
// counted stays: setting a budget again picks it up.
func changeBudgets(ctx context.Context, tx pgx.Tx, budgets []domain.Budget) error {
	for _, b := range budgets {
		if err := checkBudget(b); err != nil {
			return err
		}
	}
	if err := lockPrincipalsOf(ctx, tx, budgets); err != nil {
		return err
	}
	batch := &pgx.Batch{}
	for _, b := range budgets {
		switch {
		case b.Limit > 0:
			queueBudget(batch, b)
		case b.Legacy():
			batch.Queue(deleteBudget, string(b.Scope), b.ScopeID, string(b.Period))
		default:
			batch.Queue(deleteBudgetLimit, string(b.Scope), b.ScopeID, string(b.Period), b.Model)
		}
	}
	if batch.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, batch).Close()
}

// keyPage selects the IDs of one page of keys ($1 user, $2 team, $3
// state, $4 the ID the page starts after, $5 its size) for selectKeys.
const keyPage = `WITH page AS (
	SELECT id FROM tidygate_api_keys
	WHERE ($1 = '' OR user_id = $1) AND ($2 = '' OR team_id = $2)
		AND ($3 = '' OR ($3 = 'active') = (revoked_at IS NULL))
		AND ($4 = '' OR (created_at, id) > (SELECT created_at, id FROM tidygate_api_keys WHERE id = $4))
	ORDER BY created_at, id LIMIT $5)
`

// Keys returns the page of keys q selects, oldest first, read and filtered
// in SQL. An After that names no key is a domain.KindInvalid error.
func (s *KeyStore) Keys(ctx context.Context, q domain.KeyQuery) ([]domain.APIKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	if q.State != "" && q.State != domain.KeyStateActive && q.State != domain.KeyStateRevoked {
		return nil, domain.InvalidParam("state", "state must be %s or %s", domain.KeyStateActive, domain.KeyStateRevoked)
	}
	for _, f := range []struct{ param, v string }{{"user", q.User}, {"team", q.Team}, {"after", q.After}} {
		if err := checkName(f.param, f.v, false); err != nil {
			return nil, err
		}
	}
	var keys []storedKey
	err := pgkit.WithConn(ctx, s.db, "list the API keys", func(conn *pgxpool.Conn) error {
		if q.After != "" {
			var known bool
			if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM tidygate_api_keys WHERE id = $1)", q.After).Scan(&known); err != nil {
				return err
			}
			if !known {
				return domain.InvalidParam("after", "after names no key: use the last_id of the previous page")
			}
		}
		var err error
		keys, err = queryKeys(ctx, conn, keyPage+selectKeys+" WHERE k.id IN (SELECT id FROM page) ORDER BY k.created_at, k.id",
			q.User, q.Team, q.State, q.After, q.Limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	return apiKeys(keys), nil
}

// RevokeAdminKey revokes the admin key with this ID at once and stores the
// audit entry e with its state before and after, in one transaction.
// Revoking a revoked admin key changes nothing and stores no entry.
func (s *KeyStore) RevokeAdminKey(ctx context.Context, id string, e domain.AuditEntry) (domain.AdminKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var after domain.AdminKey
	err := pgkit.WithTx(ctx, s.db, "revoke the admin key", func(tx pgx.Tx) error {
		before, err := adminKeys(ctx, tx, "WHERE id = $1 FOR UPDATE", id)
		if err != nil {
			return err
		}
		if len(before) != 1 {
			return adminKeyNotFound(id)
		}
		if _, err := tx.Exec(ctx, "UPDATE tidygate_admin_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", id); err != nil {
			return err
		}
		now, err := adminKeys(ctx, tx, "WHERE id = $1", id)
		if err != nil {
			return err
		}
		after = now[0]
		e.Target, e.Before, e.After = id, &before[0], &after
		return appendAudit(ctx, tx, e)
	})
	return after, err
}

// AdminKeys returns every admin key, revoked ones included, oldest first.
func (s *KeyStore) AdminKeys(ctx context.Context) ([]domain.AdminKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var keys []domain.AdminKey
	err := pgkit.WithConn(ctx, s.db, "list the admin keys", func(conn *pgxpool.Conn) error {
		var err error
		keys, err = adminKeys(ctx, conn, "ORDER BY created_at, id")
		return err
	})
	return keys, err
}

// AdminKey returns the admin key id, revoked or not, or a
// domain.KindNotFound error.
func (s *KeyStore) AdminKey(ctx context.Context, id string) (domain.AdminKey, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var keys []domain.AdminKey
	err := pgkit.WithConn(ctx, s.db, "look up the admin key", func(conn *pgxpool.Conn) error {
		var err error
		keys, err = adminKeys(ctx, conn, "WHERE id = $1", id)
		return err
	})
	if err != nil {
		return domain.AdminKey{}, err
	}
	if len(keys) != 1 {
		return domain.AdminKey{}, adminKeyNotFound(id)
	}
	return keys[0], nil
}

func adminKeyNotFound(id string) error {
	return &domain.Error{Kind: domain.KindNotFound, Code: "admin_key_not_found", Param: "id",
		Message: fmt.Sprintf("there is no admin key with ID %q", id)}
}

// adminKeys reads admin keys, with the clause (WHERE, ORDER BY, a locking
// clause) appended to the query.
func adminKeys(ctx context.Context, q querier, clause string, args ...any) ([]domain.AdminKey, error) {
	rows, err := q.Query(ctx, "SELECT id, name, scopes, created_at, revoked_at FROM tidygate_admin_keys "+clause, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.AdminKey, error) {
		var k domain.AdminKey
		var scopes []string
		if err := row.Scan(&k.ID, &k.Name, &scopes, &k.CreatedAt, &k.RevokedAt); err != nil {
			return k, err
		}
		for _, sc := range scopes {
			k.Scopes = append(k.Scopes, domain.AdminScope(sc))
		}
		k.CreatedAt, k.RevokedAt = k.CreatedAt.UTC(), utc(k.RevokedAt)
		return k, nil
	})
}

// principalColumn is the key column that names a principal of each scope.
var principalColumn = map[domain.ScopeKind]string{domain.ScopeUser: "user_id", domain.ScopeTeam: "team_id"}

// principalPage selects the IDs of one page of users or teams (the key
// column %[1]s, the scope $1, after $2, at most $3) for principalRows.
const principalPage = `WITH ids AS (
	SELECT %[1]s AS id FROM tidygate_api_keys
	UNION SELECT scope_id FROM tidygate_budgets WHERE scope_kind = $1
	UNION SELECT scope_id FROM tidygate_budget_limits WHERE scope_kind = $1
	UNION SELECT scope_id FROM tidygate_rate_limits WHERE scope_kind = $1 AND (rpm > 0 OR tpm > 0 OR max_concurrent > 0)
), page AS (
	SELECT id FROM ids WHERE ($2 = '' OR id COLLATE "C" > $2) ORDER BY id COLLATE "C" LIMIT $3
)
`

// principalOne selects the one user or team $2 for principalRows.
const principalOne = "WITH page AS (SELECT $2::text AS id)\n"

// principalRows reads the users or teams of page (the key column %[1]s,
// the scope $1) with their limits and budgets: one row per principal and
// budget, or one with NULL budget columns.
const principalRows = `SELECT p.id,
	(SELECT count(*) FROM tidygate_api_keys k WHERE k.%[1]s = p.id),
	(SELECT count(*) FROM tidygate_api_keys k WHERE k.%[1]s = p.id AND k.revoked_at IS NULL),
	coalesce(l.rpm, 0), coalesce(l.tpm, 0), coalesce(l.max_concurrent, 0),
	b.period, b.limit_micros, b.model
FROM page p
LEFT JOIN tidygate_rate_limits l ON l.scope_kind = $1 AND l.scope_id = p.id
LEFT JOIN (
	SELECT scope_id, period, limit_micros, '' AS model FROM tidygate_budgets WHERE scope_kind = $1
	UNION ALL
	SELECT scope_id, period, limit_micros, model FROM tidygate_budget_limits WHERE scope_kind = $1
) b ON b.scope_id = p.id
ORDER BY p.id COLLATE "C"`

// Principals returns the page of users or teams q selects, by ID in byte
// order.
func (s *KeyStore) Principals(ctx context.Context, q domain.PrincipalQuery) ([]domain.Principal, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	if err := checkName("after", q.After, false); err != nil {
		return nil, err
	}
	var out []domain.Principal
	err := pgkit.WithConn(ctx, s.db, "list the "+string(q.Scope)+"s", func(conn *pgxpool.Conn) error {
		var err error
		out, err = queryPrincipals(ctx, conn, q.Scope, q.After, q.Limit)
		return err
	})
	return out, err
}

// Principal returns the user or team with this ID; one that no key or
// budget names has no keys and no budgets.
func (s *KeyStore) Principal(ctx context.Context, scope domain.ScopeKind, id string) (domain.Principal, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var p domain.Principal
	err := pgkit.WithConn(ctx, s.db, "read the "+string(scope), func(conn *pgxpool.Conn) error {
		var err error
		p, err = principal(ctx, conn, scope, id)
		return err
	})
	return p, err
}

// ChangePrincipal changes the user or team with this ID as c says: budgets
// set (a positive limit) or removed (zero), whose Scope and ScopeID must
// name it, and limits set or removed. It stores the audit entry e with its
// state before and after, in one transaction. A non-empty ifMatch must be
// its version (domain.PrincipalVersion). It returns the changed user or
// team.
func (s *KeyStore) ChangePrincipal(ctx context.Context, scope domain.ScopeKind, id string, c domain.PrincipalChange,
	ifMatch string, e domain.AuditEntry) (domain.Principal, error) {
	// Checked before the lock below, whose key the name is part of: a NUL
	// there fails in PostgreSQL, not as the name's own error.
	if err := checkName(string(scope), id, true); err != nil {
		return domain.Principal{}, err
	}
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var after domain.Principal
	err := pgkit.WithTx(ctx, s.db, "change the "+string(scope), func(tx pgx.Tx) error {
		if err := lockPrincipal(ctx, tx, scope, id); err != nil {
			return err
		}
		before, err := principal(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		if err := domain.CheckPrincipalVersion(before, ifMatch); err != nil {
			return err
		}
		for _, b := range c.Budgets {
			if b.Scope != scope || b.ScopeID != id {
				return domain.InvalidParam("budgets", "%s is not a budget of the %s %s", b, scope, id)
			}
		}
		if err := changeBudgets(ctx, tx, c.Budgets); err != nil {
			return err
		}
		if err := changePrincipalLimits(ctx, tx, scope, id, c.Limits); err != nil {
			return err
		}
		if after, err = principal(ctx, tx, scope, id); err != nil {
			return err
		}
		e.Target, e.Before, e.After = string(scope)+":"+id, &before, &after
		return appendAudit(ctx, tx, e)
	})
	if err == nil {
		s.announce(scopeOf(scope, id))
	}
	return after, err
}

// lockPrincipalsOf takes lockPrincipal for each user, then each team, whose
// budget is among budgets: the order CreateKey takes them in.
func lockPrincipalsOf(ctx context.Context, tx pgx.Tx, budgets []domain.Budget) error {
	for _, scope := range []domain.ScopeKind{domain.ScopeUser, domain.ScopeTeam} {
		var locked []string
		for _, b := range budgets {
			if b.Scope != scope || slices.Contains(locked, b.ScopeID) {
				continue
			}
			if err := lockPrincipal(ctx, tx, scope, b.ScopeID); err != nil {
				return err
			}
			locked = append(locked, b.ScopeID)
		}
	}
	return nil
}

// lockPrincipal makes the changes of one user or team take turns, until tx
// ends, so that If-Match holds and what a change saw before is what it
// changed: every transaction that writes a user's or team's budgets
// (changeBudgets) or limits (changeLimitsTx) takes it. Its name must have
// passed checkName: a NUL fails in PostgreSQL.
func lockPrincipal(ctx context.Context, tx pgx.Tx, scope domain.ScopeKind, id string) error {
	_, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('tidygate principal ' || $1 || ' ' || $2, 0))",
		string(scope), id)
	return err
}

// changePrincipalLimits makes the change c to the limits of a user or team
// inside tx; migration 0011's triggers tell every replica's key cache at
// commit.
func changePrincipalLimits(ctx context.Context, tx pgx.Tx, scope domain.ScopeKind, id string, c domain.LimitsChange) error {
	if c.IsZero() {
		return nil
	}
	_, _, err := changeLimitsTx(ctx, tx, domain.LimitScope(scope), id, c.Apply)
	return err
}

// principal reads one user or team.
func principal(ctx context.Context, q querier, scope domain.ScopeKind, id string) (domain.Principal, error) {
	if err := checkName(string(scope), id, true); err != nil {
		return domain.Principal{}, err
	}
	list, err := queryPrincipals(ctx, q, scope, "", 0, id)
	if err != nil {
		return domain.Principal{}, err
	}
	if len(list) == 0 {
		return domain.Principal{Scope: scope, ID: id}, nil
	}
	return list[0], nil
}

// queryPrincipals runs selectPrincipals, for one ID when only is given.
func queryPrincipals(ctx context.Context, q querier, scope domain.ScopeKind, after string, limit int, only ...string) ([]domain.Principal, error) {
	col, ok := principalColumn[scope]
	if !ok {
		return nil, domain.InvalidParam("scope", "%q is neither user nor team", scope)
	}
	sql, args := fmt.Sprintf(principalPage+principalRows, col), []any{string(scope), after, limit}
	if len(only) == 1 {
		sql, args = fmt.Sprintf(principalOne+principalRows, col), []any{string(scope), only[0]}
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Principal
	for rows.Next() {
		var id string
		var keys, active int
		var rpm, tpm, conc int32
		var period, model *string
		var limit *int64
		if err := rows.Scan(&id, &keys, &active, &rpm, &tpm, &conc, &period, &limit, &model); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, domain.Principal{Scope: scope, ID: id, Keys: keys, ActiveKeys: active,
				Limits: domain.Limits{RPM: int(rpm), TPM: int(tpm), MaxConcurrent: int(conc)}})
		}
		if period != nil {
			p := &out[len(out)-1]
			p.Budgets = append(p.Budgets, domain.Budget{Scope: scope, ScopeID: id, Period: domain.Period(*period), Limit: domain.Micros(*limit), Model: *model})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		slices.SortFunc(out[i].Budgets, budgetOrder)
	}
	return out, nil
}

// usageGroups are the SQL expressions of the usage report's groupings, on
// tidygate_usage (u) and on tidygate_reservations (r).
var usageGroups = map[string]struct{ usage, calls string }{
	domain.GroupByTeam:  {"team_id", "team_id"},
	domain.GroupByUser:  {"user_id", "user_id"},
	domain.GroupByModel: {"model", "model"},
	domain.GroupByDay:   {"to_char(day, 'YYYY-MM-DD')", "to_char((reserved_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')"},
}

const selectUsageReport = `SELECT %s AS grp, sum(requests)::bigint, sum(prompt_tokens)::bigint,
	sum(completion_tokens)::bigint, sum(cost_micros)::bigint
FROM tidygate_usage
WHERE day BETWEEN $1 AND $2 AND ($3 = '' OR team_id = $3) AND ($4 = '' OR user_id = $4) AND ($5 = '' OR model = $5)
GROUP BY grp ORDER BY %[1]s COLLATE "C"`

// selectUsageCalls lists the request IDs of settled calls by group, at
// most $6 + 1 per group, oldest first.
const selectUsageCalls = `SELECT grp, id FROM (
	SELECT %s AS grp, id, row_number() OVER (PARTITION BY %[1]s ORDER BY reserved_at, id) AS n
	FROM tidygate_reservations
	WHERE model IS NOT NULL AND reserved_at >= $1 AND reserved_at < $2
		AND ($3 = '' OR team_id = $3) AND ($4 = '' OR user_id = $4) AND ($5 = '' OR model = $5)
) c WHERE n <= $6 + 1 ORDER BY grp COLLATE "C", n`

// UsageReport returns the usage of settled calls q selects, one line per
// group in byte order, with the trace IDs of each group's calls when asked.
// Calls settled before the release that records who they were for have no
// trace IDs in the report.
func (s *KeyStore) UsageReport(ctx context.Context, q domain.UsageQuery) ([]domain.UsageLine, error) {
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	g, ok := usageGroups[q.GroupBy]
	if !ok {
		return nil, domain.InvalidParam("group_by", "group_by must be team, user, model or day")
	}
	for _, f := range []struct{ param, v string }{{"team", q.Team}, {"user", q.User}, {"model", q.Model}} {
		if err := checkName(f.param, f.v, false); err != nil {
			return nil, err
		}
	}
	from, to := domain.PeriodDay.Start(q.From), domain.PeriodDay.Start(q.To)
	var lines []domain.UsageLine
	err := pgkit.WithConn(ctx, s.db, "read the usage report", func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, fmt.Sprintf(selectUsageReport, g.usage), from, to, q.Team, q.User, q.Model)
		if err != nil {
			return err
		}
		lines, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.UsageLine, error) {
			var l domain.UsageLine
			var cost int64
			err := row.Scan(&l.Group, &l.Requests, &l.PromptTokens, &l.CompletionTokens, &cost)
			l.Cost = domain.Micros(cost)
			return l, err
		})
		if err != nil || !q.TraceIDs {
			return err
		}
		byGroup := map[string]*domain.UsageLine{}
		for i := range lines {
			lines[i].TraceIDs = []string{}
			byGroup[lines[i].Group] = &lines[i]
		}
		rows, err = conn.Query(ctx, fmt.Sprintf(selectUsageCalls, g.calls), from, to.Add(24*time.Hour),
			q.Team, q.User, q.Model, domain.MaxTraceIDsPerRow)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var grp, id string
			if err := rows.Scan(&grp, &id); err != nil {
				return err
			}
			l := byGroup[grp]
			switch {
			case l == nil: // settled after the usage was read
			case len(l.TraceIDs) == domain.MaxTraceIDsPerRow:
				l.TraceIDsTruncated = true
			default:
				l.TraceIDs = append(l.TraceIDs, domain.TraceID(id))
			}
		}
		return rows.Err()
	})
	return lines, err
}
