package infra

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/freeaddr"
)

// poolTestConfig loads a configuration from environ as the process would.
func poolTestConfig(t testing.TB, environ map[string]string) Config {
	t.Helper()
	cfg, err := LoadConfig(environ)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	return cfg
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	addrs, err := freeaddr.Loopback(1)
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0]
}

// openShared opens d's shared pool and closes it when the test ends.
func openShared(t testing.TB, d *Delegate) *SharedPool {
	t.Helper()
	p, err := NewSharedPool(context.Background(), d)
	if err != nil {
		t.Fatalf("NewSharedPool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// openMLflow opens d's MLflow pool through the gateway registration and,
// when it is dedicated, closes it when the test ends.
func openMLflow(t *testing.T, d *Delegate, shared *SharedPool) *Pool {
	t.Helper()
	p, err := mustRegister(t, d, shared).OpenMLflowPool(context.Background())
	if err != nil {
		t.Fatalf("OpenMLflowPool: %v", err)
	}
	if p.Dedicated() {
		t.Cleanup(p.Close)
	}
	return p
}

const trickyPassword = `p@ss:w/rd?#%&= é'"\`

func TestSharedDSNFromPartsKeepsEveryCharacter(t *testing.T) {
	cfg := poolTestConfig(t, map[string]string{
		"DB_HOST": "db.example.com", "DB_PORT": "6543", "DB_USER": "gate keeper",
		"DB_PASSWORD": trickyPassword, "DB_NAME": "llm/gateway",
	})
	pc, err := parsePoolConfig(sharedDSN(cfg), sharedSettings(cfg))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	cc := pc.ConnConfig
	if cc.Password != trickyPassword || cc.User != "gate keeper" || cc.Host != "db.example.com" || cc.Port != 6543 || cc.Database != "llm/gateway" {
		t.Fatalf("parsed user=%q password=%q host=%q port=%d database=%q", cc.User, cc.Password, cc.Host, cc.Port, cc.Database)
	}
	if got := target(&cc.Config); got != "db.example.com:6543/llm/gateway" {
		t.Fatalf("target = %q", got)
	}
}

func TestParsePoolConfigAppliesTidygateSettings(t *testing.T) {
	cfg := poolTestConfig(t, map[string]string{
		"DATABASE_URL":       "postgres://u:pw@db:5432/app?application_name=psql",
		"DB_SSLMODE":         "require",
		"DB_CONNECT_TIMEOUT": "3s",
		"DB_POOL_MIN_CONNS":  "2", "DB_POOL_MAX_CONNS": "7",
		"DB_POOL_MAX_CONN_LIFETIME": "30m", "DB_POOL_MAX_CONN_IDLE_TIME": "5m",
		"DB_POOL_ACQUIRE_TIMEOUT": "5s",
	})
	pc, err := parsePoolConfig(sharedDSN(cfg), sharedSettings(cfg))
	if err != nil {
		t.Fatal(err)
	}
	cc := pc.ConnConfig
	checks := []struct {
		what      string
		got, want any
	}{
		{"application_name (tidygate's overrides the URL's)", cc.RuntimeParams["application_name"], "tidygate-shared"},
		{"statement_timeout", cc.RuntimeParams["statement_timeout"], defaultStatementTimeout},
		{"idle_in_transaction_session_timeout", cc.RuntimeParams["idle_in_transaction_session_timeout"], defaultIdleInTransactionTimeout},
		{"connect timeout", cc.ConnectTimeout, 3 * time.Second},
		{"TLS required (DB_SSLMODE=require)", cc.TLSConfig != nil, true},
		{"no plaintext fallback", len(cc.Fallbacks), 0},
		{"target_session_attrs=read-write by default", cc.ValidateConnect != nil, true},
		{"dial func (keepalive)", cc.DialFunc != nil, true},
		{"min conns", pc.MinConns, int32(2)},
		{"max conns", pc.MaxConns, int32(7)},
		{"idle time", pc.MaxConnIdleTime, 5 * time.Minute},
		{"health check period", pc.HealthCheckPeriod, healthCheckPeriod},
		{"ping timeout", pc.PingTimeout, 2 * time.Second},
		{"lifetime + jitter", pc.MaxConnLifetime + pc.MaxConnLifetimeJitter, 30 * time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestParsePoolConfigLetsTheURLDecide(t *testing.T) {
	cfg := poolTestConfig(t, map[string]string{
		"DATABASE_URL": "postgres://u@db/app?sslmode=disable&target_session_attrs=any&connect_timeout=9&statement_timeout=0",
		"DB_SSLMODE":   "require",
	})
	pc, err := parsePoolConfig(sharedDSN(cfg), sharedSettings(cfg))
	if err != nil {
		t.Fatal(err)
	}
	cc := pc.ConnConfig
	if cc.TLSConfig != nil {
		t.Error("the URL's sslmode=disable was overridden by DB_SSLMODE")
	}
	if cc.ValidateConnect != nil {
		t.Error("the URL's target_session_attrs=any was overridden")
	}
	if cc.ConnectTimeout != 9*time.Second {
		t.Errorf("connect timeout = %s, want the URL's 9s", cc.ConnectTimeout)
	}
	if got := cc.RuntimeParams["statement_timeout"]; got != "0" {
		t.Errorf("statement_timeout = %q, want the URL's 0", got)
	}
}

func TestLifetimeJitterStaysWithinTheLimit(t *testing.T) {
	for _, limit := range []time.Duration{time.Second, 30 * time.Second, 1800 * time.Second, time.Hour} {
		lifetime, jitter := lifetimeWithJitter(limit)
		if lifetime+jitter != limit {
			t.Errorf("limit %s: lifetime %s + jitter %s exceeds or falls short of it", limit, lifetime, jitter)
		}
		if jitter < limit/10 || lifetime < limit*9/10 {
			t.Errorf("limit %s: lifetime %s, jitter %s; want expiries spread over the last tenth", limit, lifetime, jitter)
		}
	}
	if lifetime, jitter := lifetimeWithJitter(0); lifetime != 0 || jitter != 0 {
		t.Errorf("no limit: lifetime %s, jitter %s", lifetime, jitter)
	}
}

func TestPingTimeoutLeavesRoomWithinTheAcquireTimeout(t *testing.T) {
	for _, acquire := range []time.Duration{50 * time.Millisecond, time.Second, 3 * time.Second, 30 * time.Second} {
		got := pingTimeout(acquire)
		if got > 2*time.Second || got < 100*time.Millisecond || (acquire >= 200*time.Millisecond && got > acquire/2) {
			t.Errorf("acquire timeout %s: ping timeout %s", acquire, got)
		}
	}
}

func TestMLflowDSN(t *testing.T) {
	shared := poolTestConfig(t, map[string]string{"DATABASE_URL": "postgres://u:pw@shared:5432/app"})
	if got := mlflowDSN(shared); got != sharedDSN(shared) {
		t.Errorf("without MLFLOW_TRACKING_URI: %+v, want the shared DSN", got)
	}
	cfg := shared
	cfg.MLflowTrackingURI = "postgresql+psycopg2://m:pw@mlflow-db:5433/mlflow"
	pc, err := parsePoolConfig(mlflowDSN(cfg), mlflowSettings(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if cc := pc.ConnConfig; cc.Host != "mlflow-db" || cc.Port != 5433 || cc.Database != "mlflow" || cc.User != "m" {
		t.Fatalf("MLflow URI parsed as %s user %s", target(&cc.Config), cc.User)
	}
	if same, err := mlflowOnSharedServer(cfg); err != nil || same {
		t.Errorf("mlflowOnSharedServer = %v, %v; want false", same, err)
	}
	cfg.MLflowTrackingURI = "postgresql://m:pw@SHARED:5432/mlflow"
	if same, err := mlflowOnSharedServer(cfg); err != nil || !same {
		t.Errorf("same host and port, other database: mlflowOnSharedServer = %v, %v; want true", same, err)
	}
}

func TestMLflowSettingsKeepSQLAlchemyMeaning(t *testing.T) {
	cfg := poolTestConfig(t, map[string]string{
		"MLFLOW_POOL": "dedicated", "MLFLOW_SQLALCHEMY_POOL_SIZE": "4", "MLFLOW_SQLALCHEMY_MAX_OVERFLOW": "6",
		"MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "7", "MLFLOW_SQLALCHEMY_POOL_RECYCLE": "600",
	})
	s := mlflowSettings(cfg)
	pc, err := parsePoolConfig(mlflowDSN(cfg), s)
	if err != nil {
		t.Fatal(err)
	}
	if pc.MaxConns != 10 || pc.MinConns != 0 || s.idleCap != 4 || s.acquireTimeout != 7*time.Second || !s.prePing {
		t.Errorf("max %d min %d idle cap %d timeout %s pre-ping %v; want 10, 0, 4, 7s, true",
			pc.MaxConns, pc.MinConns, s.idleCap, s.acquireTimeout, s.prePing)
	}
	if pc.MaxConnLifetime+pc.MaxConnLifetimeJitter != 600*time.Second {
		t.Errorf("lifetime %s + jitter %s, want POOL_RECYCLE 600s", pc.MaxConnLifetime, pc.MaxConnLifetimeJitter)
	}
	if got := pc.ConnConfig.RuntimeParams["application_name"]; got != "tidygate-mlflow" {
		t.Errorf("application_name = %q", got)
	}
}

func TestBadDSNErrorsHideThePassword(t *testing.T) {
	const secret = "Sup3r-S3cret"
	for _, u := range []string{
		"postgres://u:" + secret + "@db:5432/app?sslmode=bogus",
		"postgres://u:" + secret + "@db:notaport/app",
		"postgres://u:" + secret + "%zz@db/app",
		"postgres://u:" + secret + "@db/app?connect_timeout=soon",
		"mysql://u:" + secret + "@db/app",
		"host=db password=" + secret,
	} {
		cfg := poolTestConfig(t, nil)
		cfg.DatabaseURL = u
		_, err := parsePoolConfig(sharedDSN(cfg), sharedSettings(cfg))
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error leaks the password: %v", err)
		}
		if !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("the error does not name DATABASE_URL: %v", err)
		}
	}
}

func TestParsePoolConfigRejectsUnusableSettings(t *testing.T) {
	cfg := poolTestConfig(t, nil)
	for name, change := range map[string]func(*poolSettings){
		"no connections":      func(s *poolSettings) { s.maxConns = 0 },
		"min above max":       func(s *poolSettings) { s.minConns = s.maxConns + 1 },
		"no acquire timeout":  func(s *poolSettings) { s.acquireTimeout = 0 },
		"no connect timeout":  func(s *poolSettings) { s.connectTimeout = 0 },
		"no idle time at all": func(s *poolSettings) { s.idleTime = 0 },
	} {
		s := sharedSettings(cfg)
		change(&s)
		if _, err := parsePoolConfig(sharedDSN(cfg), s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// unreachableDelegate returns a delegate whose database is a closed port.
func unreachableDelegate(t *testing.T, environ map[string]string) *Delegate {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":            "postgres://u:" + trickyPasswordURL + "@" + closedAddr(t) + "/app?sslmode=disable",
		"DB_POOL_ACQUIRE_TIMEOUT": "2s",
		"DB_CONNECT_TIMEOUT":      "2s",
	}
	for k, v := range environ {
		env[k] = v
	}
	return NewDelegate(poolTestConfig(t, env), nil)
}

// trickyPasswordURL is a password as it appears, escaped, in a URL.
const trickyPasswordURL = "Hunter2%40%3A%2Fsecret"

func TestAcquireFromAnUnreachableDatabase(t *testing.T) {
	p := openShared(t, unreachableDelegate(t, nil)) // starts without its database

	began := time.Now()
	conn, err := p.Acquire(context.Background())
	took := time.Since(began)
	if conn != nil {
		conn.Release()
		t.Fatal("got a connection from a closed port")
	}
	if took > p.Info().AcquireTimeout+time.Second {
		t.Errorf("Acquire took %s; the contract is the acquire timeout %s", took, p.Info().AcquireTimeout)
	}
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindUnavailable || de.RetryAfter <= 0 {
		t.Fatalf("err = %#v, want KindUnavailable with RetryAfter", err)
	}
	// The port refuses at once: the message says what happened, not that
	// two seconds passed.
	if want := "database unavailable: the database is unreachable (pool shared could not open a connection)"; de.Message != want {
		t.Errorf("message = %q, want %q", de.Message, want)
	}
	if !errors.Is(err, domain.KindUnavailable) {
		t.Error("errors.Is(err, domain.KindUnavailable) is false")
	}
	if strings.Contains(err.Error(), "Hunter2") {
		t.Errorf("the error leaks the password: %v", err)
	}
	if p.acquireErrors.Load() < 1 {
		t.Error("the failed acquire was not counted")
	}
	began = time.Now()
	if err := p.Ping(context.Background()); !errors.Is(err, domain.KindUnavailable) {
		t.Errorf("Ping = %v, want KindUnavailable", err)
	}
	if took := time.Since(began); took > p.Info().AcquireTimeout+time.Second {
		t.Errorf("Ping took %s against a closed port; the contract is the acquire timeout %s", took, p.Info().AcquireTimeout)
	}
}

func TestAcquireReturnsTheCallersCancellation(t *testing.T) {
	p := openShared(t, unreachableDelegate(t, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Acquire(ctx); !errors.Is(err, context.Canceled) || domain.KindOf(err) == domain.KindUnavailable {
		t.Fatalf("err = %v, want the caller's context.Canceled", err)
	}
}

func TestNewSharedPoolRecordsStepTwo(t *testing.T) {
	d := unreachableDelegate(t, nil)
	p := openShared(t, d)
	steps := d.Startup.Steps()
	if len(steps) != 2 || steps[0].Component != "infra delegate" || steps[1].Seq != 2 || steps[1].Pool == nil {
		t.Fatalf("steps = %+v", steps)
	}
	info := *steps[1].Pool
	if info.Name != "shared" || info.ApplicationName != "tidygate-shared" || info.Mode != ModeShared ||
		info.MaxConns != 10 || info.MinConns != 1 || strings.Contains(info.Target, "Hunter2") || !strings.HasSuffix(info.Target, "/app") {
		t.Fatalf("pool info = %+v", info)
	}
	if p.Dedicated() {
		t.Error("the shared pool says it is dedicated")
	}
}

func TestRequiredDatabaseFailsStartupInTime(t *testing.T) {
	d := unreachableDelegate(t, map[string]string{"DB_REQUIRE_AT_START": "true"})
	began := time.Now()
	p, err := NewSharedPool(context.Background(), d)
	if err == nil {
		p.Close()
		t.Fatal("started without the required database")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("took %s, want within the acquire timeout (2s) + 1s", took)
	}
	if !strings.Contains(err.Error(), "DB_REQUIRE_AT_START") || strings.Contains(err.Error(), "Hunter2") {
		t.Errorf("err = %v; want it to name DB_REQUIRE_AT_START and hide the password", err)
	}
	if len(d.Startup.Steps()) != 1 {
		t.Errorf("a failed pool was recorded: %+v", d.Startup.Steps())
	}
	// The failed pool's metrics are unregistered: a retry can register again.
	d.Config.DBRequireAtStart = false
	p, err = NewSharedPool(context.Background(), d)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	p.Close()
}

func TestOpenMLflowPool(t *testing.T) {
	t.Run("shared", func(t *testing.T) {
		d := unreachableDelegate(t, nil)
		shared := openShared(t, d)
		reg := mustRegister(t, d, shared)
		p, err := reg.OpenMLflowPool(context.Background())
		if err != nil || p != shared.Pool {
			t.Fatalf("OpenMLflowPool = %p, %v; want the shared pool %p", p, err, shared.Pool)
		}
		steps := d.Startup.Steps()
		if len(steps) != 4 || steps[2].Component != "gateway registration" || steps[3].Pool.Mode != ModeShared {
			t.Fatalf("steps = %+v", steps)
		}
	})
	t.Run("dedicated", func(t *testing.T) {
		d := unreachableDelegate(t, map[string]string{"MLFLOW_POOL": "dedicated",
			"MLFLOW_SQLALCHEMY_POOL_SIZE": "2", "MLFLOW_SQLALCHEMY_MAX_OVERFLOW": "3", "MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "1"})
		shared := openShared(t, d)
		p := openMLflow(t, d, shared)
		info := p.Info()
		if !p.Dedicated() || info.ApplicationName != "tidygate-mlflow" || info.MaxConns != 5 || info.MinConns != 0 || info.AcquireTimeout != time.Second {
			t.Fatalf("info = %+v", info)
		}
		if last := d.Startup.Steps()[3]; last.Component != "mlflow pool" || last.Pool.Mode != ModeDedicated {
			t.Fatalf("step 4 = %+v", last)
		}
	})
}

func TestClassify(t *testing.T) {
	p := openShared(t, unreachableDelegate(t, nil))

	for _, code := range []string{"57P01", "57P02", "25006", "08006", "08P01"} {
		p.lastReset.Store(0) // let each case reset
		before := p.resets.Load()
		err := p.Classify(&pgconn.PgError{Code: code})
		if !errors.Is(err, domain.KindUnavailable) {
			t.Errorf("%s: %v, want KindUnavailable", code, err)
		}
		if pg, ok := errors.AsType[*pgconn.PgError](err); !ok || pg.Code != code {
			t.Errorf("%s: the cause is lost: %v", code, err)
		}
		if p.resets.Load() != before+1 {
			t.Errorf("%s: the pool was not reset", code)
		}
	}
	for _, err := range []error{&pgconn.PgError{Code: "23505"}, &pgconn.PgError{Code: "57014"}, errors.New("boom"), nil} {
		if got := p.Classify(err); got != err { //nolint:errorlint // identity: Classify must return err itself
			t.Errorf("Classify(%v) = %v, want it unchanged", err, got)
		}
	}
	// A burst of connection errors resets once.
	p.lastReset.Store(0)
	before := p.resets.Load()
	for range 10 {
		_ = p.Classify(&pgconn.PgError{Code: "57P01"})
	}
	if got := p.resets.Load() - before; got != 1 {
		t.Errorf("10 errors at once reset the pool %d times, want 1", got)
	}
}

func TestStartupLogHidesThePassword(t *testing.T) {
	var log strings.Builder
	cfg := poolTestConfig(t, map[string]string{
		"DB_HOST": "127.0.0.1", "DB_PORT": strings.TrimPrefix(closedAddr(t), "127.0.0.1:"),
		"DB_PASSWORD": trickyPassword, "DB_SSLMODE": "disable", "MLFLOW_POOL": "dedicated",
	})
	d := NewDelegate(cfg, slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	shared := openShared(t, d)
	openMLflow(t, d, shared)
	_ = shared.Ping(context.Background())
	for _, want := range []string{"startup step", "tidygate-shared", "tidygate-mlflow", "database unreachable at start", "connection budget check deferred"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), "p@ss") || strings.Contains(log.String(), "p%40ss") {
		t.Fatalf("the log leaks the password:\n%s", log.String())
	}
}

// mustRegister registers the gateway with a join that has nothing to do.
func mustRegister(t *testing.T, d *Delegate, shared *SharedPool) GatewayRegistration {
	t.Helper()
	reg, err := RegisterGateway(context.Background(), d, shared, func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestRegisterGatewayRunsTheJoin checks step 3's work: the join runs once
// on the shared pool; its failure is the registration's error with
// DB_REQUIRE_AT_START, and otherwise carried in Joined with the step still
// recorded.
func TestRegisterGatewayRunsTheJoin(t *testing.T) {
	down := errors.New("schema not applied: database down")
	for _, required := range []string{"false", "true"} {
		d := unreachableDelegate(t, nil)
		shared := openShared(t, d)
		d.Config.DBRequireAtStart = required == "true" // after the shared pool opened without it
		runs := 0
		reg, err := RegisterGateway(context.Background(), d, shared, func(context.Context) error { runs++; return down })
		steps := d.Startup.Steps()
		switch {
		case runs != 1:
			t.Errorf("DB_REQUIRE_AT_START=%s: the join ran %d times", required, runs)
		case required == "true" && !errors.Is(err, down):
			t.Errorf("DB_REQUIRE_AT_START=true: err = %v; want the join's failure", err)
		case required == "false" && (err != nil || !errors.Is(reg.Joined, down) || steps[len(steps)-1].Component != "gateway registration"):
			t.Errorf("DB_REQUIRE_AT_START=false: err = %v, Joined = %v, steps %+v", err, reg.Joined, steps)
		}
	}
}

// The refusal to start without the database is one line: pgx lists each
// attempt (TLS, then plain with sslmode=prefer) on a line of its own,
// which would print as several problems.
func TestRequiredDatabaseFailureIsOneLine(t *testing.T) {
	d := unreachableDelegate(t, map[string]string{"DB_REQUIRE_AT_START": "true",
		"DATABASE_URL": "postgres://u:" + trickyPasswordURL + "@" + closedAddr(t) + "/app?sslmode=prefer"})
	p, err := NewSharedPool(context.Background(), d)
	if err == nil {
		p.Close()
		t.Fatal("started without the required database")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "DB_REQUIRE_AT_START") {
		t.Errorf("err = %q; want one line naming DB_REQUIRE_AT_START", msg)
	}
}
