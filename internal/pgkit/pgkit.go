// Package pgkit holds what every package that talks to PostgreSQL shares:
// the SQLSTATE codes tidygate acts on, the one table that classifies
// PostgreSQL failures, the translation of a class into a domain error, and
// the helpers that run a statement or a transaction on a pooled connection.
//
// It is neutral ground: infra's pools and the SQL adapters (postgres,
// mlflow) import it, so that no adapter imports another and no two packages
// disagree about what a failure means.
package pgkit

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
)

// SQLSTATE classes (the first two characters of a code) tidygate acts on.
const (
	ClassConnectionException   = "08"
	ClassDataException         = "22"
	ClassIntegrityViolation    = "23"
	ClassInsufficientResources = "53"
	ClassProgramLimitExceeded  = "54"
	ClassOperatorIntervention  = "57"
)

// SQLSTATE codes tidygate acts on.
const (
	ReadOnlySQLTransaction = "25006" // read_only_sql_transaction: the server became a standby (failover)
	UniqueViolation        = "23505" // unique_violation
	SerializationFailure   = "40001" // serialization_failure
	DeadlockDetected       = "40P01" // deadlock_detected
	TooManyConnections     = "53300" // too_many_connections
	LockNotAvailable       = "55P03" // lock_not_available: lock_timeout passed, or NOWAIT
	QueryCanceled          = "57014" // query_canceled: statement_timeout, or a cancel request
	AdminShutdown          = "57P01" // admin_shutdown
	CrashShutdown          = "57P02" // crash_shutdown
	CannotConnectNow       = "57P03" // cannot_connect_now: the server is starting or stopping
)

// Class is what a failure means to the code that met it.
type Class uint8

// The classes of failure. Other is the zero value: PostgreSQL refused the
// statement for a reason that is a bug or a schema mismatch, so doing the
// same again fails again.
const (
	Other       Class = iota // refused for another reason (syntax, undefined column, …)
	ServerLost               // the server went away or stopped accepting writes: every pooled connection is suspect
	Unreachable              // the server could not be talked to now, or has no room: try again later
	Conflict                 // serialization failure or deadlock: the transaction is worth running again
	LockTimeout              // a lock was not granted within lock_timeout: another transaction holds the row
	Duplicate                // a unique key exists already
	BadData                  // the data itself is refused (data exception, integrity violation, program limit)
)

var classNames = [...]string{
	Other:       "other",
	ServerLost:  "server_lost",
	Unreachable: "unreachable",
	Conflict:    "conflict",
	LockTimeout: "lock_timeout",
	Duplicate:   "duplicate",
	BadData:     "bad_data",
}

// String returns the class's snake_case name.
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(?)"
}

// SQLState returns the SQLSTATE of the PostgreSQL error in err's chain, or
// "" when PostgreSQL did not answer with an error.
func SQLState(err error) string {
	if pg, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pg.Code
	}
	return ""
}

// Classify is the one table from a failure met while talking to PostgreSQL
// to what it means. It is nil-safe (nil is Other) and looks through
// wrapping; a *domain.Error in the chain does not change the answer.
//
//   - ServerLost: class 08 (connection exception), 57P01 admin_shutdown,
//     57P02 crash_shutdown, and 25006 read_only_sql_transaction (after a
//     failover the old primary refuses writes on every connection).
//   - Unreachable: 57P03 cannot_connect_now, 57014 query_canceled, the rest
//     of class 57, class 53 (insufficient resources, including 53300
//     too_many_connections: the existing connections still work), and any
//     failure without a PostgreSQL answer (network errors, timeouts,
//     cancelled contexts, a connection closed under the statement).
//   - Conflict: 40001 serialization_failure and 40P01 deadlock_detected.
//   - LockTimeout: 55P03 lock_not_available.
//   - Duplicate: 23505 unique_violation.
//   - BadData: the rest of classes 22, 23 and 54.
//   - Other: anything else PostgreSQL answered.
func Classify(err error) Class {
	if err == nil {
		return Other
	}
	code := SQLState(err)
	if code == "" {
		if noAnswer(err) {
			return Unreachable
		}
		return Other
	}
	switch code {
	case ReadOnlySQLTransaction, AdminShutdown, CrashShutdown:
		return ServerLost
	case SerializationFailure, DeadlockDetected:
		return Conflict
	case LockNotAvailable:
		return LockTimeout
	case UniqueViolation:
		return Duplicate
	}
	switch code[:min(2, len(code))] {
	case ClassConnectionException:
		return ServerLost
	case ClassInsufficientResources, ClassOperatorIntervention:
		return Unreachable
	case ClassDataException, ClassIntegrityViolation, ClassProgramLimitExceeded:
		return BadData
	}
	return Other
}

// noAnswer reports whether err means that the server did not answer at all.
func noAnswer(err error) bool {
	_, connect := errors.AsType[*pgconn.ConnectError](err)
	_, netErr := errors.AsType[net.Error](err)
	return connect || netErr || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// RetryAfter is what an unavailable database asks callers to wait.
const RetryAfter = time.Second

// Error turns a failure met while doing something ("store the API key")
// into a *domain.Error, by Classify's table: errors already classified pass
// through; ServerLost, Unreachable and Conflict become
// domain.KindUnavailable (code database_unavailable, RetryAfter one
// second); LockTimeout becomes domain.KindUnavailable (code
// database_busy): another call holds a row this one needs; Duplicate and
// BadData become domain.KindInvalid; the rest domain.KindInternal. The
// cause stays in the chain.
func Error(err error, doing string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*domain.Error](err); ok {
		return err
	}
	switch Classify(err) {
	case ServerLost, Unreachable, Conflict:
		return &domain.Error{Kind: domain.KindUnavailable, Code: "database_unavailable",
			Message: "cannot " + doing + ": the database is unavailable", RetryAfter: RetryAfter, Err: err}
	case LockTimeout:
		return &domain.Error{Kind: domain.KindUnavailable, Code: "database_busy",
			Message:    "cannot " + doing + ": another call holds a row it needs longer than the lock timeout; retry",
			RetryAfter: RetryAfter, Err: err}
	case Duplicate:
		return domain.Wrap(domain.KindInvalid, err, "cannot "+doing+": it already exists")
	case BadData:
		return domain.Wrap(domain.KindInvalid, err, "cannot "+doing+": a value is out of range")
	default:
		return domain.Wrap(domain.KindInternal, err, "cannot "+doing)
	}
}

// Conns hands out database connections. infra's pools satisfy it (their
// Acquire applies the acquire deadline), and so does a *pgxpool.Pool.
type Conns interface {
	Acquire(ctx context.Context) (*pgxpool.Conn, error)
}

// poolClassifier is the optional capability of a Conns (infra.Pool has it)
// to see a failure first: a pool that lost its server resets itself, so
// that the next caller reaches the server that replaced it.
type poolClassifier interface {
	Classify(err error) error
}

// Classified returns Error(err, doing), letting db see err first when it
// can (see infra.Pool.Classify).
func Classified(db Conns, err error, doing string) error {
	if c, ok := db.(poolClassifier); ok && err != nil {
		err = c.Classify(err)
	}
	return Error(err, doing)
}

// WithConn runs fn on a connection from db and classifies its failure with
// Classified.
func WithConn(ctx context.Context, db Conns, doing string, fn func(*pgxpool.Conn) error) error {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return Classified(db, err, doing)
	}
	defer conn.Release()
	return Classified(db, fn(conn), doing)
}

// WithTx runs fn in a transaction on a connection from db, commits when fn
// succeeds, rolls back otherwise, and classifies the failure with
// Classified.
func WithTx(ctx context.Context, db Conns, doing string, fn func(pgx.Tx) error) error {
	return WithConn(ctx, db, doing, func(conn *pgxpool.Conn) error {
		return pgx.BeginFunc(ctx, conn, fn)
	})
}

// InTx runs fn on a connection from db as one transaction that fn begins
// with BEGIN in its first batch and commits with COMMIT at the end of its
// last, so that neither costs a round trip of its own (pgx.BeginFunc sends
// each alone). Whatever fn leaves open, after a failure or because it has
// nothing to change, is rolled back; failures are classified with
// Classified.
func InTx(ctx context.Context, db Conns, doing string, fn func(*pgx.Conn) error) error {
	return WithConn(ctx, db, doing, func(pc *pgxpool.Conn) error {
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
