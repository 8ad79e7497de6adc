package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// noConns fails the test if anything asks it for a connection: input
// validation must refuse before touching the database.
type noConns struct{ t *testing.T }

func (c noConns) Acquire(context.Context) (*pgxpool.Conn, error) {
	c.t.Error("a connection was acquired")
	return nil, errors.New("no connections in this test")
}

// TestUnreachableDatabaseIsUnavailable points the adapters at a port nobody
// listens on: every method fails with domain.KindUnavailable and a
// RetryAfter, never with an unclassified error.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	keys, ledger := postgres.NewKeyStore(pool), postgres.NewLedger(pool, postgres.LedgerOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	budgets := []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "u", Period: domain.PeriodDay, Limit: 1}}
	calls := map[string]func() error{
		"Migrate":         func() error { return postgres.Migrate(ctx, pool) },
		"CallerByKeyHash": func() error { _, err := keys.CallerByKeyHash(ctx, "h"); return err },
		"Create":          func() error { _, _, err := keys.Create(ctx, postgres.NewKey{User: "u", Team: "t"}); return err },
		"List":            func() error { _, err := keys.List(ctx); return err },
		"Revoke":          func() error { return keys.Revoke(ctx, "key_x") },
		"Reserve": func() error {
			return ledger.Reserve(ctx, domain.Reservation{ID: "r", Budgets: budgets, Amount: 1, At: at})
		},
		"Reserve free": func() error { return ledger.Reserve(ctx, domain.Reservation{ID: "r", Amount: 1, At: at}) },
		"Settle":       func() error { return ledger.Settle(ctx, ports.Settlement{ReservationID: "r", At: at}) },
		"Release":      func() error { return ledger.Release(ctx, "r") },
		"ExpireStale":  func() error { _, err := ledger.ExpireStale(ctx, time.Hour); return err },
		"Report":       func() error { _, err := ledger.Report(ctx, domain.Caller{Budgets: budgets}, at, at); return err },
	}
	for name, call := range calls {
		err := call()
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindUnavailable || de.RetryAfter <= 0 {
			t.Errorf("%s: error = %v, want %v with a RetryAfter", name, err, domain.KindUnavailable)
		}
	}
}

// TestInvalidInputNeverReachesTheDatabase checks that input the tables
// cannot hold is refused with domain.KindInvalid before any connection is
// taken.
func TestInvalidInputNeverReachesTheDatabase(t *testing.T) {
	keys, ledger := postgres.NewKeyStore(noConns{t}), postgres.NewLedger(noConns{t}, postgres.LedgerOptions{})
	ctx := context.Background()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	calls := map[string]func() error{
		"Create without user": func() error { _, _, err := keys.Create(ctx, postgres.NewKey{Team: "t"}); return err },
		"EnsureKey bad secret": func() error {
			_, err := keys.EnsureKey(ctx, "secret", postgres.NewKey{User: "u", Team: "t"})
			return err
		},
		"Reserve negative": func() error { return ledger.Reserve(ctx, domain.Reservation{ID: "r", Amount: -1, At: at}) },
		"Settle negative":  func() error { return ledger.Settle(ctx, ports.Settlement{ReservationID: "r", Cost: -1}) },
		"ExpireStale 0":    func() error { _, err := ledger.ExpireStale(ctx, 0); return err },
		"Report bad budget": func() error {
			_, err := ledger.Report(ctx, domain.Caller{Budgets: []domain.Budget{{Scope: "org", Period: domain.PeriodDay}}}, at, at)
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, domain.KindInvalid) {
			t.Errorf("%s: error = %v, want %v", name, err, domain.KindInvalid)
		}
	}
}

// TestGarbageKeyHashIsUnauthenticated checks that a hash no key can have is
// refused as an invalid key without a query.
func TestGarbageKeyHashIsUnauthenticated(t *testing.T) {
	keys := postgres.NewKeyStore(noConns{t})
	for _, hash := range []string{"", "a\x00b", "\xff", string(make([]byte, postgres.MaxNameBytes+1))} {
		if _, err := keys.CallerByKeyHash(context.Background(), hash); !errors.Is(err, domain.KindUnauthenticated) {
			t.Errorf("CallerByKeyHash(%q) error = %v, want %v", hash, err, domain.KindUnauthenticated)
		}
	}
}
