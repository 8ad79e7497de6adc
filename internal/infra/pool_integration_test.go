//go:build integration

package infra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/logtest"
	"github.com/tidygate/tidygate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// dbDelegate returns a delegate for a fresh test database, with environ's
// settings, and that database's DSN.
func dbDelegate(t *testing.T, environ map[string]string) (*Delegate, string) {
	t.Helper()
	dsn := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": dsn, "DB_SSLMODE": "disable"}
	for k, v := range environ {
		env[k] = v
	}
	return NewDelegate(poolTestConfig(t, env), nil), dsn
}

// connect opens a plain connection to dsn, closed when the test ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// countApp counts the connections to this test's database with the given
// application_name.
func countApp(t *testing.T, conn *pgx.Conn, app string) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, app).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// holdAll acquires n connections from p and returns them.
func holdAll(t *testing.T, p *Pool, n int) []*pgxpool.Conn {
	t.Helper()
	conns := make([]*pgxpool.Conn, n)
	for i := range conns {
		c, err := p.Acquire(context.Background())
		if err != nil {
			t.Fatalf("acquire %d of %d: %v", i+1, n, err)
		}
		conns[i] = c
	}
	return conns
}

func releaseAll(conns []*pgxpool.Conn) {
	for _, c := range conns {
		c.Release()
	}
}

// settle waits until no connection is checked out of p — AfterRelease runs
// in a goroutine, and the connection counts as acquired until it is done —
// and returns p's statistics then.
func settle(t *testing.T, p *Pool) *pgxpool.Stat {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := p.Stat()
		if s.AcquiredConns() == 0 && s.ConstructingConns() == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections still checked out after 10s: %d acquired, %d constructing", s.AcquiredConns(), s.ConstructingConns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSharedPoolConnectsAsTidygateShared(t *testing.T) {
	d, dsn := dbDelegate(t, map[string]string{"DB_POOL_MIN_CONNS": "0", "DB_POOL_MAX_CONNS": "3"})
	p := openShared(t, d)
	conns := holdAll(t, p.Pool, 2)
	defer releaseAll(conns)

	if n := countApp(t, connect(t, dsn), "tidygate-shared"); n != 2 {
		t.Fatalf("%d connections with application_name tidygate-shared, want the 2 held", n)
	}
	for setting, want := range map[string]string{
		"statement_timeout":                   "30s",
		"idle_in_transaction_session_timeout": "1min",
		"transaction_read_only":               "off",
	} {
		var got string
		if err := conns[0].QueryRow(context.Background(), "SHOW "+setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}

func TestMLflowPoolModesOnTheServer(t *testing.T) {
	for _, mode := range []string{ModeShared, ModeDedicated} {
		t.Run(mode, func(t *testing.T) {
			d, dsn := dbDelegate(t, map[string]string{"MLFLOW_POOL": mode, "DB_POOL_MIN_CONNS": "0"})
			shared := openShared(t, d)
			mlflow := openMLflow(t, d, shared)
			settle(t, mlflow) // the start-up ping's connection is back
			releaseAll(holdAll(t, mlflow, 1))
			admin := connect(t, dsn)
			want := map[string]int{"tidygate-shared": 1, "tidygate-mlflow": 0} // each start-up ping left one connection
			if mode == ModeDedicated {
				want["tidygate-mlflow"] = 1
			}
			for app, n := range want {
				if got := countApp(t, admin, app); got != n {
					t.Errorf("%d connections as %s, want %d", got, app, n)
				}
			}
		})
	}
}

// dedicated returns a dedicated MLflow pool with the given SQLAlchemy
// settings on a fresh database, and that database's DSN.
func dedicated(t *testing.T, environ map[string]string) (*Pool, string) {
	t.Helper()
	env := map[string]string{"MLFLOW_POOL": "dedicated", "DB_POOL_MIN_CONNS": "0"}
	for k, v := range environ {
		env[k] = v
	}
	d, dsn := dbDelegate(t, env)
	p := openMLflow(t, d, openShared(t, d))
	if !p.Dedicated() {
		t.Fatal("MLFLOW_POOL=dedicated gave the shared pool")
	}
	return p, dsn
}

func TestDedicatedPoolBurst(t *testing.T) {
	const poolSize, overflow, workers = 3, 4, 40
	p, dsn := dedicated(t, map[string]string{
		"MLFLOW_SQLALCHEMY_POOL_SIZE":    fmt.Sprint(poolSize),
		"MLFLOW_SQLALCHEMY_MAX_OVERFLOW": fmt.Sprint(overflow),
	})
	admin := connect(t, dsn)
	for round := range 10 {
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			peak      int32
			failures  []error
			onServer  int
			sampled   = make(chan struct{})
			stop      = make(chan struct{})
			sampleErr error
		)
		go func() { // sample the server's view while the burst runs
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				if err := admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND application_name = 'tidygate-mlflow'`).Scan(&n); err != nil {
					sampleErr = err
					return
				}
				onServer = max(onServer, n)
			}
		}()
		for range workers {
			wg.Go(func() {
				conn, err := p.Acquire(context.Background())
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					return
				}
				defer conn.Release()
				if _, err := conn.Exec(context.Background(), "SELECT pg_sleep(0.01)"); err != nil {
					t.Error(err)
				}
				mu.Lock()
				peak = max(peak, p.Stat().TotalConns())
				mu.Unlock()
			})
		}
		wg.Wait()
		close(stop)
		<-sampled
		if sampleErr != nil {
			t.Fatal(sampleErr)
		}
		if len(failures) > 0 {
			t.Fatalf("round %d: %d acquires failed, first: %v", round, len(failures), failures[0])
		}
		if peak > poolSize+overflow || onServer > poolSize+overflow {
			t.Fatalf("round %d: %d connections in the pool, %d on the server; POOL_SIZE+MAX_OVERFLOW is %d", round, peak, onServer, poolSize+overflow)
		}
		if peak <= poolSize {
			t.Fatalf("round %d: the burst never used the overflow (peak %d): it proves nothing", round, peak)
		}
		s := settle(t, p)
		if s.IdleConns() > poolSize || s.IdleConns() < 1 {
			t.Fatalf("round %d: %d idle connections after the burst, want 1..POOL_SIZE=%d", round, s.IdleConns(), poolSize)
		}
	}
}

// TestDedicatedPoolIdleCapUnderSimultaneousReleases releases every
// connection of a full pool at once, where a cap read from Stat() lets a few
// too many back (it did in 7 of 200 rounds of this test).
func TestDedicatedPoolIdleCapUnderSimultaneousReleases(t *testing.T) {
	const poolSize, overflow = 2, 14
	p, _ := dedicated(t, map[string]string{
		"MLFLOW_SQLALCHEMY_POOL_SIZE":    fmt.Sprint(poolSize),
		"MLFLOW_SQLALCHEMY_MAX_OVERFLOW": fmt.Sprint(overflow),
	})
	for round := range 30 {
		held := holdAll(t, p, poolSize+overflow)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, c := range held {
			wg.Go(func() { <-start; c.Release() })
		}
		close(start)
		wg.Wait()
		if idle := settle(t, p).IdleConns(); idle != poolSize {
			t.Fatalf("round %d: %d idle connections after releasing all %d at once, want POOL_SIZE=%d", round, idle, poolSize+overflow, poolSize)
		}
	}
}

func TestDedicatedPoolSaturatedFailsWithinPoolTimeout(t *testing.T) {
	p, _ := dedicated(t, map[string]string{
		"MLFLOW_SQLALCHEMY_POOL_SIZE": "1", "MLFLOW_SQLALCHEMY_MAX_OVERFLOW": "1", "MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "1",
	})
	held := holdAll(t, p, 2)
	defer releaseAll(held)

	began := time.Now()
	conn, err := p.Acquire(context.Background())
	took := time.Since(began)
	if conn != nil {
		conn.Release()
		t.Fatal("a saturated pool handed out a third connection")
	}
	if took > time.Second+time.Second {
		t.Errorf("Acquire took %s, want within POOL_TIMEOUT (1s) + 1s", took)
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindUnavailable || de.RetryAfter <= 0 ||
		de.Message != "database unavailable: no connection from pool mlflow within 1s" {
		t.Fatalf("err = %v, want KindUnavailable for pool mlflow within 1s with RetryAfter", err)
	}
}

func TestDedicatedPoolRecyclesOldConnections(t *testing.T) {
	p, _ := dedicated(t, map[string]string{"MLFLOW_SQLALCHEMY_POOL_RECYCLE": "1"})
	releaseAll(holdAll(t, p, 1))
	time.Sleep(1100 * time.Millisecond) // older than POOL_RECYCLE
	releaseAll(holdAll(t, p, 1))
	s := p.Stat()
	if s.MaxLifetimeDestroyCount() < 1 || s.NewConnsCount() < 2 {
		t.Fatalf("after POOL_RECYCLE: %d destroyed for their lifetime, %d opened; want the old one replaced",
			s.MaxLifetimeDestroyCount(), s.NewConnsCount())
	}
}

// backendPIDs returns the server process ids of conns.
func backendPIDs(conns []*pgxpool.Conn) []uint32 {
	pids := make([]uint32, len(conns))
	for i, c := range conns {
		pids[i] = c.Conn().PgConn().PID()
	}
	return pids
}

// terminate ends the server processes pids and waits until they are gone.
func terminate(t *testing.T, admin *pgx.Conn, pids []uint32) {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var alive int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids).Scan(&alive); err != nil {
			t.Fatal(err)
		}
		if alive == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d terminated backends still alive", alive)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPrePingSurvivesTerminatedConnections(t *testing.T) {
	p, dsn := dedicated(t, map[string]string{"MLFLOW_SQLALCHEMY_POOL_SIZE": "3", "MLFLOW_SQLALCHEMY_POOL_PRE_PING": "true"})
	held := holdAll(t, p, 3)
	pids := backendPIDs(held)
	releaseAll(held)
	if idle := settle(t, p).IdleConns(); idle != 3 {
		t.Fatalf("%d idle connections, want 3", idle)
	}
	terminate(t, connect(t, dsn), pids)

	// Immediately: pgx's own check would not ping connections idle for less than a second.
	conn, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatalf("acquire after the backends were terminated: %v", err)
	}
	defer conn.Release()
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	for _, pid := range pids {
		if conn.Conn().PgConn().PID() == pid {
			t.Fatal("handed out a terminated connection")
		}
	}
	if p.resets.Load() != 1 {
		t.Fatalf("%d resets, want 1 after the failed pre-ping", p.resets.Load())
	}
	if s := p.Stat(); s.IdleConns() != 0 {
		t.Errorf("%d idle connections after the reset; the other dead ones should be closed", s.IdleConns())
	}
}

func TestClassifyResetsAfterAdminShutdown(t *testing.T) {
	d, dsn := dbDelegate(t, map[string]string{"DB_POOL_MIN_CONNS": "0"})
	p := openShared(t, d)
	held := holdAll(t, p.Pool, 2)
	terminate(t, connect(t, dsn), backendPIDs(held[:1]))

	_, err := held[0].Exec(context.Background(), "SELECT 1")
	classified := p.Classify(err)
	releaseAll(held)
	if pg, ok := errors.AsType[*pgconn.PgError](err); !ok || pg.Code != "57P01" {
		t.Fatalf("a query on a terminated connection failed with %v, want SQLSTATE 57P01", err)
	}
	if !errors.Is(classified, domain.KindUnavailable) || p.resets.Load() != 1 {
		t.Fatalf("Classify = %v with %d resets; want KindUnavailable and one reset", classified, p.resets.Load())
	}
	if s := settle(t, p.Pool); s.TotalConns() != 0 {
		t.Errorf("%d connections survived the reset", s.TotalConns())
	}
	releaseAll(holdAll(t, p.Pool, 1)) // and the pool works on
}

// serverSlots reads max_connections and superuser_reserved_connections.
func serverSlots(t *testing.T, conn *pgx.Conn) (maxConns, superuser int) {
	t.Helper()
	err := conn.QueryRow(context.Background(), `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int`).Scan(&maxConns, &superuser)
	if err != nil {
		t.Fatal(err)
	}
	return maxConns, superuser
}

func TestConnectionBudgetAgainstTheServer(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		d, dsn := dbDelegate(t, map[string]string{"REPLICAS": "100000"})
		maxConns, superuser := serverSlots(t, connect(t, dsn))
		p, err := NewSharedPool(context.Background(), d)
		if err == nil {
			p.Close()
			t.Fatal("started although 100000 replicas × (10 pooled + 1 listener) connections exceed the server")
		}
		for _, want := range []string{
			"connection budget exceeded", "1100000 connections", "10 + 1 = 11 per replica", "REPLICAS=100000",
			fmt.Sprintf("max_connections %d", maxConns), fmt.Sprintf("superuser_reserved_connections %d", superuser),
			"DB_POOL_MAX_CONNS",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal lacks %q: %v", want, err)
			}
		}
	})
	t.Run("numbers", func(t *testing.T) {
		d, dsn := dbDelegate(t, map[string]string{"DB_POOL_MIN_CONNS": "0"})
		p := openShared(t, d)
		admin := connect(t, dsn)
		maxConns, superuser := serverSlots(t, admin)
		others := make([]*pgx.Conn, 3)
		for i := range others {
			cfg, err := pgx.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			cfg.RuntimeParams["application_name"] = "budget-test-other"
			if others[i], err = pgx.ConnectConfig(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			defer others[i].Close(context.Background())
		}
		v, err := CheckConnectionBudget(context.Background(), d, p.Pool, []int32{10, 20})
		if err != nil {
			t.Fatal(err)
		}
		if v.Demand != 30 {
			t.Errorf("demand %d, want 30", v.Demand)
		}
		// Other clients include admin and the three above, but not tidygate's own connection.
		if limit := maxConns - superuser - 4; v.Usable > limit {
			t.Errorf("usable %d, want at most max_connections %d − superuser_reserved %d − 4 other clients", v.Usable, maxConns, superuser)
		}
		if !strings.Contains(v.Message, fmt.Sprintf("max_connections %d", maxConns)) {
			t.Errorf("message: %s", v.Message)
		}
	})
	t.Run("warn only", func(t *testing.T) {
		var log strings.Builder
		dsn := pgtest.New(t)
		cfg := poolTestConfig(t, map[string]string{"DATABASE_URL": dsn, "REPLICAS": "100000", "DB_CONNECTION_BUDGET": "warn"})
		d := NewDelegate(cfg, slog.New(slog.NewTextHandler(&log, nil)))
		openShared(t, d)
		if !strings.Contains(log.String(), "connection budget exceeded (starting anyway: DB_CONNECTION_BUDGET=warn)") {
			t.Fatalf("no warning:\n%s", log.String())
		}
	})
}

// TestConnectionBudgetDeferredUntilTheDatabaseAnswers starts against a
// database that does not exist yet: the check runs on the first connection
// once it does, and only logs, since tidygate is already serving.
func TestConnectionBudgetDeferredUntilTheDatabaseAnswers(t *testing.T) {
	server := pgtest.ServerDSN(t)
	name := fmt.Sprintf("t_deferred_%d", time.Now().UnixNano())
	var log logtest.Buffer
	cfg := poolTestConfig(t, map[string]string{"DATABASE_URL": pgtest.WithDatabase(t, server, name), "REPLICAS": "100000"})
	p := openShared(t, NewDelegate(cfg, slog.New(slog.NewTextHandler(&log, nil))))
	if !strings.Contains(log.String(), "connection budget check deferred") {
		t.Fatalf("the deferral is not logged:\n%s", log.String())
	}

	admin := connect(t, server)
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	releaseAll(holdAll(t, p.Pool, 1))
	for _, want := range []string{"connection budget exceeded", "REPLICAS=100000", "checked after start"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
}

func BenchmarkPoolSelect1(b *testing.B) {
	d := NewDelegate(poolTestConfig(b, map[string]string{"DATABASE_URL": pgtest.New(b), "DB_SSLMODE": "disable"}), nil)
	p := openShared(b, d)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		conn, err := p.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var one int
		err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
		conn.Release()
		if err != nil || one != 1 {
			b.Fatalf("SELECT 1 = %d, %v", one, err)
		}
	}
}

func BenchmarkNewConnSelect1(b *testing.B) {
	dsn := pgtest.New(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		var one int
		err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
		_ = conn.Close(ctx)
		if err != nil || one != 1 {
			b.Fatalf("SELECT 1 = %d, %v", one, err)
		}
	}
}
