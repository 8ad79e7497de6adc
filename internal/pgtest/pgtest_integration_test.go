//go:build integration

package pgtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestNew checks the plumbing end to end: a server (container or
// TEST_DATABASE_URL), a fresh database per call, and a working connection.
func TestNew(t *testing.T) {
	start := time.Now()
	dsn := pgtest.New(t)
	t.Logf("database ready in %v (TEST_DATABASE_URL set: %t, image: %s)",
		time.Since(start).Round(time.Millisecond), os.Getenv("TEST_DATABASE_URL") != "", pgtest.Image())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)

	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	var db, version string
	if err := conn.QueryRow(ctx, "SELECT current_database(), version()").Scan(&db, &version); err != nil {
		t.Fatalf("query: %v", err)
	}
	t.Logf("connected to %s: %s", db, version)

	// A second database on the same server is a different, empty one.
	other := pgtest.New(t)
	if other == dsn {
		t.Fatalf("New returned the same DSN twice: %s", dsn)
	}
}
