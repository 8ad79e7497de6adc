package infra

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func serve(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if ct := w.Header().Get("Content-Type"); path != "/metrics" && ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	return w.Code, w.Body.String()
}

func TestHealthz(t *testing.T) {
	h := NewDelegate(poolTestConfig(t, nil), nil).AdminHandler(nil)
	if code, body := serve(t, h, "/healthz"); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/healthz", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d", w.Code)
	}
}

func TestReadyzWithoutPools(t *testing.T) {
	h := NewDelegate(poolTestConfig(t, nil), nil).AdminHandler(func() []*Pool { return nil })
	code, body := serve(t, h, "/readyz")
	if code != 200 || strings.TrimSpace(body) != `{"status":"ready","pools":{}}` {
		t.Fatalf("/readyz: %d %s", code, body)
	}
}

func TestReadyzWithAnUnreachableDatabase(t *testing.T) {
	d := unreachableDelegate(t, map[string]string{"MLFLOW_POOL": "dedicated", "MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "1"})
	shared := openShared(t, d)
	mlflow := openMLflow(t, d, shared)
	h := d.AdminHandler(func() []*Pool { return []*Pool{shared.Pool, mlflow, shared.Pool} })

	began := time.Now()
	code, body := serve(t, h, "/readyz")
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("/readyz took %s; each pool must answer within its acquire timeout (2s, 1s), concurrently", took)
	}
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	var got readiness
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if got.Status != "unavailable" || len(got.Pools) != 2 ||
		got.Pools["shared"] != "database unavailable: the database is unreachable (pool shared could not open a connection)" ||
		got.Pools["mlflow"] != "database unavailable: the database is unreachable (pool mlflow could not open a connection)" {
		t.Fatalf("/readyz body: %s", body)
	}
	if strings.Contains(body, "Hunter2") {
		t.Fatalf("/readyz leaks the password: %s", body)
	}
}

func TestDebugStartup(t *testing.T) {
	d := unreachableDelegate(t, nil)
	shared := openShared(t, d)
	openMLflow(t, d, shared)
	code, body := serve(t, d.AdminHandler(nil), "/debug/startup")
	if code != 200 {
		t.Fatalf("/debug/startup: %d", code)
	}
	var steps []map[string]any
	if err := json.Unmarshal([]byte(body), &steps); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	wantComponents := []string{"infra delegate", "shared pool", "gateway registration", "mlflow pool"}
	if len(steps) != len(wantComponents) {
		t.Fatalf("%d steps: %s", len(steps), body)
	}
	for i, s := range steps {
		if s["seq"] != float64(i+1) || s["component"] != wantComponents[i] {
			t.Errorf("step %d: %v", i+1, s)
		}
		if _, ok := s["duration_ms"].(float64); !ok {
			t.Errorf("step %d has no duration_ms: %v", i+1, s)
		}
	}
	if _, has := steps[0]["pool"]; has {
		t.Errorf("the delegate step reports a pool: %v", steps[0])
	}
	pool, _ := steps[1]["pool"].(map[string]any)
	for key, want := range map[string]any{"name": "shared", "application_name": "tidygate-shared", "min_conns": 1.0,
		"max_conns": 10.0, "mode": "shared", "acquire_timeout_ms": 2000.0} {
		if pool[key] != want {
			t.Errorf("pool %s = %v, want %v", key, pool[key], want)
		}
	}
	if _, has := pool["target"]; has {
		t.Errorf("/debug/startup names the database's address: %v", pool["target"])
	}
	if strings.Contains(body, "Hunter2") || strings.Contains(body, "password") {
		t.Fatalf("/debug/startup mentions the password: %s", body)
	}
}

func TestMetrics(t *testing.T) {
	d := unreachableDelegate(t, nil)
	shared := openShared(t, d)
	_, _ = shared.Acquire(context.Background())
	code, body := serve(t, d.AdminHandler(nil), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`tidygate_pool_acquired_conns{pool="shared"} 0`,
		`tidygate_pool_idle_conns{pool="shared"}`,
		`tidygate_pool_total_conns{pool="shared"}`,
		`tidygate_pool_constructing_conns{pool="shared"}`,
		`tidygate_pool_max_conns{pool="shared"} 10`,
		`tidygate_pool_acquires_total{pool="shared"} 0`,
		`tidygate_pool_empty_acquires_total{pool="shared"}`,
		`tidygate_pool_canceled_acquires_total{pool="shared"}`,
		`tidygate_pool_new_conns_total{pool="shared"}`,
		`tidygate_pool_acquire_wait_seconds_total{pool="shared"}`,
		`tidygate_pool_resets_total{pool="shared"} 0`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Two failed acquires: the start-up ping and ours.
	if !strings.Contains(body, `tidygate_pool_acquire_errors_total{pool="shared"} 2`) {
		t.Errorf("acquire errors not counted:\n%s", grepLines(body, "acquire_errors"))
	}
	if strings.Contains(body, "Hunter2") {
		t.Fatal("/metrics leaks the password")
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func TestStartupReportNumbersAndCopies(t *testing.T) {
	r := NewStartupReport(nil)
	info := PoolInfo{Name: "shared", MaxConns: 3}
	r.Record("a", time.Millisecond, nil)
	r.Record("b", 2*time.Millisecond, &info)
	info.MaxConns = 99 // the report kept a copy
	steps := r.Steps()
	steps[1].Pool.MaxConns = 42 // and hands out copies
	again := r.Steps()
	if len(again) != 2 || again[0].Seq != 1 || again[1].Seq != 2 || again[1].Component != "b" || again[1].Pool.MaxConns != 3 {
		t.Fatalf("steps = %+v, pool %+v", again, again[1].Pool)
	}
}

// TestUnauthenticatedAnswersHideTheDatabase asks every unauthenticated
// endpoint, on the API address (ProbeHandler) and on the admin address
// (AdminHandler), while the database is unreachable: no answer names the
// database's host, port, name or user. The API address's /readyz says
// only whether tidygate is ready.
func TestUnauthenticatedAnswersHideTheDatabase(t *testing.T) {
	addr := closedAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	d := NewDelegate(poolTestConfig(t, map[string]string{
		"DATABASE_URL":            "postgres://tg_hidden_user:" + trickyPasswordURL + "@" + addr + "/tg_hidden_db?sslmode=disable",
		"DB_POOL_ACQUIRE_TIMEOUT": "2s",
		"DB_CONNECT_TIMEOUT":      "2s",
	}), nil)
	shared := openShared(t, d)
	pools := func() []*Pool { return []*Pool{shared.Pool} }
	admin, probes := d.AdminHandler(pools), d.ProbeHandler(pools)

	var seen strings.Builder
	for _, path := range []string{"/healthz", "/readyz", "/debug/startup", "/metrics"} {
		_, body := serve(t, admin, path)
		seen.WriteString(body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		_, body := serve(t, probes, path)
		seen.WriteString(body)
	}
	for _, detail := range []string{"tg_hidden_user", "tg_hidden_db", addr, ":" + port, "Hunter2"} {
		if strings.Contains(seen.String(), detail) {
			t.Errorf("an unauthenticated answer reveals %q", detail)
		}
	}
	code, body := serve(t, probes, "/readyz")
	if code != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"status":"unavailable"}` {
		t.Errorf("API /readyz: %d %s, want 503 with the status only", code, body)
	}
	for _, path := range []string{"/metrics", "/debug/startup", "/debug/pprof/"} {
		w := httptest.NewRecorder()
		probes.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusNotFound {
			t.Errorf("API address %s: %d, want 404", path, w.Code)
		}
	}
}
