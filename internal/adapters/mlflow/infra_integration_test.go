//go:build integration

package mlflow

import (
	"context"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// TestNewCallLogIsStepFour builds the call log the way tidygate starts,
// after the delegate, the shared pool and the gateway registration, on the
// shared pool and on a dedicated one.
func TestNewCallLogIsStepFour(t *testing.T) {
	for _, mode := range []string{"shared", "dedicated"} {
		t.Run(mode, func(t *testing.T) {
			cfg, err := infra.LoadConfig(map[string]string{
				"DATABASE_URL": pgtest.New(t), "DB_SSLMODE": "disable",
				"MLFLOW_POOL": mode, "MLFLOW_SCHEMA": "create", "MLFLOW_LOG_MODE": "both",
				"MLFLOW_JOURNAL_DIR": t.TempDir(), "MLFLOW_WRITER_FLUSH_INTERVAL": "10ms",
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			d := infra.NewDelegate(cfg, nil)
			shared, err := infra.NewSharedPool(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(shared.Close)
			c, err := NewCallLog(ctx, infra.RegisterGateway(d, shared))
			if err != nil {
				t.Fatal(err)
			}

			steps := d.Startup.Steps()
			last := steps[len(steps)-1]
			if last.Component != "mlflow call log" || last.Pool == nil || last.Pool.Mode != mode {
				t.Errorf("last startup step = %+v, want the mlflow call log on the %s pool", last, mode)
			}
			pools := c.Pools(shared.Pool)
			if want := map[string]int{"shared": 1, "dedicated": 2}[mode]; len(pools) != want || pools[0] != shared.Pool {
				t.Errorf("Pools = %d pools, want %d starting with the shared one", len(pools), want)
			}
			families, err := d.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(families, func(f *dto.MetricFamily) bool {
				return f.GetName() == "tidygate_calllog_records_queued"
			}) {
				t.Errorf("the call log's metrics are not on the delegate's registry")
			}

			recs := mixed("step4-"+mode, 5)
			recordAll(t, c, recs)
			flush(t, c)
			conn, err := pools[len(pools)-1].Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var traces, runs int
			err = conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM trace_info), (SELECT count(*) FROM runs)").Scan(&traces, &runs)
			conn.Release()
			if err != nil || traces != len(recs) || runs != len(recs) {
				t.Errorf("%d traces and %d runs (%v), want %d of each", traces, runs, err, len(recs))
			}
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if mode == "dedicated" {
				if conn, err := pools[1].Acquire(ctx); err == nil {
					conn.Release()
					t.Errorf("the dedicated pool is still open after Close")
				}
			}
		})
	}
}
