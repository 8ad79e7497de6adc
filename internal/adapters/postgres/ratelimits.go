package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
)

// The rate and concurrency limits of users and teams live in
// tidygate_rate_limits, one row per user or team; every key of a user
// (team) reads its user's (team's) row with the key.

// checkLimits returns a domain.KindInvalid error naming the first of l's
// limits that cannot be stored; param prefixes the name ("user_limits").
func checkLimits(param string, l domain.Limits) error {
	for _, f := range []struct {
		name string
		v    int
	}{{"rpm", l.RPM}, {"tpm", l.TPM}, {"max_concurrent", l.MaxConcurrent}} {
		if f.v < 0 || f.v > maxInt32 {
			return domain.InvalidParam(param+"."+f.name, "%s %s must be between 0 and %d", param, f.name, maxInt32)
		}
	}
	return nil
}

// checkLimitScope refuses a scope that has no stored limits (only users
// and teams have), or an ID that cannot be stored.
func checkLimitScope(scope domain.LimitScope, id string) error {
	if scope != domain.LimitUser && scope != domain.LimitTeam {
		return domain.InvalidParam("scope", "only a user's or a team's limits are stored, not a %s's", scope)
	}
	return checkName(string(scope), id, true)
}

// rowQuerier runs a one-row query on a connection or in a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readLimits reads the limits of scope id, with suffix (a locking clause)
// appended to the query; a user or team without a row has none (the zero
// Limits).
func readLimits(ctx context.Context, q rowQuerier, scope domain.LimitScope, id, suffix string) (domain.Limits, error) {
	var rpm, tpm, conc int32
	err := q.QueryRow(ctx, "SELECT rpm, tpm, max_concurrent FROM tidygate_rate_limits WHERE scope_kind = $1 AND scope_id = $2"+suffix,
		string(scope), id).Scan(&rpm, &tpm, &conc)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Limits{}, nil
	}
	return domain.Limits{RPM: int(rpm), TPM: int(tpm), MaxConcurrent: int(conc)}, err
}

// changeLimitsTx replaces the limits of scope id by change(their current
// limits), inside tx, with their row locked meanwhile so that two changes
// of one user's limits never lose one another's. It returns the limits
// before and after.
func changeLimitsTx(ctx context.Context, tx pgx.Tx, scope domain.LimitScope, id string,
	change func(domain.Limits) domain.Limits) (before, after domain.Limits, err error) {
	if scope == domain.LimitUser || scope == domain.LimitTeam {
		if err := lockPrincipal(ctx, tx, domain.ScopeKind(scope), id); err != nil {
			return before, after, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO tidygate_rate_limits (scope_kind, scope_id) VALUES ($1, $2)
		ON CONFLICT (scope_kind, scope_id) DO NOTHING`, string(scope), id); err != nil {
		return before, after, err
	}
	if before, err = readLimits(ctx, tx, scope, id, " FOR UPDATE"); err != nil {
		return before, after, err
	}
	after = change(before)
	_, err = tx.Exec(ctx, `UPDATE tidygate_rate_limits SET rpm = $3, tpm = $4, max_concurrent = $5
		WHERE scope_kind = $1 AND scope_id = $2`, string(scope), id, after.RPM, after.TPM, after.MaxConcurrent)
	return before, after, err
}

// Limits returns the rate and concurrency limits of a user or a team
// (domain.LimitUser, domain.LimitTeam); one without any has the zero
// Limits.
func (s *KeyStore) Limits(ctx context.Context, scope domain.LimitScope, id string) (domain.Limits, error) {
	if err := checkLimitScope(scope, id); err != nil {
		return domain.Limits{}, err
	}
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	var l domain.Limits
	err := pgkit.WithConn(ctx, s.db, "read the rate limits", func(conn *pgxpool.Conn) error {
		var err error
		l, err = readLimits(ctx, conn, scope, id, "")
		return err
	})
	return l, err
}

// SetLimits replaces the rate and concurrency limits of a user or a team
// by l (a zero field removes that limit) and stores the audit entry e,
// with the limits before and after, in the same transaction. Every key of
// the user or team has the new limits from its next call on, on every
// replica. It returns the limits as stored.
func (s *KeyStore) SetLimits(ctx context.Context, scope domain.LimitScope, id string, l domain.Limits, e domain.AuditEntry) (domain.Limits, error) {
	if err := checkLimitScope(scope, id); err != nil {
		return domain.Limits{}, err
	}
	if err := checkLimits("limits", l); err != nil {
		return domain.Limits{}, err
	}
	ctx, cancel := bound(ctx, s.db)
	defer cancel()
	err := pgkit.WithTx(ctx, s.db, "set the rate limits", func(tx pgx.Tx) error {
		before, after, err := changeLimitsTx(ctx, tx, scope, id, func(domain.Limits) domain.Limits { return l })
		if err != nil {
			return err
		}
		target := domain.LimitsOf{Scope: scope, ID: id}
		b, a := target, target
		b.Limits, a.Limits = before, after
		e.Target, e.Before, e.After = target.Name(), &b, &a
		return appendAudit(ctx, tx, e)
	})
	if err != nil {
		return domain.Limits{}, err
	}
	return l, nil
}
