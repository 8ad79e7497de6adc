//go:build integration

package postgres_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// TestMigrateFromManyReplicasAtOnce starts five "replicas" migrating one
// empty database together, then migrates it again: every migration is
// applied once and the tables are there.
func TestMigrateFromManyReplicasAtOnce(t *testing.T) {
	dsn := pgtest.New(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 5 {
		pool := newPool(t, dsn, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := postgres.Migrate(ctx, pool); err != nil {
				t.Errorf("Migrate: %v", err)
			}
		}()
	}
	wg.Wait()
	pool := newPool(t, dsn, 2)
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	var applied, distinct int
	if err := pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM tidygate_schema_migrations").Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if applied != len(files) || distinct != len(files) {
		t.Errorf("tidygate_schema_migrations has %d rows of %d versions, want each of the %d migrations once", applied, distinct, len(files))
	}
	var tables int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename IN
		('tidygate_api_keys', 'tidygate_budgets', 'tidygate_spend', 'tidygate_reservations',
		 'tidygate_reservation_holds', 'tidygate_usage')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 6 {
		t.Errorf("%d of the 6 gateway tables exist", tables)
	}
}
