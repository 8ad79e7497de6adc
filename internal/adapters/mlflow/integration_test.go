//go:build integration

package mlflow

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newPool returns a pool on a fresh, empty database.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newTestWriter returns a writer, not started, that delivers from a
// journal of its own (closed when the test ends) into MLflow's tables on
// pool, created there: drain runs its passes one at a time.
func newTestWriter(t testing.TB, pool *pgxpool.Pool, opts Options) *writer {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st := newStore(pool, opts, log)
	if err := st.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	j, err := openJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() })
	return &writer{store: st, journal: j, intents: newIntents(), metrics: newMetrics(j), log: log, batchSize: opts.BatchSize}
}

func openLog(t testing.TB, conns Conns, opts Options) *CallLog {
	t.Helper()
	c, err := Open(context.Background(), conns, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { closeNow(t, c) })
	return c
}

func recordAll(t testing.TB, c *CallLog, recs []domain.CallRecord) {
	t.Helper()
	for _, r := range recs {
		if err := c.Record(context.Background(), r); err != nil {
			t.Fatalf("Record %s: %v", r.RequestID, err)
		}
	}
}

func flush(t testing.TB, c *CallLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func count(t testing.TB, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// tableCounts returns the number of rows of every table tidygate writes.
func tableCounts(t testing.TB, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tb := range mlflowTables() {
		out[tb.name] = count(t, pool, "SELECT count(*) FROM "+tb.name)
	}
	return out
}

// checkTraces checks that every record has one consistent trace: spans
// whose content parses, and token and cost figures equal to the record's.
func checkTraces(t *testing.T, pool *pgxpool.Pool, recs []domain.CallRecord) {
	t.Helper()
	ctx := context.Background()
	if got := count(t, pool, "SELECT count(*) FROM trace_info"); got != len(recs) {
		t.Errorf("trace_info has %d rows, want %d", got, len(recs))
	}
	traceMetrics, spanMetrics := tableExists(t, pool, "trace_metrics"), tableExists(t, pool, "span_metrics")
	for _, r := range recs {
		traceID := newTraceIDs(r.RequestID).traceID()
		var status, client, experimentName string
		var ts, exec int64
		err := pool.QueryRow(ctx, `SELECT t.status, coalesce(t.client_request_id, ''), t.timestamp_ms, t.execution_time_ms, e.name
			FROM trace_info t JOIN experiments e USING (experiment_id) WHERE t.request_id = $1`, traceID).
			Scan(&status, &client, &ts, &exec, &experimentName)
		if err != nil {
			t.Errorf("%s: trace_info: %v", r.RequestID, err)
			continue
		}
		wantStatus := "OK"
		if r.Outcome != domain.OutcomeOK {
			wantStatus = "ERROR"
		}
		if status != wantStatus || client != clientRequestID(r) || ts != r.Start.UnixMilli() || exec != r.Duration().Milliseconds() ||
			experimentName != "tidygate/"+modelOf(r) {
			t.Errorf("%s: trace_info %s %s %d %d in %s", r.RequestID, status, client, ts, exec, experimentName)
		}

		wantSpans := 1 + len(attemptsOf(r))
		rows, _ := pool.Query(ctx, `SELECT span_id, coalesce(parent_span_id, ''), content, duration_ns, type, status
			FROM spans WHERE trace_id = $1 ORDER BY parent_span_id NULLS FIRST`, traceID)
		type spanRowOut struct {
			id, parent, content string
			duration            int64
			typ, status         string
		}
		spans, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (spanRowOut, error) {
			var s spanRowOut
			return s, row.Scan(&s.id, &s.parent, &s.content, &s.duration, &s.typ, &s.status)
		})
		if err != nil || len(spans) != wantSpans {
			t.Errorf("%s: %d spans (%v), want %d", r.RequestID, len(spans), err, wantSpans)
			continue
		}
		for _, s := range spans {
			var c spanContent
			if err := json.Unmarshal([]byte(s.content), &c); err != nil {
				t.Errorf("%s: span content does not parse: %v", r.RequestID, err)
				continue
			}
			id, _ := base64.StdEncoding.DecodeString(c.SpanID)
			if hex.EncodeToString(id) != s.id || c.Attributes["mlflow.traceRequestId"] != `"`+traceID+`"` ||
				s.duration != c.EndTimeUnixNano-c.StartTimeUnixNano || (s.status == "ERROR") != (c.Status.Code == "STATUS_CODE_ERROR") ||
				(s.parent == "" && s.status != wantStatus) {
				t.Errorf("%s: span %s disagrees with its content", r.RequestID, s.id)
			}
		}
		var numSpans struct {
			NumSpans int `json:"num_spans"`
		}
		var sizeStats string
		_ = pool.QueryRow(ctx, `SELECT value FROM trace_request_metadata WHERE request_id = $1 AND key = 'mlflow.trace.sizeStats'`, traceID).Scan(&sizeStats)
		if err := json.Unmarshal([]byte(sizeStats), &numSpans); err != nil || numSpans.NumSpans != wantSpans || numSpans.NumSpans != len(spans) {
			t.Errorf("%s: sizeStats %q, want %d spans", r.RequestID, sizeStats, wantSpans)
		}
		if n := count(t, pool, `SELECT count(*) FROM trace_tags WHERE request_id = $1 AND key = 'mlflow.trace.spansLocation' AND value = 'TRACKING_STORE'`, traceID); n != 1 {
			t.Errorf("%s: no spansLocation tag", r.RequestID)
		}

		if !traceMetrics || !spanMetrics { // MLflow before 3.10
			continue
		}
		if !hasUsage(r) {
			// A call without usage has no token or cost rows, as MLflow writes none.
			if n := count(t, pool, `SELECT (SELECT count(*) FROM trace_metrics WHERE request_id = $1) + (SELECT count(*) FROM span_metrics WHERE trace_id = $1)`, traceID); n != 0 {
				t.Errorf("%s: a call without usage has %d metric rows", r.RequestID, n)
			}
			continue
		}
		var in, out, total float64
		_ = pool.QueryRow(ctx, `SELECT
			(SELECT value FROM trace_metrics WHERE request_id = $1 AND key = 'input_tokens'),
			(SELECT value FROM trace_metrics WHERE request_id = $1 AND key = 'output_tokens'),
			(SELECT value FROM trace_metrics WHERE request_id = $1 AND key = 'total_tokens')`, traceID).Scan(&in, &out, &total)
		if int(in) != r.Usage.PromptTokens || int(out) != r.Usage.CompletionTokens || int(total) != r.Usage.Total() {
			t.Errorf("%s: trace metrics %v/%v/%v, want %+v", r.RequestID, in, out, total, r.Usage)
		}
		var cost float64
		err = pool.QueryRow(ctx, `SELECT coalesce(sum(value), -1) FROM span_metrics WHERE trace_id = $1 AND key = 'total_cost'`, traceID).Scan(&cost)
		wantCost := r.Cost().USD()
		if err != nil || cost != wantCost {
			t.Errorf("%s: span total_cost %v (%v), want %v", r.RequestID, cost, err, wantCost)
		}
	}
}

func TestWritesOneConsistentTracePerCall(t *testing.T) {
	pool := newPool(t)
	reg := prometheus.NewRegistry()
	opts := testOptions(t)
	opts.Registerer = reg
	c := openLog(t, pool, opts)
	recs := mixed("mixed", 23)
	recs[len(recs)-1].Model = "" // rejected before its model was resolved
	recs[len(recs)-1].Outcome = domain.OutcomeRejected
	recs[len(recs)-1].Usage, recs[len(recs)-1].InputCost, recs[len(recs)-1].OutputCost = domain.Usage{}, 0, 0
	recordAll(t, c, recs)
	flush(t, c)

	checkTraces(t, pool, recs)
	if got := value(t, c.metrics.written); got != float64(len(recs)) {
		t.Errorf("written_total = %v, want %d", got, len(recs))
	}
	if got := value(t, c.metrics.queued); got != 0 {
		t.Errorf("records_queued = %v after Flush", got)
	}
	rows, _ := pool.Query(context.Background(), `SELECT e.name, e.artifact_location, e.lifecycle_stage, e.workspace, t.value
		FROM experiments e LEFT JOIN experiment_tags t ON t.experiment_id = e.experiment_id AND t.key = 'tidygate.model'
		ORDER BY e.name`)
	type exp struct{ name, location, stage, workspace, model string }
	exps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (exp, error) {
		var e exp
		var gw *string
		err := row.Scan(&e.name, &e.location, &e.stage, &e.workspace, &gw)
		if gw != nil {
			e.model = *gw
		}
		return e, err
	})
	if err != nil || len(exps) != 3 {
		t.Fatalf("experiments %+v (%v), want tidygate/mock-chat, tidygate/mock-embed, tidygate/unknown-model", exps, err)
	}
	for i, model := range []string{"mock-chat", "mock-embed", "unknown-model"} {
		e := exps[i]
		if e.name != "tidygate/"+model || !regexp.MustCompile(`^mlflow-artifacts:/\d+$`).MatchString(e.location) ||
			e.stage != "active" || e.workspace != "default" || e.model != model {
			t.Errorf("experiment %d = %+v, want tidygate/%s, active, default, tagged tidygate.model", i, e, model)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM experiment_tags WHERE key = 'mlflow.experiment.isGateway'`); n != 0 {
		t.Errorf("%d experiments carry mlflow.experiment.isGateway, which hides them from MLflow's experiment list", n)
	}
	var dims string
	_ = pool.QueryRow(context.Background(), `SELECT dimension_attributes::text FROM spans WHERE type = 'LLM' LIMIT 1`).Scan(&dims)
	if !strings.Contains(dims, `"mlflow.llm.provider":"mock"`) {
		t.Errorf("dimension_attributes = %q", dims)
	}
}

func TestRunsMode(t *testing.T) {
	pool := newPool(t)
	opts := testOptions(t)
	opts.LogMode = LogBoth
	c := openLog(t, pool, opts)
	recs := mixed("runs", 10)

	// A run whose latency_ms already has a later step keeps it; one whose
	// value is older is replaced (MLflow's latest_metrics rule). Open has
	// created the tables.
	ctx := context.Background()
	keep, replace := runUUID(recs[0].RequestID), runUUID(recs[1].RequestID)
	_, err := pool.Exec(ctx, `
		INSERT INTO experiments (name, lifecycle_stage) VALUES ('seed', 'active');
		INSERT INTO runs (run_uuid, status, lifecycle_stage, experiment_id) SELECT r, 'RUNNING', 'active', experiment_id FROM experiments, unnest(ARRAY['`+keep+`', '`+replace+`']) r WHERE name = 'seed';
		INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES
			('latency_ms', 42, 0, 5, false, '`+keep+`'), ('latency_ms', 42, 0, 0, false, '`+replace+`')`)
	if err != nil {
		t.Fatal(err)
	}
	recordAll(t, c, recs)
	flush(t, c)

	checkTraces(t, pool, recs)
	if got := count(t, pool, "SELECT count(*) FROM runs"); got != len(recs) {
		t.Errorf("runs has %d rows, want %d", got, len(recs))
	}
	for i, r := range recs[2:] {
		id := runUUID(r.RequestID)
		var name, status, user, stage, uri, source string
		var start, end int64
		err := pool.QueryRow(ctx, `SELECT name, status, user_id, lifecycle_stage, artifact_uri, source_type, start_time, end_time
			FROM runs WHERE run_uuid = $1`, id).Scan(&name, &status, &user, &stage, &uri, &source, &start, &end)
		wantStatus := "FINISHED"
		if r.Outcome != domain.OutcomeOK {
			wantStatus = "FAILED"
		}
		if err != nil || name != r.RequestID || status != wantStatus || user != "alice" || stage != "active" ||
			!strings.HasSuffix(uri, "/"+id+"/artifacts") || source != "UNKNOWN" || start != r.Start.UnixMilli() || end != r.End.UnixMilli() {
			t.Errorf("run %d: %s %s %s %s %s %s %d %d (%v)", i, name, status, user, stage, uri, source, start, end, err)
		}
		params := map[string]string{}
		rows, _ := pool.Query(ctx, "SELECT key, value FROM params WHERE run_uuid = $1", id)
		var k, v string
		_, _ = pgx.ForEachRow(rows, []any{&k, &v}, func() error { params[k] = v; return nil })
		if params["model"] != modelOf(r) || params["user"] != "alice" || params["team"] != "risk" || params["reason"] != r.AuditReason {
			t.Errorf("run %d params = %v", i, params)
		}
		for key, want := range map[string]float64{
			"prompt_tokens": float64(r.Usage.PromptTokens), "completion_tokens": float64(r.Usage.CompletionTokens),
			"total_tokens": float64(r.Usage.Total()), "cost_usd": r.Cost().USD(), "latency_ms": 250,
		} {
			var got, latest float64
			err := pool.QueryRow(ctx, `SELECT m.value, l.value FROM metrics m JOIN latest_metrics l USING (run_uuid, key)
				WHERE m.run_uuid = $1 AND m.key = $2 AND m.step = 0 AND l.step = 0`, id, key).Scan(&got, &latest)
			if err != nil || got != want || latest != want {
				t.Errorf("run %d metric %s = %v, latest %v (%v), want %v", i, key, got, latest, err, want)
			}
		}
		var source2 string
		_ = pool.QueryRow(ctx, `SELECT value FROM trace_request_metadata WHERE request_id = $1 AND key = 'mlflow.sourceRun'`,
			newTraceIDs(r.RequestID).traceID()).Scan(&source2)
		if source2 != id {
			t.Errorf("run %d: trace's mlflow.sourceRun = %q, want %s", i, source2, id)
		}
	}
	var keptStep, replacedStep int64
	var replacedValue float64
	_ = pool.QueryRow(ctx, `SELECT step FROM latest_metrics WHERE run_uuid = $1 AND key = 'latency_ms'`, keep).Scan(&keptStep)
	_ = pool.QueryRow(ctx, `SELECT step, value FROM latest_metrics WHERE run_uuid = $1 AND key = 'latency_ms'`, replace).Scan(&replacedStep, &replacedValue)
	if keptStep != 5 {
		t.Errorf("a latest metric at a later step was replaced (step %d)", keptStep)
	}
	if replacedStep != 0 || replacedValue != 250 {
		t.Errorf("an older latest metric was not replaced: step %d value %v", replacedStep, replacedValue)
	}
}

func TestDeliveringTwiceChangesNothing(t *testing.T) {
	pool := newPool(t)
	opts := testOptions(t)
	opts.LogMode = LogBoth
	c := openLog(t, pool, opts)
	recs := mixed("twice", 15)
	recordAll(t, c, recs)
	flush(t, c)
	before := tableCounts(t, pool)

	recordAll(t, c, recs)                  // the same records again, in another batch,
	recordAll(t, c, append(recs, recs...)) // and twice in one batch
	flush(t, c)
	after := tableCounts(t, pool)
	for table, n := range before {
		if after[table] != n {
			t.Errorf("%s: %d rows after redelivery, %d before", table, after[table], n)
		}
	}
	if before["trace_info"] != len(recs) || before["runs"] != len(recs) {
		t.Errorf("first delivery wrote %d traces and %d runs, want %d", before["trace_info"], before["runs"], len(recs))
	}
}

// flakyConns fails while down is set, like a database that has gone away.
type flakyConns struct {
	pool     *pgxpool.Pool
	down     atomic.Bool
	failures atomic.Int64
}

func (f *flakyConns) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if f.down.Load() {
		f.failures.Add(1)
		return nil, domain.Errorf(domain.KindUnavailable, "database down (test)")
	}
	return f.pool.Acquire(ctx)
}

// waitFor polls cond until it holds; the test's deadline bounds the wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if deadline, ok := t.Deadline(); ok && time.Until(deadline) < 5*time.Second {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOutageKeepsRecordsUntilTheDatabaseReturns(t *testing.T) {
	pool := newPool(t)
	conns := &flakyConns{pool: pool}
	c := openLog(t, conns, testOptions(t))
	first := mixed("before", 5)
	recordAll(t, c, first)
	flush(t, c)

	conns.down.Store(true)
	during := mixed("during", 60) // more than a batch
	recordAll(t, c, during[:30])
	waitFor(t, "a failed write", func() bool { return value(t, c.metrics.retries) >= 1 })
	recordAll(t, c, during[30:])
	if got := c.journal.len(); got != len(during) {
		t.Errorf("during the outage the journal holds %d records, want %d", got, len(during))
	}
	if got := count(t, pool, "SELECT count(*) FROM trace_info"); got != len(first) {
		t.Errorf("during the outage trace_info has %d rows, want %d", got, len(first))
	}

	conns.down.Store(false)
	flush(t, c)
	checkTraces(t, pool, append(first, during...))
	if got := value(t, c.metrics.written); got != float64(len(first)+len(during)) {
		t.Errorf("written_total = %v, want %d", got, len(first)+len(during))
	}
	if value(t, c.metrics.refused) != 0 {
		t.Errorf("records were set aside during an outage")
	}
}

func TestRecordsJournaledBeforeARestartAreDelivered(t *testing.T) {
	pool := newPool(t)
	opts := testOptions(t)
	recs := mixed("restart", 40)

	down, err := Open(context.Background(), downConns{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	recordAll(t, down, recs)
	closeNow(t, down) // the database never answered: everything stays on disk

	c := openLog(t, pool, opts) // the same journal directory
	flush(t, c)
	checkTraces(t, pool, recs)
	if c.journal.len() != 0 {
		t.Errorf("journal holds %d records after delivery", c.journal.len())
	}
	closeNow(t, c)

	again := openLog(t, pool, opts) // nothing is delivered twice
	flush(t, again)
	if got := count(t, pool, "SELECT count(*) FROM trace_info"); got != len(recs) {
		t.Errorf("trace_info has %d rows after a second restart, want %d", got, len(recs))
	}
}

func TestCloseDrainsTheJournal(t *testing.T) {
	pool := newPool(t)
	opts := testOptions(t)
	opts.FlushInterval = time.Hour // only Close delivers
	opts.BatchSize = 1000
	c, err := Open(context.Background(), pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	recs := mixed("close", 12)
	recordAll(t, c, recs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkTraces(t, pool, recs)
}

func TestARefusedRecordIsSetAsideAndTheRestDelivered(t *testing.T) {
	pool := newPool(t)
	c := openLog(t, pool, testOptions(t))
	if _, err := pool.Exec(context.Background(),
		`ALTER TABLE trace_info ADD CONSTRAINT refuse_poison CHECK (client_request_id <> 'client-poison')`); err != nil {
		t.Fatal(err)
	}
	recs := mixed("good", 6)
	poison := sample("poison", okChat, 99)
	recordAll(t, c, append(recs[:3:3], append([]domain.CallRecord{poison}, recs[3:]...)...))
	flush(t, c)
	checkTraces(t, pool, recs)
	if n, _ := c.journal.quarantined(); n != 1 || value(t, c.metrics.refused) != 1 {
		t.Errorf("quarantined %d records (write_errors_total %v), want 1", n, value(t, c.metrics.refused))
	}
}

func TestCreateThenVerify(t *testing.T) {
	pool := newPool(t)
	opts := testOptions(t)
	opts.LogMode = LogBoth
	closeNow(t, openLog(t, pool, opts))
	closeNow(t, openLog(t, pool, opts)) // creating twice is harmless
	var head string
	if err := pool.QueryRow(context.Background(), "SELECT string_agg(version_num, ',') FROM alembic_version").Scan(&head); err != nil || head != createdHead {
		t.Errorf("alembic_version = %q (%v), want %s", head, err, createdHead)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'index_%' OR indexname = 'idx_experiments_workspace'`); n != 15 {
		t.Errorf("%d of MLflow's 15 indexes exist", n)
	}
	opts.Schema = SchemaVerify
	c := openLog(t, pool, opts)
	recs := mixed("verified", 5)
	recordAll(t, c, recs)
	flush(t, c)
	checkTraces(t, pool, recs)
}

func TestCreateKeepsAnExistingAlembicVersion(t *testing.T) {
	pool := newPool(t)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
		INSERT INTO alembic_version VALUES ('a6d4e8b2c901')`); err != nil {
		t.Fatal(err)
	}
	closeNow(t, openLog(t, pool, testOptions(t)))
	var head string
	_ = pool.QueryRow(context.Background(), "SELECT string_agg(version_num, ',') FROM alembic_version").Scan(&head)
	if head != "a6d4e8b2c901" {
		t.Errorf("alembic_version = %q, want the existing revision untouched", head)
	}
}

func TestVerifyRefusesAMissingColumn(t *testing.T) {
	pool := newPool(t)
	closeNow(t, openLog(t, pool, testOptions(t)))
	if _, err := pool.Exec(context.Background(), `ALTER TABLE trace_info DROP COLUMN response_preview; DROP TABLE span_metrics`); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	opts.Schema = SchemaVerify
	_, err := Open(context.Background(), pool, opts)
	if err == nil {
		t.Fatal("Open verified a schema that lacks trace_info.response_preview")
	}
	for _, want := range []string{"table trace_info lacks column response_preview", "mlflow db upgrade", createdHead} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "span_metrics") {
		t.Errorf("an optional table (span_metrics, MLflow ≥ 3.10) is reported missing: %v", err)
	}
}

func TestNewerMLflowColumnsAreFilled(t *testing.T) {
	pool := newPool(t)
	closeNow(t, openLog(t, pool, testOptions(t)))
	_, err := pool.Exec(context.Background(), `
		ALTER TABLE trace_info ADD COLUMN db_payload_generation INTEGER NOT NULL DEFAULT 0,
			ADD COLUMN trace_name VARCHAR(250), ADD COLUMN session_id VARCHAR(250),
			ADD COLUMN input_tokens BIGINT, ADD COLUMN output_tokens BIGINT, ADD COLUMN total_tokens BIGINT,
			ADD COLUMN input_cost DOUBLE PRECISION, ADD COLUMN output_cost DOUBLE PRECISION, ADD COLUMN total_cost DOUBLE PRECISION;
		ALTER TABLE spans DROP COLUMN dimension_attributes, ADD COLUMN model_name VARCHAR(500), ADD COLUMN model_provider VARCHAR(500),
			ADD COLUMN input_cost DOUBLE PRECISION, ADD COLUMN output_cost DOUBLE PRECISION, ADD COLUMN total_cost DOUBLE PRECISION`)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	opts.Schema = SchemaVerify
	c := openLog(t, pool, opts)
	r := sample("newer", okChat, 1)
	recordAll(t, c, []domain.CallRecord{r})
	flush(t, c)
	checkTraces(t, pool, []domain.CallRecord{r})
	var name string
	var total int64
	var cost, spanCost float64
	var model, provider string
	traceID := newTraceIDs(r.RequestID).traceID()
	err = pool.QueryRow(context.Background(), `SELECT t.trace_name, t.total_tokens, t.total_cost, s.total_cost, s.model_name, s.model_provider
		FROM trace_info t JOIN spans s ON s.trace_id = t.request_id AND s.type = 'LLM' WHERE t.request_id = $1`, traceID).
		Scan(&name, &total, &cost, &spanCost, &model, &provider)
	if err != nil || name != "gateway/mock-chat" || total != int64(r.Usage.Total()) || cost != r.Cost().USD() ||
		spanCost != r.Cost().USD() || model != "mock-chat-v1" || provider != "mock" {
		t.Errorf("newer columns: %q %d %v %v %q %q (%v)", name, total, cost, spanCost, model, provider, err)
	}
}

// loadMLflowSchema loads MLflow's own PostgreSQL schema dump
// (testdata/mlflow-postgresql.sql, see testdata/SOURCE.md): the sequence it
// lacks first, then its CREATE TABLE statements, retried until their
// foreign keys' tables exist.
func loadMLflowSchema(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	dump, err := os.ReadFile(filepath.Join("testdata", "mlflow-postgresql.sql"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE SEQUENCE experiments_experiment_id_seq"); err != nil {
		t.Fatal(err)
	}
	var pending []string
	for _, stmt := range strings.Split(string(dump), "\n\n\n") {
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			pending = append(pending, stmt)
		}
	}
	for len(pending) > 0 {
		var failed []string
		var lastErr error
		for _, stmt := range pending {
			if _, err := pool.Exec(ctx, stmt); err != nil {
				failed, lastErr = append(failed, stmt), err
			}
		}
		if len(failed) == len(pending) {
			t.Fatalf("%d statements of the dump do not load: %v", len(failed), lastErr)
		}
		pending = failed
	}
	if n := count(t, pool, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"); n != 48 {
		t.Fatalf("the dump loaded %d tables, want 48", n)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO alembic_version VALUES ('7d34483879f0')"); err != nil {
		t.Fatal(err)
	}
}

func TestWritesIntoMLflowsOwnSchema(t *testing.T) {
	pool := newPool(t)
	loadMLflowSchema(t, pool)
	opts := testOptions(t)
	opts.Schema, opts.LogMode = SchemaVerify, LogBoth
	c := openLog(t, pool, opts)
	recs := mixed("mlflow", 20)
	recordAll(t, c, recs)
	flush(t, c)
	checkTraces(t, pool, recs)
	if got := count(t, pool, "SELECT count(*) FROM runs"); got != len(recs) {
		t.Errorf("runs has %d rows, want %d", got, len(recs))
	}
	if got := count(t, pool, "SELECT count(*) FROM spans WHERE dimension_attributes IS NOT NULL"); got != count(t, pool, "SELECT count(*) FROM spans WHERE parent_span_id IS NOT NULL") {
		t.Errorf("%d provider spans lack dimension_attributes", got)
	}
}

func TestReplicasCreatingOneExperimentAgree(t *testing.T) {
	pool := newPool(t)
	closeNow(t, openLog(t, pool, testOptions(t))) // the tables
	const replicas = 8
	ids := make([]int64, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			conn, err := pool.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Release()
			e, _, err := ensureExperiment(context.Background(), conn.Conn(), "tidygate/raced", experimentSpec{suffix: "raced", note: "raced", tagKey: "tidygate.model", tagValue: "raced"}, true)
			if err != nil {
				t.Error(err)
			}
			ids[i] = e.id
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("replicas got different experiment ids: %v", ids)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM experiments WHERE name = 'tidygate/raced'"); n != 1 {
		t.Errorf("%d experiments named tidygate/raced, want 1", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM experiment_tags WHERE experiment_id = $1 AND key = 'tidygate.model'", ids[0]); n != 1 {
		t.Errorf("the raced experiment has %d tidygate.model tags, want 1", n)
	}
}

// TestCopyWritesWhatTheInsertsWrite writes the same calls, in both log
// modes, with COPY into one database and with the idempotent inserts (the
// path of a redelivery) into another, and finds every written table the
// same in both, NULLs included.
func TestCopyWritesWhatTheInsertsWrite(t *testing.T) {
	ctx := context.Background()
	opts := testOptions(t)
	opts.LogMode = LogBoth
	var calls []call
	for _, r := range mixed("same", 12) {
		calls = append(calls, journaled(t, r))
	}
	log := slog.New(slog.DiscardHandler)
	copied, inserted := newPool(t), newPool(t)
	for _, pool := range []*pgxpool.Pool{copied, inserted} {
		st := newStore(pool, opts, log)
		if err := st.prepare(ctx); err != nil {
			t.Fatal(err)
		}
		if pool == inserted {
			st.schema.copies = map[string][]string{} // every table through its insert
		} else if len(st.schema.copies) == 0 {
			t.Fatal("the schema has no table to COPY into")
		}
		if err := st.write(ctx, calls); err != nil {
			t.Fatal(err)
		}
	}
	digest := func(pool *pgxpool.Pool, table string) (n int, sum string) {
		t.Helper()
		q := fmt.Sprintf("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM %s t", table)
		if err := pool.QueryRow(ctx, q).Scan(&n, &sum); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		return n, sum
	}
	for _, table := range []string{"trace_info", "trace_tags", "trace_request_metadata", "trace_metrics", "spans", "span_metrics",
		"runs", "tags", "params", "metrics", "latest_metrics"} {
		nc, sc := digest(copied, table)
		ni, si := digest(inserted, table)
		if nc == 0 || nc != ni || sc != si {
			t.Errorf("%s: COPY wrote %d rows (digest %s), the inserts %d (digest %s); want the same, and some", table, nc, sc, ni, si)
		}
	}
}

// TestEachPassDeliversWhatItFindsWaiting checks how much of the journal
// each of the writer's passes delivers, with a batch size of 10: the tick's
// and a wake-up's what was waiting when it began (25 records: three
// batches, the last of 5), a Flush everything.
func TestEachPassDeliversWhatItFindsWaiting(t *testing.T) {
	pool := newPool(t)
	opts := testOptions(t)
	opts.BatchSize = 10
	ctx := context.Background()
	w := newTestWriter(t, pool, opts)
	j := w.journal
	journal := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			value, err := encodeRecord(sample(fmt.Sprintf("%s-%d", prefix, i), i%numShapes, i), ContentFull)
			if err == nil {
				_, err = j.append(value)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	traces := func() int { return count(t, pool, "SELECT count(*) FROM trace_info") }

	journal("due", 25)
	if err := w.drain(ctx, nil, passDue); err != nil {
		t.Fatal(err)
	}
	if got, left := traces(), j.len(); got != 25 || left != 0 {
		t.Fatalf("the tick with 25 records waiting left %d of them (%d traces); want all delivered", left, got)
	}

	journal("flush", 23)
	if err := w.drain(ctx, nil, passAll); err != nil {
		t.Fatal(err)
	}
	if got, left := traces(), j.len(); got != 48 || left != 0 {
		t.Fatalf("a flush with 23 records waiting left %d (%d traces); want all delivered", left, got)
	}
}
