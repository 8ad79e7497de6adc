package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/bench"
)

// poolRun is one benchmark's repeated measurements.
type poolRun struct {
	name    string
	nsPerOp []float64
}

func (p poolRun) median() float64 { return median(p.nsPerOp) }

// runPools is section 4: acquire + SELECT 1 + release at concurrency 1
// through pgxpool (as tidygate's shared pool is configured, and with a ping
// on every acquire), on a new connection per query, and through the
// original system's Python pools, interleaved run by run so that drift
// falls on all of them alike.
func runPools(ctx context.Context, o options, r *report) (err error) {
	testing.Init()
	if err := flag.Set("test.benchtime", o.benchtime.String()); err != nil {
		return err
	}
	db, err := createDB(ctx, o.adminDSN, "pools")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.drop()) }()
	dsn := db.dsn
	plain, err := newBenchPool(ctx, dsn, false)
	if err != nil {
		return err
	}
	defer plain.Close()
	pinged, err := newBenchPool(ctx, dsn, true)
	if err != nil {
		return err
	}
	defer pinged.Close()
	if _, err := plain.Exec(ctx, "CREATE TABLE commits (n integer)"); err != nil {
		return err
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	goBenches := []struct {
		name string
		fn   func(*testing.B)
	}{
		{"Pool/pgxpool", bench.PooledSelect1(plain)},
		{"Pool/pgxpool-ping-every-acquire", bench.PooledSelect1(pinged)},
		{"Pool/pgx-one-conn-no-pool", bench.ConnSelect1(conn)},
		{"Pool/pgx-connect-per-query", bench.ConnectSelect1(dsn)},
		{"Pool/pgxpool-insert-commit", bench.PooledInsert(plain, "commits")},
	}
	runs := map[string]*poolRun{}
	var order []string
	add := func(name string, ns float64) {
		if runs[name] == nil {
			runs[name] = &poolRun{name: name}
			order = append(order, name)
		}
		runs[name].nsPerOp = append(runs[name].nsPerOp, ns)
	}
	var lines []string
	for range o.count {
		for _, b := range goBenches {
			res := testing.Benchmark(b.fn)
			if res.N == 0 {
				return fmt.Errorf("%s failed (see its output above)", b.name)
			}
			add(b.name, float64(res.T.Nanoseconds())/float64(res.N))
			lines = append(lines, bench.FormatBenchmark(b.name, res))
		}
		py, err := pythonPools(ctx, o, dsn)
		if err != nil {
			return err
		}
		for _, p := range py {
			add(p.Name, p.NsPerOp)
			lines = append(lines, fmt.Sprintf("Benchmark%s\t%8d\t%12.0f ns/op", p.Name, p.N, p.NsPerOp))
		}
	}

	r.section("4. Pools: acquire + SELECT 1 + release, concurrency 1")
	r.para("Go: `testing.Benchmark` in the harness (%s per run); Python: `scripts/bench/pools.py` under %s with Debian's python3-psycopg2 and python3-sqlalchemy, the same loop timed with `time.perf_counter_ns`. "+
		"%d interleaved runs each against %s; the lines below are benchstat input (`benchstat file`).",
		o.benchtime, o.python, o.count, "the same PostgreSQL")
	r.code(lines)
	base := runs["Pool/pgxpool"].median()
	var rows [][]string
	for _, name := range order {
		m := runs[name].median()
		rows = append(rows, []string{"`" + name + "`", us(time.Duration(m)), fmt.Sprintf("%.0f", 1e9/m), ratio(m, base)})
	}
	r.table([]string{"benchmark", "median per query", "queries/s", "time vs pgxpool"}, rows)
	r.para("`pgx-one-conn-no-pool` and `psycopg2-one-conn-autocommit` are the floor: the query on one open connection, no pool, one round trip. " +
		"`pgxpool-insert-commit` is one durable write (a one-row INSERT committed on its own, waiting for the WAL flush): what each synchronous transaction on tidygate's request path costs on this server. " +
		"The Python pools are the original system's: psycopg2 `SimpleConnectionPool(1, 10)` with `getconn`/`putconn` (psycopg2 opens a transaction for the SELECT and `putconn` rolls it back), " +
		"and SQLAlchemy's `QueuePool` with the original system's `MLFLOW_SQLALCHEMY_*` values (`pool_size=10, max_overflow=20, pool_timeout=30, pool_recycle=1800, pool_pre_ping=True`; the pre-ping is a round trip, and the pool's reset on return is a ROLLBACK).")
	if p, ok := runs["Pool/psycopg2-SimpleConnectionPool"]; ok {
		x := p.median() / base
		r.target("Pooled query ≥ 5× faster than psycopg2's pool", fmt.Sprintf("%.2f×", x), x >= 5)
	}
	if s, ok := runs["Pool/sqlalchemy-QueuePool-pre-ping"]; ok {
		x := s.median() / base
		r.target("Pooled query ≥ 10× faster than SQLAlchemy with pre-ping", fmt.Sprintf("%.2f×", x), x >= 10)
	}
	return nil
}

// newBenchPool is a pool sized as the default shared pool (1 to 10
// connections); ping makes it ping on every acquire.
func newBenchPool(ctx context.Context, dsn string, ping bool) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MinConns, cfg.MaxConns = 1, 10
	cfg.ConnConfig.RuntimeParams["application_name"] = "tidygate-bench-pool"
	if ping {
		bench.PingEveryAcquire(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL at -admin-dsn: %w", err)
	}
	return pool, nil
}

// pythonResult is one line of scripts/bench/pools.py's JSON output.
type pythonResult struct {
	Name    string  `json:"name"`
	N       int64   `json:"n"`
	NsPerOp float64 `json:"ns_per_op"`
}

// pythonPools runs scripts/bench/pools.py once.
func pythonPools(ctx context.Context, o options, dsn string) ([]pythonResult, error) {
	script := filepath.Join(o.repo, "scripts", "bench", "pools.py")
	cmd := exec.CommandContext(ctx, o.python, script, "--dsn", dsn, "--benchtime", fmt.Sprint(o.benchtime.Seconds()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", o.python, script, err, strings.TrimSpace(stderr.String()))
	}
	var res []pythonResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("%s printed %q, not JSON: %w", script, out, err)
	}
	return res, nil
}
