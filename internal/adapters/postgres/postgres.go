// Package postgres stores the gateway's API keys, budgets, spend and usage in
// PostgreSQL: the key store and the spend ledger ports, and the migrations
// that create their tables.
//
// Every failure leaves this package as a *domain.Error: a database that
// cannot be reached or does not answer in time is domain.KindUnavailable
// (with a one-second RetryAfter), a constraint the input breaks is
// domain.KindInvalid, and anything else is domain.KindInternal.
package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// retryAfter is what an unavailable database asks callers to wait.
const retryAfter = time.Second

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

// withConn runs fn on a connection from db and classifies its failure.
func withConn(ctx context.Context, db Conns, doing string, fn func(*pgxpool.Conn) error) error {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return dbError(err, doing)
	}
	defer conn.Release()
	return dbError(fn(conn), doing)
}

// withTx runs fn in a transaction on a connection from db, commits when fn
// succeeds, and classifies the failure otherwise.
func withTx(ctx context.Context, db Conns, doing string, fn func(pgx.Tx) error) error {
	return withConn(ctx, db, doing, func(conn *pgxpool.Conn) error {
		return pgx.BeginFunc(ctx, conn, fn)
	})
}

// inTx runs fn on a connection from db as one transaction that fn begins
// with BEGIN in its first batch and commits with COMMIT at the end of its
// last, so that neither costs a round trip of its own (pgx.BeginFunc sends
// each alone). Whatever fn leaves open, after a failure or because it has
// nothing to change, is rolled back; failures are classified as withConn
// does.
func inTx(ctx context.Context, db Conns, doing string, fn func(*pgx.Conn) error) error {
	return withConn(ctx, db, doing, func(pc *pgxpool.Conn) error {
		conn := pc.Conn()
		err := fn(conn)
		if conn.IsClosed() || conn.PgConn().TxStatus() == 'I' {
			return err
		}
		if _, rbErr := conn.Exec(ctx, "ROLLBACK"); rbErr != nil {
			// The pool closes a connection released inside a transaction.
			return errors.Join(err, rbErr)
		}
		return err
	})
}

// dbError classifies a failure that happened while doing something: errors
// already classified pass through, connection-class failures become
// domain.KindUnavailable, rows the input makes impossible become
// domain.KindInvalid, and the rest domain.KindInternal.
func dbError(err error, doing string) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	if unreachable(err) {
		return &domain.Error{Kind: domain.KindUnavailable, Code: "database_unavailable",
			Message: "cannot " + doing + ": the database is unavailable", RetryAfter: retryAfter, Err: err}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "23505": // unique_violation
			return domain.Wrap(domain.KindInvalid, err, "cannot "+doing+": it already exists")
		case strings.HasPrefix(pg.Code, "22"): // data exception: a value the column cannot hold
			return domain.Wrap(domain.KindInvalid, err, "cannot "+doing+": a value is out of range")
		}
	}
	return domain.Wrap(domain.KindInternal, err, "cannot "+doing)
}

// unreachable reports whether err means that the database could not be
// talked to (now), as opposed to having refused the statement.
func unreachable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "57P01", "57P02", "57P03", // admin shutdown, crash shutdown, cannot connect now
			"53300",          // too many connections
			"40001", "40P01": // serialization failure, deadlock: transient, worth a retry
			return true
		}
		return strings.HasPrefix(pg.Code, "08") // connection exception
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connect) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
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

// budgetOrder orders budgets user before team, then by scope ID, then day
// before month: the order in which callers list them, and the one order in
// which every transaction locks spend rows, so that two never deadlock.
func budgetOrder(a, b domain.Budget) int {
	if c := scopeRank(a.Scope) - scopeRank(b.Scope); c != 0 {
		return c
	}
	if c := strings.Compare(a.ScopeID, b.ScopeID); c != 0 {
		return c
	}
	return periodRank(a.Period) - periodRank(b.Period)
}

func scopeRank(s domain.ScopeKind) int {
	if s == domain.ScopeUser {
		return 0
	}
	return 1
}

func periodRank(p domain.Period) int {
	if p == domain.PeriodDay {
		return 0
	}
	return 1
}
