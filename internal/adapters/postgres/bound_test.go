package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
)

// silentPool hangs every acquire until its context ends, like a pool whose
// database went silent; it bounds operations as infra.Pool does.
type silentPool struct{ timeout time.Duration }

func (p silentPool) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (p silentPool) OperationTimeout() time.Duration { return p.timeout }

func TestOperationsAreBoundedByThePool(t *testing.T) {
	store := postgres.NewKeyStore(silentPool{timeout: 50 * time.Millisecond})
	_, err := store.CallerByKeyHash(context.Background(), domain.HashKey("tg-some-key-0000000000000000"))
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("err = %v, want unavailable once the operation deadline passes", err)
	}
	ledger := postgres.NewLedger(silentPool{timeout: 50 * time.Millisecond}, postgres.LedgerOptions{})
	err = ledger.Reserve(context.Background(), domain.Reservation{ID: "r1", Amount: 1, At: time.Now()})
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("reserve: err = %v, want unavailable", err)
	}
}
