//go:build integration

package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// runRecorder keeps the names of the constructors fx actually ran, in order.
type runRecorder struct {
	mu   sync.Mutex
	runs []string
}

func (r *runRecorder) LogEvent(e fxevent.Event) {
	if ev, ok := e.(*fxevent.Run); ok && ev.Err == nil {
		r.mu.Lock()
		r.runs = append(r.runs, ev.Name)
		r.mu.Unlock()
	}
}

func (r *runRecorder) index(t *testing.T, suffix string) int {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range r.runs {
		if strings.HasSuffix(n, suffix) {
			return i
		}
	}
	t.Fatalf("constructor %s never ran; ran: %v", suffix, r.runs)
	return -1
}

func testConfig(t *testing.T, extra map[string]string) infra.Config {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":       pgtest.New(t),
		"HTTP_ADDR":          "127.0.0.1:0",
		"ADMIN_ADDR":         "127.0.0.1:0",
		"MLFLOW_JOURNAL_DIR": t.TempDir(),
		"MLFLOW_SCHEMA":      "create",
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := infra.LoadConfig(env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestInitializationOrder asserts the order docs/DESIGN-NOTES.md §3 explains — delegate, shared pool,
// gateway registration, MLflow call log — from the constructors fx ran and
// from the startup report, in both MLflow pool modes.
func TestInitializationOrder(t *testing.T) {
	for _, mode := range []string{"shared", "dedicated"} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig(t, map[string]string{"MLFLOW_POOL": mode, "MLFLOW_SQLALCHEMY_POOL_SIZE": "2", "MLFLOW_SQLALCHEMY_MAX_OVERFLOW": "3"})
			rec := &runRecorder{}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			var delegate *infra.Delegate
			var sharedPool *infra.SharedPool
			app := fx.New(appOptions(context.Background(), testConfiguration(t, cfg, testProviderSettings(t)), logger, false),
				fx.WithLogger(func() fxevent.Logger { return rec }),
				fx.Populate(&delegate, &sharedPool))
			if err := app.Err(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The registration step has done its work before anything starts:
			// the gateway's tables exist on the shared pool.
			conn, err := sharedPool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var keysTable *string
			err = conn.QueryRow(ctx, "SELECT to_regclass('tidygate_api_keys')::text").Scan(&keysTable)
			conn.Release()
			if err != nil || keysTable == nil {
				t.Fatalf("after the constructors ran, the gateway's schema is not applied (%v)", err)
			}
			if err := app.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = app.Stop(ctx) }()

			order := []int{
				rec.index(t, "infra.NewDelegate()"),
				rec.index(t, "app.provideSharedPool()"),
				rec.index(t, "app.registerGateway()"),
				rec.index(t, "app.provideCallLog()"),
				rec.index(t, "app.newService()"),
				rec.index(t, "app.newServers()"),
			}
			for i := 1; i < len(order); i++ {
				if order[i] <= order[i-1] {
					t.Fatalf("constructors ran out of order: %v", rec.runs)
				}
			}

			steps := delegate.Startup.Steps()
			var components []string
			for _, s := range steps {
				components = append(components, s.Component)
			}
			if len(steps) < 4 {
				t.Fatalf("startup report has %d steps: %v", len(steps), components)
			}
			if steps[1].Pool == nil || steps[1].Pool.ApplicationName != "tidygate-shared" {
				t.Fatalf("step 2 is not the shared pool: %+v", steps[1])
			}
			last := steps[len(steps)-1]
			if last.Pool == nil {
				t.Fatalf("the MLflow step reports no pool: %v", components)
			}
			wantApp, wantMode := "tidygate-shared", "shared"
			if mode == "dedicated" {
				wantApp, wantMode = "tidygate-mlflow", "dedicated"
			}
			if last.Pool.ApplicationName != wantApp || last.Pool.Mode != wantMode {
				t.Fatalf("MLflow pool = %+v, want %s/%s", last.Pool, wantApp, wantMode)
			}
			if mode == "dedicated" && last.Pool.MaxConns != 5 {
				t.Fatalf("dedicated max = %d, want POOL_SIZE+MAX_OVERFLOW = 5", last.Pool.MaxConns)
			}
		})
	}
}

// TestDebugStartupEndpoint reads the same report over HTTP.
func TestDebugStartupEndpoint(t *testing.T) {
	cfg := testConfig(t, nil)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var delegate *infra.Delegate
	app := fx.New(appOptions(context.Background(), testConfiguration(t, cfg, testProviderSettings(t)), logger, false), fx.NopLogger, fx.Populate(&delegate))
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	srv := delegate.AdminHandler(func() []*infra.Pool { return nil })
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/debug/startup", nil))
	var steps []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &steps); err != nil {
		t.Fatalf("/debug/startup: %v: %s", err, w.Body.String())
	}
	if len(steps) < 4 {
		t.Fatalf("/debug/startup has %d steps: %s", len(steps), w.Body.String())
	}
	if strings.Contains(w.Body.String(), "password") {
		t.Fatalf("/debug/startup mentions a password: %s", w.Body.String())
	}
}
