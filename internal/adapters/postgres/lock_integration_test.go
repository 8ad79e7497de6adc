//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestLockedSpendRowBlocksOnlyItsOwnBudget holds one user's spend row
// FOR UPDATE, as an operator's forgotten transaction would, while that
// user's reservations fill the ledger's small pool. With a lock timeout,
// the blocked user's reservations fail with a retryable database_busy error
// and give their connections back, so another user's reservations all pass
// while the row is still held; nothing is left held by the failed ones.
func TestLockedSpendRowBlocksOnlyItsOwnBudget(t *testing.T) {
	_, dsn := migrated(t)
	const poolSize = 2
	ledger := postgres.NewLedger(newPool(t, dsn, poolSize), postgres.LedgerOptions{LockTimeout: 100 * time.Millisecond})
	budgets := func(user string) []domain.Budget {
		return []domain.Budget{{Scope: domain.ScopeUser, ScopeID: user, Period: domain.PeriodDay, Limit: 1000}}
	}
	reserve := func(ctx context.Context, user string, i int) error {
		return ledger.Reserve(ctx, domain.Reservation{ID: fmt.Sprintf("%s-%d", user, i), Budgets: budgets(user), Amount: 1, At: noon})
	}
	// A deadline only so that a regression fails instead of hanging: without
	// the lock timeout, every call below waits for the holder, which waits
	// for them.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, user := range []string{"blocked", "free"} {
		if err := reserve(ctx, user, 0); err != nil {
			t.Fatalf("first reservation of %s: %v", user, err)
		}
		if err := ledger.Release(ctx, user+"-0"); err != nil {
			t.Fatal(err)
		}
	}

	holder, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	var locked int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM tidygate_spend WHERE scope_id = 'blocked' FOR UPDATE) l").Scan(&locked); err != nil || locked != 1 {
		t.Fatalf("lock the blocked user's row: %d rows, %v", locked, err)
	}

	// The blocked user's calls, as many as the pool has connections.
	blockedErrs := make([]error, 2*poolSize)
	var wg sync.WaitGroup
	for i := range blockedErrs {
		wg.Go(func() { blockedErrs[i] = reserve(ctx, "blocked", i+1) })
	}
	// The other user's calls, while the row is still held.
	for i := 1; i <= 3*poolSize; i++ {
		if err := reserve(ctx, "free", i); err != nil {
			t.Fatalf("another user's reservation %d failed while one user's row was locked: %v", i, err)
		}
	}
	wg.Wait()
	for i, err := range blockedErrs {
		de, ok := errors.AsType[*domain.Error](err)
		if !ok || de.Kind != domain.KindUnavailable || de.Code != "database_busy" || de.RetryAfter <= 0 {
			t.Errorf("blocked reservation %d: %v (%+v), want a retryable unavailable database_busy error", i+1, err, de)
		}
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var held int64
	if err := holder.QueryRow(ctx, "SELECT reserved_micros FROM tidygate_spend WHERE scope_id = 'blocked'").Scan(&held); err != nil || held != 0 {
		t.Errorf("the blocked user's row holds %d after its reservations failed (%v), want 0", held, err)
	}
	if err := reserve(ctx, "blocked", 99); err != nil {
		t.Errorf("the blocked user's reservation after the lock ended: %v", err)
	}
}
