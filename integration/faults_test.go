//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tidygate/tidygate/internal/pgtest"
)

// faultProxy is an in-process toxiproxy between tidygate and PostgreSQL.
type faultProxy struct {
	p   *toxiproxy.Proxy
	DSN string // the database's DSN, through the proxy
}

func newFaultProxy(t *testing.T, dsn string) *faultProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "pg", "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	u.Host = p.Listen
	return &faultProxy{p: p, DSN: u.String()}
}

// toxic adds a toxic; attrs is the JSON of its attributes.
func (f *faultProxy) toxic(t *testing.T, name, typ, stream, attrs string) {
	t.Helper()
	spec := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := f.p.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
		t.Fatal(err)
	}
}

func (f *faultProxy) clear(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := f.p.Toxics.RemoveToxic(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
}

// down closes the listener and every proxied connection: connections are refused.
func (f *faultProxy) down() { f.p.Stop() }

// up listens again on the same address.
func (f *faultProxy) up(t *testing.T) {
	t.Helper()
	if err := f.p.Start(); err != nil {
		t.Fatal(err)
	}
}

// faultEnv runs tidygate through the proxy with short, explicit deadlines.
func faultEnv(t *testing.T, proxyDSN string, extra ...string) []string {
	return append(append(baseEnv(t, proxyDSN),
		"DB_POOL_ACQUIRE_TIMEOUT=1s", "DB_CONNECT_TIMEOUT=1s", "DB_POOL_MIN_CONNS=2", "DB_POOL_MAX_CONNS=10"), extra...)
}

// timedCall makes one chat call and returns its status and duration.
func timedCall(s *service) (int, time.Duration) {
	began := time.Now()
	req, _ := http.NewRequest("POST", s.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer "+s.Key)
	req.Header.Set("X-Audit-Reason", "fault test")
	client := http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(began)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		s.ok.Add(1)
	}
	return resp.StatusCode, time.Since(began)
}

// allAnsweredRecorded checks that every call the fault test saw answered 200
// has exactly one successful trace in MLflow's tables (dsn: the database
// itself, not the proxy).
func allAnsweredRecorded(t *testing.T, s *service, dsn string) {
	t.Helper()
	want := int(s.ok.Load())
	deadline := time.Now().Add(time.Minute)
	var n int
	for time.Now().Before(deadline) {
		queryRow(t, dsn, "SELECT count(*) FROM "+callTraces+" t WHERE status = 'OK'", &n)
		if n >= want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	queryRow(t, dsn, "SELECT count(*) FROM "+callTraces+" t WHERE status = 'OK'", &n)
	if n != want {
		t.Fatalf("%d successful traces for %d calls answered 200", n, want)
	}
}

// burst makes n concurrent calls and returns their statuses and the slowest.
func burst(s *service, n int) (map[int]int, time.Duration) {
	var mu sync.Mutex
	status := map[int]int{}
	var slowest time.Duration
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, d := timedCall(s)
			mu.Lock()
			status[code]++
			slowest = max(slowest, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return status, slowest
}

// recoveryTime polls with calls until one succeeds and returns how long it took.
func recoveryTime(t *testing.T, s *service, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for time.Since(began) < within {
		if code, _ := timedCall(s); code == 200 {
			return time.Since(began)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no successful call within %s of the database returning\n%s", within, s.Log())
	return 0
}

// metric reads one unlabelled or labelled sample from /metrics on the admin address.
func metric(t *testing.T, s *service, name string) float64 {
	t.Helper()
	resp, err := http.Get(s.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	total, found := 0.0, false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if line == name || strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err == nil {
				total += v
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("/metrics has no %s", name)
	}
	return total
}

// contract is the pool contract's bound: the acquire timeout plus a margin
// for the rest of the request.
const contract = 1*time.Second + 2*time.Second

func TestFaultBlackhole(t *testing.T) {
	dsn := pgtest.New(t)
	fp := newFaultProxy(t, dsn)
	s := start(t, faultEnv(t, fp.DSN))
	if code, _ := timedCall(s); code != 200 {
		t.Fatalf("warm-up call: %d", code)
	}
	baseline := metric(t, s, "go_goroutines")
	fp.toxic(t, "hole-up", "timeout", "upstream", `{"timeout":0}`)
	fp.toxic(t, "hole-down", "timeout", "downstream", `{"timeout":0}`)
	status, slowest := burst(s, 20)
	if status[503] != 20 || slowest > contract {
		t.Fatalf("blackholed: statuses %v, slowest %s; want 20×503 within %s", status, slowest, contract)
	}
	fp.clear(t, "hole-up", "hole-down")
	t.Logf("blackhole: 20×503, slowest %s; recovered in %s", slowest, recoveryTime(t, s, 10*time.Second))
	time.Sleep(2 * time.Second)
	if after := metric(t, s, "go_goroutines"); after > baseline+20 {
		t.Fatalf("goroutines %v → %v after the blackhole: a leak", baseline, after)
	}
	allAnsweredRecorded(t, s, dsn)
}

func TestFaultRefusedThenRestored(t *testing.T) {
	dsn := pgtest.New(t)
	fp := newFaultProxy(t, dsn)
	s := start(t, faultEnv(t, fp.DSN))
	if code, _ := timedCall(s); code != 200 {
		t.Fatalf("warm-up call: %d", code)
	}
	errorsBefore := metric(t, s, "tidygate_pool_acquire_errors_total")
	fp.down()
	status, slowest := burst(s, 20)
	if status[503] != 20 || slowest > contract {
		t.Fatalf("refused: statuses %v, slowest %s; want fast 503s", status, slowest)
	}
	if metric(t, s, "tidygate_pool_acquire_errors_total") <= errorsBefore {
		t.Fatal("acquire errors were not counted in /metrics")
	}
	if total := metric(t, s, `tidygate_pool_total_conns`); total > 2 {
		t.Logf("note: %v connections still counted while refused", total)
	}
	fp.up(t)
	took := recoveryTime(t, s, 10*time.Second)
	time.Sleep(20 * time.Second) // one health-check period
	if idle := metric(t, s, "tidygate_pool_total_conns"); idle < 2 {
		t.Fatalf("MinConns not refilled: %v connections", idle)
	}
	t.Logf("refused: 20×503, slowest %s; first success %s after restore", slowest, took)
	allAnsweredRecorded(t, s, dsn)
}

func TestFaultLatencyAboveDeadline(t *testing.T) {
	dsn := pgtest.New(t)
	fp := newFaultProxy(t, dsn)
	s := start(t, faultEnv(t, fp.DSN))
	fp.toxic(t, "slow", "latency", "downstream", `{"latency":5000}`)
	status, slowest := burst(s, 5)
	if status[503] != 5 || slowest > contract+time.Second {
		t.Fatalf("5 s latency: statuses %v, slowest %s; want 503s within the deadline", status, slowest)
	}
	fp.clear(t, "slow")
	recoveryTime(t, s, 10*time.Second)
	allAnsweredRecorded(t, s, dsn)
}

func TestFaultResetPeer(t *testing.T) {
	dsn := pgtest.New(t)
	fp := newFaultProxy(t, dsn)
	s := start(t, faultEnv(t, fp.DSN))
	if code, _ := timedCall(s); code != 200 {
		t.Fatalf("warm-up: %d", code)
	}
	fp.toxic(t, "reset", "reset_peer", "upstream", `{"timeout":10}`)
	code, d := timedCall(s)
	if code != 503 || d > contract {
		t.Fatalf("reset_peer: %d after %s, want a clean 503", code, d)
	}
	fp.clear(t, "reset")
	recoveryTime(t, s, 5*time.Second)
	allAnsweredRecorded(t, s, dsn)
}

func TestFaultTerminateBackends(t *testing.T) {
	dsn := pgtest.New(t)
	s := start(t, faultEnv(t, dsn))
	for i := 0; i < 3; i++ {
		if code, _ := timedCall(s); code != 200 {
			t.Fatalf("warm-up: %d", code)
		}
	}
	var killed int
	queryRow(t, dsn, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name LIKE 'tidygate-%' AND datname = current_database()`, &killed)
	if killed == 0 {
		t.Fatal("no tidygate connection to terminate")
	}
	time.Sleep(1500 * time.Millisecond) // idle for more than pgx's ping threshold
	for i := 0; i < 5; i++ {
		if code, _ := timedCall(s); code != 200 {
			t.Fatalf("call %d after terminating %d idle connections: %d (want no client-visible error)", i, killed, code)
		}
	}
	allAnsweredRecorded(t, s, dsn)
}

// TestFaultTerminateBusyBackends terminates tidygate's connections while
// calls are using them: those calls fail cleanly (503, never a hang or a
// 500), and the pool heals.
func TestFaultTerminateBusyBackends(t *testing.T) {
	dsn := pgtest.New(t)
	fp := newFaultProxy(t, dsn)
	s := start(t, faultEnv(t, fp.DSN, "DB_POOL_ACQUIRE_TIMEOUT=3s"))
	fp.toxic(t, "slow", "latency", "downstream", `{"latency":400}`)
	done := make(chan map[int]int)
	go func() { status, _ := burst(s, 8); done <- status }()
	time.Sleep(600 * time.Millisecond) // the calls are now inside their database operations
	var killed int
	queryRow(t, dsn, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name LIKE 'tidygate-%' AND datname = current_database()`, &killed)
	status := <-done
	for code := range status {
		if code != 200 && code != 503 {
			t.Fatalf("busy connections terminated (%d): statuses %v, want only 200 or a clean 503", killed, status)
		}
	}
	fp.clear(t, "slow")
	for i := 0; i < 3; i++ {
		if code, _ := timedCall(s); code != 200 {
			t.Fatalf("call %d after the pool healed: %d", i, code)
		}
	}
	t.Logf("terminated %d busy connections: statuses %v; the pool healed", killed, status)
	allAnsweredRecorded(t, s, dsn)
}

func TestFaultPoolSaturation(t *testing.T) {
	dsn := pgtest.New(t)
	fp := newFaultProxy(t, dsn)
	s := start(t, faultEnv(t, fp.DSN, "DB_POOL_MAX_CONNS=10"))
	fp.toxic(t, "slow", "latency", "downstream", `{"latency":300}`)
	status, slowest := burst(s, 50)
	for code := range status {
		if code != 200 && code != 503 {
			t.Fatalf("saturation: statuses %v; want only 200 or 503", status)
		}
	}
	if status[200] == 0 {
		t.Fatalf("saturation: statuses %v; nobody got a connection", status)
	}
	if strings.Contains(s.Log(), "too many clients") {
		t.Fatal("the server refused connections: the pool exceeded its bound")
	}
	t.Logf("50 clients on 10 connections with 300 ms latency: %v, slowest %s", status, slowest)
	allAnsweredRecorded(t, s, dsn)
}

func TestDatabaseDownAtBoot(t *testing.T) {
	fp := newFaultProxy(t, pgtest.New(t))
	fp.down()
	t.Run("starts unready", func(t *testing.T) {
		s := startNoWait(t, faultEnv(t, fp.DSN))
		waitStatus(t, s, "/healthz", 200, 20*time.Second)
		waitStatus(t, s, "/readyz", 503, 5*time.Second)
		fp.up(t)
		waitStatus(t, s, "/readyz", 200, 20*time.Second)
		if code, _ := timedCall(s); code != 200 {
			t.Fatalf("after the database appeared: %d", code)
		}
		fp.down()
	})
	t.Run("refuses when required", func(t *testing.T) {
		s := startNoWait(t, faultEnv(t, fp.DSN, "DB_REQUIRE_AT_START=true"))
		select {
		case <-s.exited:
			if s.exitErr == nil {
				t.Fatal("exit status 0")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("tidygate started without its database although DB_REQUIRE_AT_START=true")
		}
	})
}

// TestHomeProfileKeepsConnectionsWarm simulates a home→AWS link (50 ms each
// way) and checks that requests reuse warm connections instead of paying the
// connect cost; it reports both costs.
func TestHomeProfileKeepsConnectionsWarm(t *testing.T) {
	fp := newFaultProxy(t, pgtest.New(t))
	fp.toxic(t, "wan", "latency", "downstream", `{"latency":50,"jitter":10}`)
	env := append(baseEnv(t, fp.DSN), "DEPLOY_PROFILE=home", "MLFLOW_SCHEMA=create", "DB_SSLMODE=disable")
	s := start(t, env, "serve") // the dev key is for the local profile only
	s.Key = createKey(t, env, "--user", "remote", "--team", "home")
	if code, _ := timedCall(s); code != 200 { // warm-up
		t.Fatalf("warm-up: %d", code)
	}
	// Creating the key was an administrative change: its export to MLflow
	// takes two connections for a moment (the claim of the audit entry and
	// the trace's write), once. Steady calls are measured after it.
	for deadline := time.Now().Add(30 * time.Second); metric(t, s, "tidygate_audit_export_traces_total") < 1; {
		if time.Now().After(deadline) {
			t.Fatal("the key's creation was not exported to MLflow within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := timedCall(s); code != 200 {
		t.Fatalf("warm-up after the export: %d", code)
	}
	newBefore := metric(t, s, "tidygate_pool_new_conns_total")
	var calls []time.Duration
	for i := 0; i < 20; i++ {
		code, d := timedCall(s)
		if code != 200 {
			t.Fatalf("call %d: %d", i, code)
		}
		calls = append(calls, d)
	}
	if opened := metric(t, s, "tidygate_pool_new_conns_total") - newBefore; opened > 0 {
		t.Fatalf("%v new connections during 20 sequential calls: requests paid the connect cost", opened)
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i] < calls[j] })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	conn, err := pgx.Connect(ctx, fp.DSN)
	if err != nil {
		t.Fatal(err)
	}
	connect := time.Since(began)
	conn.Close(ctx)
	t.Logf("home profile over a 50 ms link: request p50 %s, max %s, on warm connections; a new connection costs %s",
		calls[len(calls)/2], calls[len(calls)-1], connect)
}
