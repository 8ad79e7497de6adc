//go:build integration

package bench_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/bench"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// BenchmarkAfterIdle times each of the floor's steps back to back, as the
// floor's probes make them, and after a millisecond of idleness, as each
// step of a call at concurrency 1 finds the processes and disk it needs: a
// prepared SELECT 1; a write committed asynchronously in one batch (BEGIN,
// SET LOCAL synchronous_commit TO off, a one-row INSERT, COMMIT), the shape
// of a reservation without budgets; and the fsync probe's append. The
// metric op-µs is the step alone, without the pause before it.
//
//	go test -tags integration -run '^$' -bench AfterIdle ./internal/bench
func BenchmarkAfterIdle(b *testing.B) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.New(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE holds (id text PRIMARY KEY, amount bigint NOT NULL, at timestamptz NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	n := 0
	selectOne := func() error {
		var one int
		return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	write := func() error {
		n++
		batch := &pgx.Batch{}
		batch.Queue("BEGIN")
		batch.Queue("SET LOCAL synchronous_commit TO off")
		batch.Queue("INSERT INTO holds (id, amount, at) VALUES ($1, $2, $3)", fmt.Sprintf("hold-%d", n), int64(1000), time.Now())
		batch.Queue("COMMIT")
		return conn.SendBatch(ctx, batch).Close()
	}
	fsync, err := bench.NewFsyncProbe(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer fsync.Close()
	durable := func() error {
		_, err := fsync.Measure(ctx)
		return err
	}
	for _, c := range []struct {
		name string
		op   func() error
	}{{"select-1", selectOne}, {"async-write", write}, {"fdatasync", durable}} {
		for _, idle := range []time.Duration{0, time.Millisecond} {
			b.Run(fmt.Sprintf("%s/idle=%v", c.name, idle), func(b *testing.B) {
				var busy time.Duration
				for b.Loop() {
					if idle > 0 {
						time.Sleep(idle)
					}
					began := time.Now()
					if err := c.op(); err != nil {
						b.Fatal(err)
					}
					busy += time.Since(began)
				}
				b.ReportMetric(float64(busy.Nanoseconds())/1e3/float64(b.N), "op-µs")
			})
		}
	}
}
