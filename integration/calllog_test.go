//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/pgtest"
)

// mixedCatalogue adds a model whose provider always fails.
const mixedCatalogue = `models:
  - name: mock-chat
    type: chat
    provider: mock
    price_per_million: {input: "0.50", output: "1.50"}
    max_output_tokens: 4096
  - name: mock-embed
    type: embedding
    provider: mock
    price_per_million: {input: "0.02"}
  - name: broken
    type: chat
    provider: mock
    upstream: mock-error-500
    free: true
    max_output_tokens: 100
`

// TestEveryCallBecomesATrace makes N mixed calls and checks that the MLflow
// tables hold exactly N consistent traces.
func TestEveryCallBecomesATrace(t *testing.T) {
	for _, mode := range []string{"shared", "dedicated"} {
		t.Run(mode, func(t *testing.T) {
			dsn := pgtest.New(t)
			cat := t.TempDir() + "/catalogue.yaml"
			writeFile(t, cat, mixedCatalogue)
			env := append(baseEnv(t, dsn), "CATALOGUE_FILE="+cat, "MLFLOW_POOL="+mode, "PROVIDER_MAX_ATTEMPTS=1")
			s := start(t, env)
			poor := createKey(t, env, "--user", "poor", "--team", "t", "--daily-budget-usd", "0.000001")
			narrow := createKey(t, env, "--user", "narrow", "--team", "t", "--models", "mock-embed")

			type call struct {
				path, body, key string
				status          int
			}
			calls := []call{
				{"/v1/chat/completions", chatBody, DevKey, 200},
				{"/v1/chat/completions", `{"model":"mock-chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"stream"}]}`, DevKey, 200},
				{"/v1/embeddings", `{"model":"mock-embed","input":["a","b"]}`, DevKey, 200},
				{"/v1/chat/completions", `{"model":"broken","messages":[{"role":"user","content":"x"}]}`, DevKey, 502},
				{"/v1/chat/completions", chatBody, poor, 429},
				{"/v1/chat/completions", chatBody, narrow, 403},
			}
			usage := map[string]int{} // request id → total tokens of successful non-stream chat
			for _, c := range calls {
				resp, body := s.do("POST", c.path, c.body, "Authorization", "Bearer "+c.key)
				if resp.StatusCode != c.status {
					t.Fatalf("%s with %s: %d %s, want %d", c.path, c.body, resp.StatusCode, body, c.status)
				}
				if c.status == 200 && !strings.Contains(c.body, "stream") {
					var r struct {
						Usage struct {
							Total int `json:"total_tokens"`
						} `json:"usage"`
					}
					_ = json.Unmarshal(body, &r)
					usage[resp.Header.Get("X-Request-Id")] = r.Usage.Total
				}
			}
			waitTraces(t, dsn, len(calls))
			time.Sleep(300 * time.Millisecond) // a late duplicate would show up now
			var traces, statusErr int
			queryRow(t, dsn, "SELECT count(*), count(*) FILTER (WHERE status = 'ERROR') FROM "+callTraces+" t", &traces, &statusErr)
			if traces != len(calls) || statusErr != 3 {
				t.Fatalf("trace_info: %d traces (%d ERROR), want %d (3 ERROR)", traces, statusErr, len(calls))
			}
			checkSpans(t, dsn)
			for rid, total := range usage {
				var got float64
				queryRow(t, dsn, `SELECT m.value FROM trace_metrics m JOIN trace_request_metadata d USING (request_id)
					WHERE d.key = 'tidygate.request_id' AND d.value = '`+rid+`' AND m.key = 'total_tokens'`, &got)
				if int(got) != total {
					t.Errorf("trace of %s has total_tokens %v, the response said %d", rid, got, total)
				}
			}
		})
	}
}

// checkSpans parses every span's content as MLflow would.
func checkSpans(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT trace_id, content FROM spans")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var traceID, content string
		if err := rows.Scan(&traceID, &content); err != nil {
			t.Fatal(err)
		}
		var span struct {
			Attributes map[string]string `json:"attributes"`
		}
		if err := json.Unmarshal([]byte(content), &span); err != nil {
			t.Fatalf("span content of %s does not parse: %v", traceID, err)
		}
		var rid string
		if err := json.Unmarshal([]byte(span.Attributes["mlflow.traceRequestId"]), &rid); err != nil || rid != traceID {
			t.Fatalf("span of %s carries mlflow.traceRequestId %q", traceID, span.Attributes["mlflow.traceRequestId"])
		}
		n++
	}
	if n == 0 {
		t.Fatal("no spans")
	}
}

// loadResult counts responses by status.
type loadResult struct {
	mu     sync.Mutex
	status map[int]int
	errors int
}

func (r *loadResult) count(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == nil {
		r.status = map[int]int{}
	}
	r.status[code]++
}

func (r *loadResult) ok() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status[200]
}

// runLoad sends chat calls from workers until ctx ends; transport errors
// (e.g. the server going away) are counted separately.
func runLoad(ctx context.Context, s *service, workers int) *loadResult {
	res := &loadResult{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequest("POST", s.URL+"/v1/chat/completions", strings.NewReader(chatBody))
				req.Header.Set("Authorization", "Bearer "+DevKey)
				req.Header.Set("X-Audit-Reason", "load test")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					res.mu.Lock()
					res.errors++
					res.mu.Unlock()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				resp.Body.Close()
				res.count(resp.StatusCode)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	go func() { <-ctx.Done() }()
	wg.Wait()
	return res
}

// exactlyOnce checks that trace_info holds want traces, one per request.
func exactlyOnce(t *testing.T, dsn string, want int) {
	t.Helper()
	waitTraces(t, dsn, want)
	time.Sleep(500 * time.Millisecond)
	var n, distinct int
	queryRow(t, dsn, `SELECT count(*), count(DISTINCT d.value) FROM `+callTraces+` i
		LEFT JOIN trace_request_metadata d ON d.request_id = i.request_id AND d.key = 'tidygate.request_id'`, &n, &distinct)
	if n != want || distinct != want {
		t.Fatalf("trace_info holds %d traces for %d distinct requests, want exactly %d", n, distinct, want)
	}
}

// TestGracefulShutdownLosesNothing stops the service with SIGTERM under load
// while every record is still in the journal.
func TestGracefulShutdownLosesNothing(t *testing.T) {
	dsn := pgtest.New(t)
	s := start(t, append(baseEnv(t, dsn), "MLFLOW_WRITER_FLUSH_INTERVAL=1h", "MLFLOW_WRITER_BATCH_SIZE=1000"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *loadResult)
	go func() { done <- runLoad(ctx, s, 4) }()
	time.Sleep(2 * time.Second)
	if err := s.Stop(30 * time.Second); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, s.Log())
	}
	cancel()
	res := <-done
	if res.ok() == 0 {
		t.Fatal("no call succeeded before the shutdown")
	}
	exactlyOnce(t, dsn, res.ok())
	t.Logf("%d answered calls, all recorded; statuses %v, %d transport errors", res.ok(), res.status, res.errors)
}

// TestKillAfterAnswerLosesNothing kills the service with SIGKILL right after
// it answered, before the writer ran, and restarts it on the same journal.
func TestKillAfterAnswerLosesNothing(t *testing.T) {
	dsn := pgtest.New(t)
	env := append(baseEnv(t, dsn), "MLFLOW_WRITER_FLUSH_INTERVAL=1h", "MLFLOW_WRITER_BATCH_SIZE=1000")
	s := start(t, env)
	const n = 40
	for i := 0; i < n; i++ {
		if resp, body := s.do("POST", "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	var before int
	queryRow(t, dsn, "SELECT count(*) FROM "+callTraces+" t", &before)
	if before >= n {
		t.Fatalf("the writer had already written %d traces: the test proves nothing", before)
	}
	start(t, env) // same journal directory, same database
	exactlyOnce(t, dsn, n)
}

// TestLogModeOffRecordsNothing runs the service with its call log switched
// off (the switch make bench measures logging's cost with): calls are
// answered, no MLflow table is created, the journal directory stays empty,
// and the startup report says the call log is off.
func TestLogModeOffRecordsNothing(t *testing.T) {
	dsn := pgtest.New(t)
	journal := t.TempDir()
	s := start(t, append(baseEnv(t, dsn), "MLFLOW_LOG_MODE=off", "MLFLOW_JOURNAL_DIR="+journal))
	for range 3 {
		if resp, body := s.do("POST", "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if _, body := s.adminGet("/debug/startup"); !strings.Contains(string(body), "MLFLOW_LOG_MODE=off") {
		t.Errorf("/debug/startup does not say the call log is off: %s", body)
	}
	if err := s.Stop(30 * time.Second); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, s.Log())
	}
	var tables int
	queryRow(t, dsn, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'trace_info'", &tables)
	if entries, err := os.ReadDir(journal); tables != 0 || err != nil || len(entries) != 0 {
		t.Errorf("with MLFLOW_LOG_MODE=off: %d trace_info tables, %d journal files (%v); want none", tables, len(entries), err)
	}
}

// TestMLflowOutageUnderLoad stops the MLflow database for 60 s while calls
// continue; everything is delivered exactly once after it returns.
func TestMLflowOutageUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("60 s outage")
	}
	ml := newContainer(t)
	dsn := pgtest.New(t)
	s := start(t, append(baseEnv(t, dsn), "MLFLOW_POOL=dedicated", "MLFLOW_TRACKING_URI="+ml.DSN,
		"MLFLOW_SQLALCHEMY_POOL_TIMEOUT=1"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *loadResult)
	go func() { done <- runLoad(ctx, s, 2) }()
	time.Sleep(2 * time.Second)
	ml.Stop(t)
	time.Sleep(60 * time.Second)
	ml.Start(t)
	time.Sleep(2 * time.Second)
	cancel()
	res := <-done
	if res.status[200] == 0 || len(res.status) != 1 {
		t.Fatalf("statuses during the MLflow outage = %v, want only 200s (the call log must not block calls)", res.status)
	}
	exactlyOnce(t, ml.DSN, res.ok())
	t.Logf("%d calls answered across a 60 s MLflow outage, all delivered exactly once", res.ok())
}

// TestMLflowFindsCallsByTheirClientsID sends an answered call and one refused
// for want of an audit reason, each with the client's X-Request-Id, and
// finds both in experiment tidygate/mock-chat under the client's id, the
// refusal with no token or cost rows, and no experiment hidden from
// MLflow's experiment list.
func TestMLflowFindsCallsByTheirClientsID(t *testing.T) {
	dsn := pgtest.New(t)
	s := start(t, baseEnv(t, dsn))
	if resp, body := s.do("POST", "/v1/chat/completions", chatBody, "X-Request-Id", "client-ok-1"); resp.StatusCode != 200 {
		t.Fatalf("answered call: %d %s", resp.StatusCode, body)
	}
	if resp, body := s.do("POST", "/v1/chat/completions", chatBody, "X-Request-Id", "client-refused-1", "X-Audit-Reason", ""); resp.StatusCode != 400 {
		t.Fatalf("call without an audit reason: %d %s, want 400", resp.StatusCode, body)
	}
	waitTraces(t, dsn, 2)
	for id, want := range map[string]string{"client-ok-1": "OK", "client-refused-1": "ERROR"} {
		var status, experiment string
		queryRow(t, dsn, `SELECT i.status, e.name FROM trace_info i JOIN experiments e USING (experiment_id)
			WHERE i.client_request_id = '`+id+`'`, &status, &experiment)
		if status != want || experiment != "tidygate/mock-chat" {
			t.Errorf("client id %s: trace %s in %s, want %s in tidygate/mock-chat", id, status, experiment, want)
		}
	}
	var metrics, hidden int
	queryRow(t, dsn, `SELECT count(*) FROM trace_metrics m JOIN trace_info i USING (request_id)
		WHERE i.client_request_id = 'client-refused-1'`, &metrics)
	queryRow(t, dsn, `SELECT count(*) FROM experiment_tags WHERE key = 'mlflow.experiment.isGateway'`, &hidden)
	if metrics != 0 || hidden != 0 {
		t.Errorf("the refusal has %d trace metrics, and %d experiments are hidden from MLflow's list; want none", metrics, hidden)
	}
}
