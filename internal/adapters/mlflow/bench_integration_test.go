//go:build integration

package mlflow

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// benchRun makes request ids unique across a benchmark's repeated runs on
// one database, so that no run writes into rows an earlier one wrote.
var benchRun atomic.Int64

// BenchmarkWriter measures the writer's path from journal to PostgreSQL:
// read a batch, decode, build the rows, write them in one transaction,
// delete the batch from the journal. The records are journaled beforehand.
func BenchmarkWriter(b *testing.B) {
	for _, bc := range []struct {
		mode  LogMode
		batch int
	}{{LogTraces, 200}, {LogTraces, 1000}, {LogBoth, 200}} {
		b.Run(fmt.Sprintf("%s/batch=%d", bc.mode, bc.batch), func(b *testing.B) {
			pool := newPool(b)
			opts := testOptions(b)
			opts.LogMode, opts.BatchSize = bc.mode, bc.batch
			w := newTestWriter(b, pool, opts)
			j := w.journal

			run := benchRun.Add(1)
			var wg sync.WaitGroup
			var next atomic.Int64
			for range 64 {
				wg.Go(func() {
					for i := int(next.Add(1)) - 1; i < b.N; i = int(next.Add(1)) - 1 {
						value, err := encodeRecord(sample(fmt.Sprintf("bench-%d-%d", run, i), i%numShapes, i), ContentFull)
						if err == nil {
							_, err = j.append(value)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()

			b.ResetTimer()
			if err := w.drain(context.Background(), nil, passAll); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			written := 0
			for _, n := range tableCounts(b, pool) {
				written += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "rows/s")
			if got := count(b, pool, "SELECT count(*) FROM trace_info WHERE client_request_id LIKE $1", fmt.Sprintf("client-bench-%d-%%", run)); bc.mode.traces() && got != b.N {
				b.Fatalf("wrote %d traces, want %d", got, b.N)
			}
		})
	}
}

// BenchmarkRawCopy is the floor the writer is measured against: pgx's
// CopyFrom of the trace_info rows of the same records, one COPY per 200
// rows, with no other table, no conflict handling and no journal.
func BenchmarkRawCopy(b *testing.B) {
	pool := newPool(b)
	opts := testOptions(b)
	st := newStore(pool, opts, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if err := st.prepare(ctx); err != nil {
		b.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	exp, err := st.experiment(ctx, conn.Conn(), "mock-chat")
	if err != nil {
		b.Fatal(err)
	}
	columns := []string{"request_id", "experiment_id", "timestamp_ms", "execution_time_ms", "status",
		"client_request_id", "request_preview", "response_preview"}
	run := benchRun.Add(1)

	b.ResetTimer()
	for start := 0; start < b.N; start += 200 {
		var batch [][]any
		for i := start; i < min(start+200, b.N); i++ {
			value, _ := encodeRecord(sample(fmt.Sprintf("copy-%d-%d", run, i), i%numShapes, i), ContentFull)
			c, _ := decodeRecord(value)
			var rs rows
			if err := rs.addTrace(c, exp, "", ""); err != nil {
				b.Fatal(err)
			}
			t := rs.traceInfo[0]
			batch = append(batch, []any{t.RequestID, t.ExperimentID, t.TimestampMS, t.ExecutionTimeMS, t.Status,
				t.ClientRequestID, t.RequestPreview, t.ResponsePreview})
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"trace_info"}, columns, pgx.CopyFromRows(batch)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
