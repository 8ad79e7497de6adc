package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PooledSelect1 returns a benchmark of one pooled query as an application
// makes it: acquire a connection from pool, run SELECT 1, read the row,
// release the connection. Run it with testing.Benchmark, or call it from a
// Benchmark function.
func PooledSelect1(pool *pgxpool.Pool) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var one int
			err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			conn.Release()
			if err != nil || one != 1 {
				b.Fatalf("SELECT 1 = %d, %v", one, err)
			}
		}
	}
}

// PooledInsert returns a benchmark of one durable write: acquire a
// connection, insert one row into table (which must have a single integer
// column) in its own transaction, so that the commit waits for the
// write-ahead log to reach the disk, and release. It measures what every
// synchronous commit on the request path costs on this server.
func PooledInsert(pool *pgxpool.Pool, table string) func(*testing.B) {
	stmt := "INSERT INTO " + pgx.Identifier{table}.Sanitize() + " VALUES ($1)"
	return func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := pool.Exec(ctx, stmt, i); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// ConnSelect1 returns a benchmark of the query alone on one open
// connection, with no pool: the round trip every pooled query pays.
func ConnSelect1(conn *pgx.Conn) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			var one int
			if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				b.Fatalf("SELECT 1 = %d, %v", one, err)
			}
		}
	}
}

// ConnectSelect1 returns a benchmark of the same query on a new connection
// each time: connect to dsn, run SELECT 1, close.
func ConnectSelect1(dsn string) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			var one int
			err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			_ = conn.Close(ctx)
			if err != nil || one != 1 {
				b.Fatalf("SELECT 1 = %d, %v", one, err)
			}
		}
	}
}

// PingEveryAcquire makes cfg's pool ping each connection before handing it
// out, as SQLAlchemy's pool_pre_ping does (pgx by default pings only
// connections idle for more than a second).
func PingEveryAcquire(cfg *pgxpool.Config) {
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		return c.Ping(ctx) == nil, nil
	}
}

// FormatBenchmark writes r as a line of `go test -bench` output, which
// benchstat reads: name (with the -GOMAXPROCS suffix go test adds),
// iterations, ns/op, and B/op and allocs/op when r has them.
func FormatBenchmark(name string, r testing.BenchmarkResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Benchmark%s-%d\t%8d\t%12.0f ns/op", name, runtime.GOMAXPROCS(0), r.N, float64(r.NsPerOp()))
	if r.MemAllocs > 0 || r.MemBytes > 0 {
		fmt.Fprintf(&sb, "\t%8d B/op\t%6d allocs/op", r.AllocedBytesPerOp(), r.AllocsPerOp())
	}
	for _, unit := range sortedKeys(r.Extra) {
		fmt.Fprintf(&sb, "\t%12.1f %s", r.Extra[unit], unit)
	}
	return sb.String()
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
