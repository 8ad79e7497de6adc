package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.AlertOutbox = (*Ledger)(nil)

// claimAlerts leases up to $3 due, undelivered alerts: replicas claiming
// together skip each other's rows, and a claimed alert is not due again
// until its lease ($2) has passed, so that a replica that dies while
// delivering leaves it to another.
const claimAlerts = `UPDATE tidygate_budget_alerts a
SET attempts = a.attempts + 1, next_attempt_at = $1::timestamptz + $2::bigint * interval '1 microsecond'
FROM (SELECT id FROM tidygate_budget_alerts
	WHERE delivered_at IS NULL AND next_attempt_at <= $1::timestamptz
	ORDER BY next_attempt_at, id
	LIMIT $3
	FOR UPDATE SKIP LOCKED) due
WHERE a.id = due.id
RETURNING a.id, a.scope_kind, a.scope_id, a.period, a.period_start, a.threshold, a.limit_micros, a.spent_micros,
	a.fired_at, a.attempts - 1`

// ClaimAlerts returns up to n undelivered alerts due at now, oldest first,
// and moves their next attempt to now+lease.
func (l *Ledger) ClaimAlerts(ctx context.Context, now time.Time, n int, lease time.Duration) ([]domain.BudgetAlert, error) {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	var out []domain.BudgetAlert
	err := pgkit.WithConn(ctx, l.db, "claim budget alerts", func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, claimAlerts, now.UTC(), lease.Microseconds(), n)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.BudgetAlert, error) {
			var a domain.BudgetAlert
			var kind, scopeID, name string
			var limit, spent int64
			err := row.Scan(&a.ID, &kind, &scopeID, &name, &a.PeriodStart, &a.Threshold, &limit, &spent, &a.At, &a.Attempts)
			a.Budget = storedBudget(kind, scopeID, name, &limit)
			a.Spent, a.PeriodStart, a.At = domain.Micros(spent), a.PeriodStart.UTC(), a.At.UTC()
			return a, err
		})
		return err
	})
	return out, err
}

// AlertDelivered marks the alert delivered.
func (l *Ledger) AlertDelivered(ctx context.Context, id int64) error {
	return l.alertExec(ctx, "mark a budget alert delivered",
		`UPDATE tidygate_budget_alerts SET delivered_at = now(), last_error = NULL WHERE id = $1`, id)
}

// AlertFailed sets the alert's next attempt and notes why the last failed.
func (l *Ledger) AlertFailed(ctx context.Context, id int64, next time.Time, why string) error {
	if len(why) > 1000 {
		why = strings.ToValidUTF8(why[:1000], "")
	}
	return l.alertExec(ctx, "reschedule a budget alert",
		`UPDATE tidygate_budget_alerts SET next_attempt_at = $2, last_error = $3 WHERE id = $1 AND delivered_at IS NULL`,
		id, next.UTC(), why)
}

func (l *Ledger) alertExec(ctx context.Context, doing, sql string, args ...any) error {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	return pgkit.WithConn(ctx, l.db, doing, func(conn *pgxpool.Conn) error {
		_, err := conn.Exec(ctx, sql, args...)
		return err
	})
}
