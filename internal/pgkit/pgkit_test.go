package pgkit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
)

func pgErr(code string) error { return &pgconn.PgError{Code: code} }

// TestClassifyTable pins the one table, including the three codes on which
// the packages that used to classify for themselves disagreed: 40001,
// 53300 and 25006.
func TestClassifyTable(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want pgkit.Class
		kind domain.Kind
	}{
		{"serialization failure", pgErr(pgkit.SerializationFailure), pgkit.Conflict, domain.KindUnavailable},
		{"deadlock", pgErr(pgkit.DeadlockDetected), pgkit.Conflict, domain.KindUnavailable},
		{"too many connections", pgErr(pgkit.TooManyConnections), pgkit.Unreachable, domain.KindUnavailable},
		{"out of memory", pgErr("53200"), pgkit.Unreachable, domain.KindUnavailable},
		{"read-only after failover", pgErr(pgkit.ReadOnlySQLTransaction), pgkit.ServerLost, domain.KindUnavailable},
		{"admin shutdown", pgErr(pgkit.AdminShutdown), pgkit.ServerLost, domain.KindUnavailable},
		{"crash shutdown", pgErr(pgkit.CrashShutdown), pgkit.ServerLost, domain.KindUnavailable},
		{"connection failure", pgErr("08006"), pgkit.ServerLost, domain.KindUnavailable},
		{"cannot connect now", pgErr(pgkit.CannotConnectNow), pgkit.Unreachable, domain.KindUnavailable},
		{"statement timeout", pgErr(pgkit.QueryCanceled), pgkit.Unreachable, domain.KindUnavailable},
		{"lock timeout", pgErr(pgkit.LockNotAvailable), pgkit.LockTimeout, domain.KindUnavailable},
		{"unique violation", pgErr(pgkit.UniqueViolation), pgkit.Duplicate, domain.KindInvalid},
		{"bad encoding", pgErr("22021"), pgkit.BadData, domain.KindInvalid},
		{"foreign key", pgErr("23503"), pgkit.BadData, domain.KindInvalid},
		{"program limit", pgErr("54000"), pgkit.BadData, domain.KindInvalid},
		{"syntax error", pgErr("42601"), pgkit.Other, domain.KindInternal},
		{"undefined column", pgErr("42703"), pgkit.Other, domain.KindInternal},
		{"wrapped", fmt.Errorf("insert: %w", pgErr(pgkit.AdminShutdown)), pgkit.ServerLost, domain.KindUnavailable},
		{"acquire deadline", fmt.Errorf("acquire: %w", context.DeadlineExceeded), pgkit.Unreachable, domain.KindUnavailable},
		{"canceled", context.Canceled, pgkit.Unreachable, domain.KindUnavailable},
		{"network", opErr, pgkit.Unreachable, domain.KindUnavailable},
		{"connection closed", io.ErrUnexpectedEOF, pgkit.Unreachable, domain.KindUnavailable},
		{"no rows", pgx.ErrNoRows, pgkit.Other, domain.KindInternal},
		{"anything else", errors.New("boom"), pgkit.Other, domain.KindInternal},
	} {
		if got := pgkit.Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify = %v, want %v", tc.name, got, tc.want)
		}
		err := pgkit.Error(tc.err, "test")
		de, ok := errors.AsType[*domain.Error](err)
		if !ok {
			t.Fatalf("%s: Error returned %T, want *domain.Error", tc.name, err)
		}
		if de.Kind != tc.kind {
			t.Errorf("%s: kind = %v, want %v (%v)", tc.name, de.Kind, tc.kind, err)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v lost its cause", tc.name, err)
		}
		if de.Kind == domain.KindUnavailable && de.RetryAfter != pgkit.RetryAfter {
			t.Errorf("%s: RetryAfter = %v, want %v", tc.name, de.RetryAfter, pgkit.RetryAfter)
		}
	}
}

func TestErrorPassesClassifiedErrorsAndNil(t *testing.T) {
	if pgkit.Error(nil, "test") != nil {
		t.Error("Error(nil) is not nil")
	}
	if pgkit.Classify(nil) != pgkit.Other {
		t.Error("Classify(nil) is not Other")
	}
	orig := domain.Errorf(domain.KindNotFound, "gone")
	if got := pgkit.Error(orig, "test"); got != error(orig) { //nolint:errorlint // identity: must pass through
		t.Errorf("Error(%v) = %v, want it unchanged", orig, got)
	}
}

func TestLockTimeoutSaysWhatHappened(t *testing.T) {
	de, _ := errors.AsType[*domain.Error](pgkit.Error(pgErr(pgkit.LockNotAvailable), "reserve"))
	if de == nil || de.Code != "database_busy" {
		t.Fatalf("lock timeout = %+v, want code database_busy", de)
	}
}

// resettingConns records what the pool saw, as infra.Pool's Classify does.
type resettingConns struct {
	pgkit.Conns
	seen []error
}

func (c *resettingConns) Classify(err error) error {
	c.seen = append(c.seen, err)
	return err
}

func TestClassifiedLetsThePoolSeeFirst(t *testing.T) {
	c := &resettingConns{}
	cause := pgErr(pgkit.ReadOnlySQLTransaction)
	if err := pgkit.Classified(c, cause, "write"); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("kind = %v, want unavailable", domain.KindOf(err))
	}
	if len(c.seen) != 1 || c.seen[0] != cause { //nolint:errorlint // identity
		t.Errorf("pool saw %v, want %v", c.seen, cause)
	}
	if pgkit.Classified(c, nil, "write") != nil || len(c.seen) != 1 {
		t.Error("Classified(nil) is not nil or bothered the pool")
	}
}
