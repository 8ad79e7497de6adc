// Package pgtest gives tests a real, empty PostgreSQL database.
//
// The server comes from TEST_DATABASE_URL when it is set (outside CI, to reuse
// a local server), otherwise from one testcontainers-go container per test
// binary, started from TEST_PG_IMAGE (default postgres:17-alpine; without a
// registry use a locally built image such as localhost/tidygate-pg:15). Each
// call to New creates a fresh database on that server and drops it when the
// test ends.
//
// With CI=true a missing Docker or PostgreSQL fails the test instead of
// skipping it, so that integration tests cannot pass by not running.
package pgtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// DefaultImage is the PostgreSQL image used when TEST_PG_IMAGE is not set.
const DefaultImage = "postgres:17-alpine"

var (
	serverOnce sync.Once
	serverDSN  string
	serverErr  error
)

// ServerDSN returns the DSN of the shared test server's maintenance database,
// starting the container on first use. It skips (or, in CI, fails) the test
// when no server can be had.
func ServerDSN(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	serverOnce.Do(func() { serverDSN, serverErr = startServer() })
	if serverErr != nil {
		unavailable(t, serverErr)
	}
	return serverDSN
}

// New creates an empty database on the test server and returns its DSN. The
// database is dropped when the test ends.
func New(t testing.TB) string {
	t.Helper()
	admin := ServerDSN(t)
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unavailable(t, fmt.Errorf("connect to test server: %w", err))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return WithDatabase(t, admin, name)
}

// WithDatabase returns dsn with its database name replaced.
func WithDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: parse dsn: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Image returns the image the container is started from.
func Image() string { return cmp.Or(os.Getenv("TEST_PG_IMAGE"), DefaultImage) }

func startServer() (string, error) {
	if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
		return dsn, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := tcpostgres.Run(ctx, Image(),
		tcpostgres.WithDatabase("app"),
		tcpostgres.WithUsername("app"),
		tcpostgres.WithPassword("app"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return "", fmt.Errorf("start PostgreSQL container from %s: %w", Image(), err)
	}
	// The container lives as long as the test binary; without Ryuk it is
	// removed by the sweep in .ci/run and the Makefile.
	return ctr.ConnectionString(ctx, "sslmode=disable")
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: PostgreSQL is required in CI: %v", err)
	}
	t.Skipf("pgtest: no PostgreSQL (set TEST_DATABASE_URL or start Docker): %v", err)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
