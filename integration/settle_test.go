//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/pgtest"
)

// recordedCost returns the sum of the costs MLflow's traces hold (the
// records' own costs), in micro-dollars.
func recordedCost(t *testing.T, dsn string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT value FROM trace_request_metadata WHERE key = 'mlflow.trace.cost'`)
	if err != nil {
		t.Fatal(err)
	}
	costs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, c := range costs {
		var v struct {
			TotalCost float64 `json:"total_cost"`
		}
		if err := json.Unmarshal([]byte(c), &v); err != nil {
			t.Fatalf("trace cost %q: %v", c, err)
		}
		total += int64(math.Round(v.TotalCost * 1e6))
	}
	return total
}

// ledgerState is what the ledger holds after a test's one call: its
// reservation's state, the budgets' spend and holds, and the usage counted.
type ledgerState struct {
	reservation       string
	spent, held, used int64
}

// readLedger reads the ledger of a database that saw one call.
func readLedger(t *testing.T, dsn string) ledgerState {
	t.Helper()
	var l ledgerState
	queryRow(t, dsn, `SELECT state FROM tidygate_reservations`, &l.reservation)
	queryRow(t, dsn, `SELECT coalesce(sum(spent_micros), 0)::bigint, coalesce(sum(reserved_micros), 0)::bigint FROM tidygate_spend`, &l.spent, &l.held)
	queryRow(t, dsn, `SELECT coalesce(sum(cost_micros), 0)::bigint FROM tidygate_usage`, &l.used)
	return l
}

// waitSettled waits until no reservation is held any more.
func waitSettled(t *testing.T, dsn string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var held int
		queryRow(t, dsn, `SELECT count(*) FROM tidygate_reservations WHERE state = 'held'`, &held)
		if held == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("reservations still held a minute after the restart")
}

// TestKillAfterTheAnswerBeforeTheSettlementSettlesTheRecordedCost answers a
// call while the test holds its reservation's row locked, so that its
// settlement cannot be applied, kills the service with SIGKILL, and
// restarts it on the same journal: the call is settled at the cost its
// record holds, exactly, and nothing stays held.
func TestKillAfterTheAnswerBeforeTheSettlementSettlesTheRecordedCost(t *testing.T) {
	dsn := pgtest.New(t)
	env := baseEnv(t, dsn)
	s := start(t, append(env, "MOCK_LATENCY=2s", "MLFLOW_WRITER_FLUSH_INTERVAL=1h", "MLFLOW_WRITER_BATCH_SIZE=1000"))
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(s.chatRequest())
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM tidygate_reservations WHERE state = 'held'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no reservation held within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT id FROM tidygate_reservations FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("the call answered %d, want 200", code)
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	var state string
	queryRow(t, dsn, `SELECT state FROM tidygate_reservations`, &state)
	if state != "held" {
		t.Fatalf("after the kill the reservation is %s; want held (its settlement was not applied)", state)
	}

	start(t, env) // same journal directory, same database
	exactlyOnce(t, dsn, 1)
	waitSettled(t, dsn)
	l := readLedger(t, dsn)
	state, spent, held, used := l.reservation, l.spent, l.held, l.used
	recorded := recordedCost(t, dsn)
	if state != "settled" || recorded <= 0 || used != recorded || held != 0 || (spent != 0 && spent != recorded) {
		t.Fatalf("after the restart: reservation %s, usage %d, spend %d, held %d; want settled at the recorded cost %d, nothing held",
			state, used, spent, held, recorded)
	}
}

// TestKillAfterConcurrentAnswersKeepsOneBudgetExact sends 40 calls at once
// against one key's daily budget, which admits only some of them, kills
// the service with SIGKILL right after the last answer (settlements still
// in flight or not), and restarts it on the same journal: the budget's
// spend is exactly the sum of the costs of the calls recorded, within the
// limit, and nothing stays held.
func TestKillAfterConcurrentAnswersKeepsOneBudgetExact(t *testing.T) {
	dsn := pgtest.New(t)
	env := append(baseEnv(t, dsn), "MAX_CONCURRENT_PER_KEY=100", "MLFLOW_WRITER_FLUSH_INTERVAL=1h", "MLFLOW_WRITER_BATCH_SIZE=1000")
	s := start(t, env)
	const limit = 20_000 // micro-dollars: three calls' worst cases (4096 output tokens at $1.50 a million)
	key := createKey(t, env, "--user", "carol", "--team", "exact", "--daily-budget-usd", "0.02")
	var mu sync.Mutex
	status := map[int]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := s.do("POST", "/v1/chat/completions", chatBody, "Authorization", "Bearer "+key)
			mu.Lock()
			status[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	if status[200] == 0 || status[200]+status[429] != 40 {
		t.Fatalf("statuses %v; want some answered and the rest refused by the budget", status)
	}

	start(t, env)
	waitTraces(t, dsn, status[200])
	waitSettled(t, dsn)
	var spent, held int64
	queryRow(t, dsn, `SELECT coalesce(sum(spent_micros), 0)::bigint, coalesce(sum(reserved_micros), 0)::bigint
		FROM tidygate_spend WHERE scope_id = 'carol'`, &spent, &held)
	var okTraces int
	queryRow(t, dsn, `SELECT count(*) FROM `+callTraces+` t WHERE status = 'OK'`, &okTraces)
	recorded := recordedCost(t, dsn)
	if okTraces != status[200] || spent != recorded || held != 0 || spent > limit {
		t.Fatalf("after the restart: %d answered, %d traces OK; spent %d, held %d, limit %d; want the spend exactly the recorded %d, within the limit, nothing held",
			status[200], okTraces, spent, held, limit, recorded)
	}
	t.Logf("%v; spent %d of %d micro-dollars, exactly the recorded costs", status, spent, limit)
}
