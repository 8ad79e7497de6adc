//go:build integration

package integration

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/tidygate/tidygate/internal/pgtest"
)

// pgContainer is a PostgreSQL server of the test's own, on a pinned host
// port, so that it can be stopped and started again under the same DSN.
type pgContainer struct {
	ctr  *tcpostgres.PostgresContainer
	DSN  string
	Addr string // 127.0.0.1:port
}

// newContainer starts a dedicated PostgreSQL container; args are extra
// server options such as "-c", "max_connections=20". Outside CI it skips
// when Docker is unavailable; in CI it fails.
func newContainer(t *testing.T, args ...string) *pgContainer {
	t.Helper()
	if os.Getenv("CI") != "true" {
		testcontainers.SkipIfProviderIsNotHealthy(t)
	}
	addr := freeAddrs(t, 1)[0]
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := []testcontainers.ContainerCustomizer{
		tcpostgres.WithDatabase("app"), tcpostgres.WithUsername("app"), tcpostgres.WithPassword("app"),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{network.MustParsePort("5432/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port}}}
		}),
	}
	if len(args) > 0 {
		opts = append(opts, testcontainers.WithCmdArgs(args...))
	}
	ctr, err := tcpostgres.Run(ctx, pgtest.Image(), opts...)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("start PostgreSQL container from %s: %v", pgtest.Image(), err)
	}
	dsn, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	return &pgContainer{ctr: ctr, DSN: dsn, Addr: addr}
}

// Stop stops the server (connections are refused until Start).
func (c *pgContainer) Stop(t *testing.T) {
	t.Helper()
	timeout := 10 * time.Second
	if err := c.ctr.Stop(context.Background(), &timeout); err != nil {
		t.Fatal(err)
	}
}

// Start starts the server again on the same port and waits until it answers.
func (c *pgContainer) Start(t *testing.T) {
	t.Helper()
	if err := c.ctr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.DSN)
		if err == nil {
			_ = conn.Ping(ctx)
			conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("PostgreSQL did not come back within 60s")
}

// query runs one statement on dsn and scans a single row.
func queryRow(t *testing.T, dsn, sql string, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
