// Package postgres stores the gateway's API keys, budgets, spend and usage,
// and the Responses API's stored responses, in PostgreSQL: the key store,
// spend ledger and response store ports, and the migrations that create
// their tables.
//
// Every failure leaves this package as a *domain.Error, classified by
// pgkit's one table (pgkit.Error): a database that cannot be reached or does
// not answer in time is domain.KindUnavailable (with a one-second
// RetryAfter), a constraint the input breaks is domain.KindInvalid, and
// anything else is domain.KindInternal.
package postgres

import (
	"cmp"
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
)

// Conns hands out database connections. The shared pool satisfies it (its
// Acquire applies the acquire deadline), and so does a *pgxpool.Pool.
type Conns interface {
	Acquire(ctx context.Context) (*pgxpool.Conn, error)
}

// MaxNameBytes is the longest user, team, scope or model name the tables
// accept, in bytes: names are part of primary keys, and PostgreSQL's b-tree
// entries must stay well under a third of a page.
const MaxNameBytes = 512

// operationBounder is a pool that bounds each whole database operation
// (infra.Pool does); without it, operations run on the caller's context.
type operationBounder interface {
	OperationTimeout() time.Duration
}

// bound gives one operation (its acquire and every statement) the pool's
// operation deadline, so that a silent peer cannot hold a request forever.
// Each exported method calls it first; its closures then see the bounded
// context.
func bound(ctx context.Context, db Conns) (context.Context, context.CancelFunc) {
	if b, ok := db.(operationBounder); ok && b.OperationTimeout() > 0 {
		return context.WithTimeout(ctx, b.OperationTimeout())
	}
	return ctx, func() {}
}

// checkName returns a domain.KindInvalid error naming param when s cannot be
// stored as a name: longer than MaxNameBytes, not UTF-8, or holding a NUL
// byte (which PostgreSQL's text cannot hold). Empty names fail only when
// required.
func checkName(param, s string, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return domain.InvalidParam(param, "%s must not be empty", param)
	case len(s) > MaxNameBytes:
		return domain.InvalidParam(param, "%s is %d bytes long; at most %d are allowed", param, len(s), MaxNameBytes)
	case !utf8.ValidString(s):
		return domain.InvalidParam(param, "%s is not valid UTF-8", param)
	case strings.ContainsRune(s, 0):
		return domain.InvalidParam(param, "%s must not contain a NUL character", param)
	}
	return nil
}

// checkBudget returns a domain.KindInvalid error when b names an unknown
// scope or period, an unstorable scope ID, or a negative limit.
func checkBudget(b domain.Budget) error {
	if err := b.Validate(); err != nil {
		return err
	}
	return checkName("budget", b.ScopeID, false)
}

// budgetOrder orders budgets user before team before key, then by scope
// ID, then day before month before week before rolling windows (shorter
// first), then on every model before one model or group: the order in
// which callers list them, and the one order in which every transaction
// locks spend rows and rolling windows, so that two never deadlock. The
// user, team, day and month ranks are those of earlier releases, whose
// replicas lock the same rows during a rolling upgrade.
func budgetOrder(a, b domain.Budget) int {
	return cmp.Or(
		scopeRank(a.Scope)-scopeRank(b.Scope),
		strings.Compare(a.ScopeID, b.ScopeID),
		periodRank(a.Period)-periodRank(b.Period),
		cmp.Compare(windowOf(a.Period), windowOf(b.Period)),
		strings.Compare(a.Model, b.Model),
	)
}

func scopeRank(s domain.ScopeKind) int {
	switch s {
	case domain.ScopeUser:
		return 0
	case domain.ScopeTeam:
		return 1
	}
	return 2
}

func periodRank(p domain.Period) int {
	switch p {
	case domain.PeriodDay:
		return 0
	case domain.PeriodMonth:
		return 1
	case domain.PeriodWeek:
		return 2
	}
	return 3
}

func windowOf(p domain.Period) time.Duration {
	d, _ := p.Window()
	return d
}

// counterName is the name a budget's spend is kept under, in the period
// column of the spend tables: the period, and after a space the model or
// group the budget is on (periods hold no spaces). A budget on every model
// is kept under its period alone, as earlier releases keep it.
func counterName(b domain.Budget) string {
	if b.Model == "" {
		return string(b.Period)
	}
	return string(b.Period) + " " + b.Model
}

// parseCounterName splits a counterName into its period and model.
func parseCounterName(s string) (domain.Period, string) {
	p, m, _ := strings.Cut(s, " ")
	return domain.Period(p), m
}
