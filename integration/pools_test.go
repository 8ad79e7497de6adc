//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/pgtest"
)

const chatBody = `{"model":"mock-chat","messages":[{"role":"user","content":"ping"}]}`

// appNames returns the application_names of the connections to dsn's
// database, other than this test's own.
func appNames(t *testing.T, dsn string) map[string]int {
	t.Helper()
	u, _ := url.Parse(dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT application_name, count(*) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid() GROUP BY 1`, strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	return out
}

// waitTraces waits until the MLflow tables hold want traces; a backlog of
// thousands after an outage takes the writer a while.
// callTraces is trace_info without the traces of administrative changes
// (a key a test creates is one, exported in the background to the admin
// experiment): the calls' traces, which the tests count.
const callTraces = `(SELECT * FROM trace_info WHERE request_id NOT IN
	(SELECT request_id FROM trace_tags WHERE key = 'tidygate.kind' AND value = 'admin'))`

func waitTraces(t *testing.T, dsn string, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var n int
	for time.Now().Before(deadline) {
		queryRow(t, dsn, "SELECT count(*) FROM "+callTraces+" t", &n)
		if n >= want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("trace_info holds %d traces, want %d", n, want)
}

func TestMLflowPoolModes(t *testing.T) {
	for _, mode := range []string{"shared", "dedicated"} {
		t.Run(mode, func(t *testing.T) {
			dsn := pgtest.New(t)
			s := start(t, append(baseEnv(t, dsn), "MLFLOW_POOL="+mode))
			for i := 0; i < 5; i++ {
				if resp, body := s.do("POST", "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
			waitTraces(t, dsn, 5)
			names := appNames(t, dsn)
			// Besides the pools, the key cache's listener: one connection.
			if names["tidygate-keys"] != 1 {
				t.Fatalf("connections by application_name = %v, want one tidygate-keys", names)
			}
			switch mode {
			case "shared":
				if len(names) != 2 || names["tidygate-shared"] == 0 {
					t.Fatalf("connections by application_name = %v, want tidygate-shared and tidygate-keys only", names)
				}
			case "dedicated":
				if len(names) != 3 || names["tidygate-shared"] == 0 || names["tidygate-mlflow"] == 0 {
					t.Fatalf("connections by application_name = %v, want tidygate-shared, tidygate-mlflow and tidygate-keys", names)
				}
			}
			code, body := s.adminGet("/debug/startup")
			if code != 200 {
				t.Fatalf("/debug/startup: %d", code)
			}
			var steps []struct {
				Component string         `json:"component"`
				Pool      map[string]any `json:"pool"`
			}
			if err := json.Unmarshal(body, &steps); err != nil || len(steps) < 4 {
				t.Fatalf("/debug/startup: %v %s", err, body)
			}
			if got := fmt.Sprint(steps[len(steps)-1].Pool["mode"]); got != mode {
				t.Fatalf("the MLflow step's pool mode = %q, want %q: %s", got, mode, body)
			}
		})
	}
}

// TestConcurrencyStaysWithinPoolMax fires 50 concurrent requests at a shared
// pool of 3 and samples pg_stat_activity meanwhile.
func TestConcurrencyStaysWithinPoolMax(t *testing.T) {
	dsn := pgtest.New(t)
	s := start(t, append(baseEnv(t, dsn), "DB_POOL_MAX_CONNS=3", "DB_POOL_MIN_CONNS=1"))
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int64(appNames(t, dsn)["tidygate-shared"]); n > peak.Load() {
				peak.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", s.URL+"/v1/chat/completions", strings.NewReader(chatBody))
			req.Header.Set("Authorization", "Bearer "+DevKey)
			req.Header.Set("X-Audit-Reason", "load")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				failures.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	if peak.Load() > 3 {
		t.Fatalf("the shared pool reached %d connections, max is 3", peak.Load())
	}
	if peak.Load() == 0 {
		t.Fatal("no tidygate connection was ever seen: the sampling proves nothing")
	}
	if failures.Load() > 0 {
		t.Fatalf("%d of 50 requests failed", failures.Load())
	}
}

// TestReadyzFollowsTheDatabase stops and restarts the database under a
// running service: /readyz turns 503, then 200 again without a restart.
func TestReadyzFollowsTheDatabase(t *testing.T) {
	pg := newContainer(t)
	s := start(t, append(baseEnv(t, pg.DSN), "DB_POOL_ACQUIRE_TIMEOUT=1s", "DB_CONNECT_TIMEOUT=1s"))
	pg.Stop(t)
	waitStatus(t, s, "/readyz", 503, 20*time.Second)
	resp, body := s.do("POST", "/v1/chat/completions", chatBody)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a call with the database down: %d %s (want 503 with Retry-After)", resp.StatusCode, body)
	}
	pg.Start(t)
	waitStatus(t, s, "/readyz", 200, 20*time.Second)
	if resp, body := s.do("POST", "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Fatalf("after the database returned: %d %s", resp.StatusCode, body)
	}
}

func waitStatus(t *testing.T, s *service, path string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := 0
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + path)
		if err == nil {
			resp.Body.Close()
			last = resp.StatusCode
			if last == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s stayed %d, want %d within %s", path, last, want, within)
}

// TestConnectionBudget starts against a server with max_connections=20
// (17 usable after the 3 superuser slots).
func TestConnectionBudget(t *testing.T) {
	pg := newContainer(t, "-c", "max_connections=20")
	t.Run("refuses above 100%", func(t *testing.T) {
		s := startNoWait(t, append(baseEnv(t, pg.DSN), "DB_POOL_MAX_CONNS=10", "REPLICAS=2"))
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			t.Fatal("tidygate started although the pools need more connections than the server has")
		}
		if s.exitErr == nil {
			t.Fatal("exit status 0")
		}
		log := s.Log()
		for _, want := range []string{"20", "REPLICAS"} {
			if !strings.Contains(log, want) {
				t.Errorf("the refusal does not mention %q:\n%s", want, log)
			}
		}
	})
	t.Run("warns at 80%", func(t *testing.T) {
		s := start(t, append(baseEnv(t, pg.DSN), "DB_POOL_MAX_CONNS=14"))
		if !strings.Contains(strings.ToLower(s.Log()), "connection budget") {
			t.Fatalf("no connection budget warning:\n%s", s.Log())
		}
	})
	t.Run("override", func(t *testing.T) {
		start(t, append(baseEnv(t, pg.DSN), "DB_POOL_MAX_CONNS=10", "REPLICAS=2", "DB_CONNECTION_BUDGET=warn"))
	})
}
