package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/mlflow"
	"github.com/tidygate/tidygate/internal/bench"
	"github.com/tidygate/tidygate/internal/domain"
)

// The writer's settings: tidygate's defaults (MLFLOW_WRITER_BATCH_SIZE,
// MLFLOW_WRITER_FLUSH_INTERVAL, MLFLOW_LOG_MODE, MLFLOW_LOG_CONTENT).
const (
	writerBatch = 100
	writerFlush = time.Second
)

// callLogOptions are the options of the harness's call logs: tidygate's
// defaults for traces with full content, MLflow's schema created, the
// journal in dir, counting as full from maxRecords on.
func callLogOptions(dir string, maxRecords int) mlflow.Options {
	return mlflow.Options{
		Schema: mlflow.SchemaCreate, LogMode: mlflow.LogTraces, Content: mlflow.ContentFull, ExperimentPrefix: "tidygate/",
		JournalDir: dir, JournalMaxRecords: maxRecords, BatchSize: writerBatch, FlushInterval: writerFlush,
	}
}

// writerApp is the application_name of the writer section's connections.
const writerApp = "tidygate-bench-writer"

// runWriter is section 3. It journals o.records call records while the
// database is out of reach, then opens the call log on a real pool and
// times the writer delivering the whole journal into MLflow's tables. The
// limit is the same rows, read back from those tables, written again by
// raw COPY (binary format, one COPY per table, one transaction) into empty
// copies of the tables with the same indexes and MLflow's foreign keys,
// which every row written into MLflow's tables must pass; a COPY into
// copies without the foreign keys is shown beside it.
func runWriter(ctx context.Context, o options, tmp string, r *report) (err error) {
	db, err := createDB(ctx, o.adminDSN, "writer")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.drop()) }()
	cfg, err := pgxpool.ParseConfig(db.dsn)
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = writerApp
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	opts := callLogOptions(filepath.Join(tmp, "writer-schema"), o.records+1)
	if err := openAndClose(ctx, pool, opts, nil); err != nil { // creates the schema, untimed
		return fmt.Errorf("create the MLflow schema: %w", err)
	}
	opts.JournalDir = filepath.Join(tmp, "writer-journal")
	// The CPU of each phase: this process's (it does nothing else
	// meanwhile) and the writer's PostgreSQL backends'.
	admin, err := pgx.Connect(ctx, o.adminDSN)
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	groups := []cpuGroup{{"process", fixedPIDs(os.Getpid())},
		{"postgres", func(ctx context.Context) ([]int, error) { return backendPIDs(ctx, admin, db.name, writerApp) }}}
	cpu0, err := snapshotCPU(ctx, groups)
	if err != nil {
		return err
	}
	if err := journal(ctx, opts, o.records); err != nil {
		return err
	}
	cpu1, err := snapshotCPU(ctx, groups)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(o.profileDir, "writer")
	if err != nil {
		return err
	}
	var delivered time.Duration
	err = openAndClose(ctx, pool, opts, &delivered)
	if err := errors.Join(err, stopProfile()); err != nil {
		return fmt.Errorf("deliver the journal: %w", err)
	}
	cpu2, err := snapshotCPU(ctx, groups)
	if err != nil {
		return err
	}
	journaling, delivery := cpuUsed(cpu0, cpu1), cpuUsed(cpu1, cpu2)
	var traces int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM trace_info").Scan(&traces); err != nil {
		return err
	}
	if traces != o.records {
		return fmt.Errorf("the writer wrote %d traces for %d records", traces, o.records)
	}
	copied, perTable, err := rawCopy(ctx, pool, "bench_copy_fk", true)
	if err != nil {
		return fmt.Errorf("raw COPY: %w", err)
	}
	copiedNoFK, _, err := rawCopy(ctx, pool, "bench_copy", false)
	if err != nil {
		return fmt.Errorf("raw COPY without foreign keys: %w", err)
	}
	var rows int64
	var tableRows [][]string
	for _, t := range slices.Sorted(maps.Keys(perTable)) {
		rows += perTable[t]
		if perTable[t] > 0 {
			tableRows = append(tableRows, []string{"`" + t + "`", fmt.Sprint(perTable[t]), fmt.Sprintf("%.2f", float64(perTable[t])/float64(o.records))})
		}
	}

	writerRate, copyRate := float64(o.records)/delivered.Seconds(), float64(o.records)/copied.Seconds()
	noFKRate := float64(o.records) / copiedNoFK.Seconds()
	r.section("3. The MLflow writer against raw COPY")
	r.para("%d call records (chat calls with a ~1 KB answer, MLFLOW_LOG_MODE=traces, MLFLOW_LOG_CONTENT=full, batches of %d) journaled while the database was away, then delivered by the writer of a freshly opened call log: "+
		"the time from Open until Flush returns, one writer goroutine, one transaction per batch. "+
		"The limit: the %d rows the writer produced across MLflow's tables, written again with one binary COPY per table in one transaction into empty copies of those tables "+
		"with the same indexes and MLflow's foreign keys (checked at commit), which any row written into MLflow's tables must pass. "+
		"Beside it, the same COPY into copies without the foreign keys: the floor of the rows alone, which no writer into MLflow's schema can reach.",
		o.records, writerBatch, rows)
	r.table([]string{"path", "time", "records/s", "rows/s", "writer / this"}, [][]string{
		{"call log writer", delivered.Round(time.Millisecond).String(), fmt.Sprintf("%.0f", writerRate), fmt.Sprintf("%.0f", float64(rows)/delivered.Seconds()), "–"},
		{"raw COPY into MLflow's tables (foreign keys)", copied.Round(time.Millisecond).String(), fmt.Sprintf("%.0f", copyRate), fmt.Sprintf("%.0f", float64(rows)/copied.Seconds()), ratio(writerRate, copyRate)},
		{"raw COPY, no foreign keys", copiedNoFK.Round(time.Millisecond).String(), fmt.Sprintf("%.0f", noFKRate), fmt.Sprintf("%.0f", float64(rows)/copiedNoFK.Seconds()), ratio(writerRate, noFKRate)},
	})
	perRecord := func(d time.Duration) time.Duration { return d / time.Duration(o.records) }
	r.para("CPU per record (user + system, /proc/PID/stat): journaling %s (`Record` from 64 goroutines: the record's encoding, the append, its share of the group commits), "+
		"delivery %s in this process (the writer: reading the journal back, decoding, building the rows, encoding them for COPY; the scan of the journal at Open included) "+
		"and %s in the writer's PostgreSQL backends; %s in all.",
		us(perRecord(journaling["process"])), us(perRecord(delivery["process"])), us(perRecord(delivery["postgres"])),
		us(perRecord(journaling["process"]+delivery["process"]+delivery["postgres"])))
	r.write("Rows by table:\n\n")
	r.table([]string{"table", "rows", "per record"}, tableRows)
	r.target("The writer reaches at least half of raw COPY's rows per second", ratio(writerRate, copyRate)+" of COPY's rate", writerRate >= copyRate/2)
	return nil
}

// startCPUProfile writes a CPU profile to DIR/NAME.cpu.pprof until the
// returned function is called; with no dir it does nothing.
func startCPUProfile(dir, name string) (func() error, error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() error { pprof.StopCPUProfile(); return f.Close() }, nil
}

// openAndClose opens the call log on pool, waits until its journal is
// delivered, and closes it; took, when not nil, receives the time from
// Open until the journal was empty.
func openAndClose(ctx context.Context, pool *pgxpool.Pool, opts mlflow.Options, took *time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	log, err := mlflow.Open(ctx, pool, opts)
	if err != nil {
		return err
	}
	err = log.Flush(ctx)
	if took != nil {
		*took = time.Since(start)
	}
	return errors.Join(err, log.Close(ctx))
}

// offline stands for a database that cannot be reached, so that Record
// only journals.
type offline struct{}

func (offline) Acquire(context.Context) (*pgxpool.Conn, error) {
	return nil, &domain.Error{Kind: domain.KindUnavailable, Code: "bench_offline", Message: "the harness keeps the database away while it journals"}
}

// journal records n call records from 64 goroutines into the journal in
// opts.JournalDir, with the database away, and closes the call log.
func journal(ctx context.Context, opts mlflow.Options, n int) error {
	log, err := mlflow.Open(ctx, offline{}, opts)
	if err != nil {
		return err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := log.Record(ctx, callRecord(i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	stopped, cancel := context.WithCancel(ctx)
	cancel() // the database is away: close at once, leaving the records in the journal
	return errors.Join(<-errs, log.Close(stopped))
}

// callRecord is the record of a chat call like the ones the latency
// section makes.
func callRecord(i int64) domain.CallRecord {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	temp := 0.2
	return domain.CallRecord{
		RequestID: fmt.Sprintf("bench-%08d", i), Endpoint: domain.EndpointChat, Start: start, End: start.Add(900 * time.Microsecond),
		KeyID: "key-bench", User: "dev", Team: "dev", AuditReason: "bench",
		RequestedModel: "bench-chat", Model: "bench-chat", Provider: "openai", UpstreamModel: "bench-chat",
		Temperature: &temp, MaxTokens: 512, Outcome: domain.OutcomeOK,
		Attempts: []domain.Attempt{{Provider: "openai", Model: "bench-chat", UpstreamModel: "bench-chat",
			Start: start.Add(400 * time.Microsecond), End: start.Add(800 * time.Microsecond)}},
		Usage:     domain.Usage{PromptTokens: 47, CompletionTokens: 247},
		InputCost: 8, OutputCost: 149, ProviderTime: 400 * time.Microsecond,
		Messages: []domain.Message{
			{Role: domain.RoleSystem, Content: "You are terse."},
			{Role: domain.RoleUser, Content: "Say hello to the benchmark, please."},
		},
		Output: bench.DefaultReply,
	}
}

// rawCopy copies every row of every table in the public schema into an
// empty copy of the table in a new schema, with the originals' foreign keys
// (made deferred, so that the tables can be copied in any order) when fks
// is set, and returns the time the COPYs and the commit took and the number
// of rows of each table.
func rawCopy(ctx context.Context, pool *pgxpool.Pool, schema string, fks bool) (time.Duration, map[string]int64, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Release()
	tableRows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
	if err != nil {
		return 0, nil, err
	}
	tables, err := pgx.CollectRows(tableRows, pgx.RowTo[string])
	if err != nil {
		return 0, nil, err
	}
	into := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+into); err != nil {
		return 0, nil, err
	}
	pg := conn.Conn().PgConn()
	data := make(map[string][]byte, len(tables))
	for _, t := range tables {
		id := pgx.Identifier{t}.Sanitize()
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s.%s (LIKE public.%s INCLUDING ALL)", into, id, id)); err != nil {
			return 0, nil, err
		}
		var buf bytes.Buffer
		if _, err := pg.CopyTo(ctx, &buf, fmt.Sprintf("COPY public.%s TO STDOUT (FORMAT binary)", id)); err != nil {
			return 0, nil, err
		}
		data[t] = buf.Bytes()
	}
	if fks {
		if err := copyForeignKeys(ctx, conn.Conn(), into); err != nil {
			return 0, nil, fmt.Errorf("foreign keys: %w", err)
		}
	}
	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
	rows := make(map[string]int64, len(tables))
	for _, t := range tables {
		tag, err := pg.CopyFrom(ctx, bytes.NewReader(data[t]), fmt.Sprintf("COPY %s.%s FROM STDIN (FORMAT binary)", into, pgx.Identifier{t}.Sanitize()))
		if err != nil {
			return 0, nil, fmt.Errorf("table %s: %w", t, err)
		}
		rows[t] = tag.RowsAffected()
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, nil, err
	}
	return time.Since(start), rows, nil
}

// copyForeignKeys adds the foreign keys of the public schema's tables to
// their copies in schema into, referencing the copies, deferred to commit.
func copyForeignKeys(ctx context.Context, conn *pgx.Conn, into string) error {
	rows, err := conn.Query(ctx, `SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	type fk struct{ table, name, def string }
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (fk, error) {
		var k fk
		return k, row.Scan(&k.table, &k.name, &k.def)
	})
	if err != nil {
		return err
	}
	// The definitions name the referenced tables unqualified: with the copies
	// first on the search path, they resolve to the copies.
	if _, err := conn.Exec(ctx, "SET search_path TO "+into+", public"); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "RESET search_path") }()
	for _, k := range keys {
		stmt := fmt.Sprintf("ALTER TABLE %s.%s ADD CONSTRAINT %s %s DEFERRABLE INITIALLY DEFERRED",
			into, pgx.Identifier{k.table}.Sanitize(), pgx.Identifier{k.name}.Sanitize(), k.def)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	if len(keys) == 0 {
		return errors.New("the MLflow tables have no foreign keys to copy")
	}
	return nil
}
