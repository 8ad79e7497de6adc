package infra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
)

// The pool modes PoolInfo.Mode reports, and the values of MLFLOW_POOL.
const (
	ModeShared    = "shared"    // the one shared pool, used by the gateway and (MLFLOW_POOL=shared) the call log
	ModeDedicated = "dedicated" // MLflow's own pool (MLFLOW_POOL=dedicated)
)

// retryAfter is how long callers are asked to wait after the database could
// not serve them.
const retryAfter = time.Second

// resetInterval is the least time between two resets of one pool: a failover
// surfaces on every checked-out connection at once, and one reset is enough.
const resetInterval = time.Second

// PoolInfo describes a pool for the log, the startup report and
// /debug/startup. It never holds a password.
type PoolInfo struct {
	Name            string        // "shared" or "mlflow"
	ApplicationName string        // what the pool's connections show in pg_stat_activity
	MinConns        int32         // connections kept open even when idle
	MaxConns        int32         // the most connections the pool opens
	Mode            string        // ModeShared or ModeDedicated
	Target          string        // host:port/database
	AcquireTimeout  time.Duration // the longest Acquire waits for a connection
}

// Pool is a pgxpool with tidygate's rules: every Acquire has a deadline and
// fails as a domain.KindUnavailable error, failures are counted for
// /metrics, and errors that mean the server went away reset the pool.
type Pool struct {
	pool        *pgxpool.Pool
	info        PoolInfo
	pingTimeout time.Duration
	logger      *slog.Logger

	acquireErrors atomic.Int64
	resets        atomic.Int64
	lastReset     atomic.Int64 // unix nanoseconds of the last reset

	// deferredBudget holds the pool maxima to check against the server's
	// connection budget on the first connection, when the database was
	// unreachable at start; nil once checked.
	deferredBudget atomic.Pointer[[]int32]
	budgetPolicy   budgetPolicy
}

// SharedPool is step 2 of tidygate's initialization: the one pool the
// gateway's stores (and, with MLFLOW_POOL=shared, the call log) use. Its
// distinct type lets constructors demand the shared pool, and so run after it.
type SharedPool struct{ *Pool }

// NewSharedPool opens the shared pool (application_name tidygate-shared) and
// records step 2. pgx dials in the background, so a database that is down
// does not stop tidygate from starting — it starts unready — unless
// DB_REQUIRE_AT_START is set. When the database answers, the pools' maxima
// are checked against its connection budget; a refusal is returned as an
// error whose text explains the numbers and the fix.
func NewSharedPool(ctx context.Context, d *Delegate) (*SharedPool, error) {
	began := time.Now()
	cfg := d.Config
	maxes := []int32{cfg.DBPoolMaxConns}
	if cfg.MLflowPool == ModeDedicated {
		same, err := mlflowOnSharedServer(cfg)
		if err != nil {
			return nil, err
		}
		if same {
			maxes = append(maxes, cfg.MLflowPoolSize+cfg.MLflowMaxOverflow)
		}
	}
	if cfg.KeyCacheTTL > 0 {
		maxes = append(maxes, 1) // the key cache's listener (ConnectListener)
	}
	p, err := openPool(ctx, d, sharedDSN(cfg), sharedSettings(cfg), maxes)
	if err != nil {
		return nil, err
	}
	info := p.Info()
	d.Startup.Record("shared pool", time.Since(began), &info)
	return &SharedPool{Pool: p}, nil
}

// ListenerApplicationName is what the key cache's listener connection
// shows in pg_stat_activity.
const ListenerApplicationName = "tidygate-keys"

// ConnectListener opens a connection outside the pool, to the pool's server
// with its settings, for the key cache's LISTEN (application_name
// tidygate-keys): notifications need a session of their own that nothing
// else uses, and a pool slot held forever would shrink the pool. With
// KEY_CACHE_TTL > 0, NewSharedPool counts this one connection per replica
// in the connection budget. The caller closes it.
func (p *SharedPool) ConnectListener(ctx context.Context) (*pgx.Conn, error) {
	cc := p.pool.Config().ConnConfig
	cc.RuntimeParams["application_name"] = ListenerApplicationName
	return pgx.ConnectConfig(ctx, cc)
}

// sharedSettings maps the DB_* settings onto the shared pool.
func sharedSettings(cfg Config) poolSettings {
	return poolSettings{
		name:           "shared",
		mode:           ModeShared,
		minConns:       cfg.DBPoolMinConns,
		maxConns:       cfg.DBPoolMaxConns,
		lifetime:       cfg.DBMaxConnLifetime,
		idleTime:       cfg.DBMaxConnIdleTime,
		acquireTimeout: cfg.DBAcquireTimeout,
		connectTimeout: cfg.DBConnectTimeout,
		sslMode:        cfg.DBSSLMode,
		sslRootCert:    cfg.DBSSLRootCert,
	}
}

// openPool creates a pool from u and s, registers its metrics on d's
// registry, and checks the database at start: required or not (DB_REQUIRE_AT_START), and, when
// budget is not empty, the server's connection budget for those pool maxima.
func openPool(ctx context.Context, d *Delegate, u connURL, s poolSettings, budget []int32) (*Pool, error) {
	cfg, err := parsePoolConfig(u, s)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", s.name, err)
	}
	p := &Pool{
		info: PoolInfo{
			Name:            s.name,
			ApplicationName: applicationName(s.name),
			MinConns:        cfg.MinConns,
			MaxConns:        cfg.MaxConns,
			Mode:            s.mode,
			Target:          target(&cfg.ConnConfig.Config),
			AcquireTimeout:  s.acquireTimeout,
		},
		pingTimeout:  cfg.PingTimeout,
		logger:       d.Logger,
		budgetPolicy: newBudgetPolicy(d.Config),
	}
	cfg.AfterConnect = p.afterConnect
	var idle *idleCap
	if s.idleCap > 0 {
		idle = &idleCap{size: int(s.idleCap), idle: map[*pgx.Conn]struct{}{}}
		cfg.AfterRelease = idle.keep
		cfg.BeforeClose = idle.forget
	}
	if s.prePing {
		cfg.PrepareConn = p.prePing
	}
	cfg.ShouldPing = func(_ context.Context, c pgxpool.ShouldPingParams) bool {
		if idle != nil {
			idle.forget(c.Conn) // it is being acquired: no longer idle
		}
		// With pre-ping, prePing pings every connection; otherwise this is
		// pgx's default: ping connections idle for more than a second.
		return !s.prePing && c.IdleDuration > time.Second
	}
	p.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", s.name, err)
	}
	metrics := newPoolCollector(p)
	if err := d.Registry.Register(metrics); err != nil {
		p.Close()
		return nil, fmt.Errorf("pool %s: register its metrics: %w", s.name, err)
	}
	if err := p.checkAtStart(ctx, d, budget); err != nil {
		d.Registry.Unregister(metrics)
		p.Close()
		return nil, err
	}
	return p, nil
}

// checkAtStart pings the database. When it answers, the connection budget
// is checked now; when it does not, startup fails if DB_REQUIRE_AT_START is
// set, and otherwise the budget check waits for the first connection.
func (p *Pool) checkAtStart(ctx context.Context, d *Delegate, budget []int32) error {
	if err := p.Ping(ctx); err != nil {
		if d.Config.DBRequireAtStart {
			return fmt.Errorf("the database must be reachable at start (DB_REQUIRE_AT_START=true), but pool %s cannot reach %s: %w",
				p.info.Name, p.info.Target, oneLineError{err})
		}
		p.logger.Warn("database unreachable at start: tidygate starts unready and /readyz answers 503 until it answers",
			"pool", p.info.Name, "target", p.info.Target, "err", err)
		if len(budget) > 0 {
			p.logger.Warn("connection budget check deferred until the database answers", "pool", p.info.Name)
			p.deferredBudget.Store(&budget)
		}
		return nil
	}
	if len(budget) == 0 {
		return nil
	}
	v, err := CheckConnectionBudget(ctx, d, p, budget)
	if err != nil {
		p.logger.Warn("connection budget not checked", "pool", p.info.Name, "err", err)
		return nil
	}
	return p.reportBudget(v)
}

// afterConnect runs the connection budget check deferred at start, once, on
// the first connection the pool opens. It never fails the connection: the
// verdict is only logged, since tidygate is already serving.
func (p *Pool) afterConnect(ctx context.Context, conn *pgx.Conn) error {
	budget := p.deferredBudget.Swap(nil)
	if budget == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.info.AcquireTimeout)
	defer cancel()
	server, err := readServerConnections(ctx, conn)
	if err != nil {
		p.deferredBudget.CompareAndSwap(nil, budget) // try again on the next connection
		return nil
	}
	v := EvaluateConnectionBudget(p.budgetPolicy.input(server, *budget))
	if v.Level == BudgetRefuse {
		p.logger.Error(v.Message + " (checked after start, so tidygate keeps running)")
		return nil
	}
	_ = p.reportBudget(v)
	return nil
}

// reportBudget logs v and returns an error when v refuses to start.
func (p *Pool) reportBudget(v BudgetVerdict) error {
	switch v.Level {
	case BudgetRefuse:
		return errors.New(v.Message)
	case BudgetWarn:
		p.logger.Warn(v.Message, "demand", v.Demand, "usable", v.Usable)
	default:
		p.logger.Info("connection budget ok", "demand", v.Demand, "usable", v.Usable)
	}
	return nil
}

// idleCap closes connections released beyond size idle ones, as
// SQLAlchemy's QueuePool discards overflow connections on return. pgx runs
// AfterRelease in a goroutine and counts a connection as idle only after it
// returns, so Stat().IdleConns() misses simultaneous releases (16 at once with
// a cap of 2 left 3 or 4 idle in 7 of 200 tries). idleCap counts the
// connections it lets back itself until they are acquired again (ShouldPing
// runs on every acquire) or closed. It assumes MinConns 0: connections the
// pool opens in the background never pass through it.
type idleCap struct {
	size int
	mu   sync.Mutex
	idle map[*pgx.Conn]struct{}
}

// keep is AfterRelease: it lets conn back into the pool while fewer than
// size connections are idle, and has it closed otherwise.
func (c *idleCap) keep(conn *pgx.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle) >= c.size {
		return false
	}
	c.idle[conn] = struct{}{}
	return true
}

// forget stops counting conn as idle.
func (c *idleCap) forget(conn *pgx.Conn) {
	c.mu.Lock()
	delete(c.idle, conn)
	c.mu.Unlock()
}

// prePing is PrepareConn for MLFLOW_SQLALCHEMY_POOL_PRE_PING=true: it pings
// every connection before handing it out, as SQLAlchemy's pool_pre_ping does,
// and on a failed ping resets the pool — SQLAlchemy invalidates every pooled
// connection then, since a dead one usually means the server went away — so
// that Acquire goes on with a new connection.
func (p *Pool) prePing(ctx context.Context, conn *pgx.Conn) (bool, error) {
	pingCtx, cancel := context.WithTimeout(ctx, p.pingTimeout)
	defer cancel()
	err := conn.Ping(pingCtx)
	if err == nil {
		return true, nil
	}
	if ctx.Err() == nil { // the connection failed, not the caller's deadline
		p.reset(err)
	}
	return false, nil
}

// Acquire returns a connection within the pool's acquire timeout (the
// deadline covers the wait only; the caller's ctx governs the queries). A
// pool that cannot hand one out in time, or whose database cannot be reached,
// yields a domain.KindUnavailable error with a RetryAfter (so does a caller
// whose own deadline passes first); a caller that cancels gets its context's
// error. Release the connection when done.
func (p *Pool) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	acquireCtx, cancel := context.WithTimeout(ctx, p.info.AcquireTimeout)
	defer cancel()
	conn, err := p.pool.Acquire(acquireCtx)
	if err == nil {
		return conn, nil
	}
	p.acquireErrors.Add(1)
	if connectionLost(err) {
		p.reset(err)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, fmt.Errorf("acquire a connection from pool %s: %w", p.info.Name, context.Cause(ctx))
	}
	// Say what happened: a connection that could not be opened (refused,
	// reset, failed handshake) fails before the deadline; only a pool that
	// waited the whole acquire timeout ran out of time.
	msg := fmt.Sprintf("database unavailable: the database is unreachable (pool %s could not open a connection)", p.info.Name)
	if acquireCtx.Err() != nil {
		msg = fmt.Sprintf("database unavailable: no connection from pool %s within %s", p.info.Name, p.info.AcquireTimeout)
	}
	return nil, &domain.Error{
		Kind:       domain.KindUnavailable,
		Code:       "database_unavailable",
		Message:    msg,
		RetryAfter: retryAfter,
		Err:        err,
	}
}

// Classify is for errors callers get while using a connection from p. An
// error that means the server went away or stopped accepting writes (SQLSTATE
// class 08, 57P01 admin_shutdown, 57P02 crash_shutdown, 25006
// read_only_sql_transaction after a failover) resets the pool, so that no
// other caller gets a connection to the old server, and is returned as a
// domain.KindUnavailable error (unless it already is a *domain.Error). Any
// other error is returned unchanged.
func (p *Pool) Classify(err error) error {
	if !connectionLost(err) {
		return err
	}
	p.reset(err)
	if _, ok := errors.AsType[*domain.Error](err); ok {
		return err
	}
	return &domain.Error{
		Kind:       domain.KindUnavailable,
		Code:       "database_unavailable",
		Message:    fmt.Sprintf("database unavailable: pool %s lost its server (restarted, failed over or read-only)", p.info.Name),
		RetryAfter: retryAfter,
		Err:        err,
	}
}

// connectionLost reports whether err says that every connection to the
// server is likely broken, not just the statement that failed.
func connectionLost(err error) bool { return pgkit.Classify(err) == pgkit.ServerLost }

// reset closes the pool's idle connections now and its checked-out ones when
// they are released, at most once per resetInterval.
func (p *Pool) reset(cause error) {
	now := time.Now().UnixNano()
	last := p.lastReset.Load()
	if now-last < int64(resetInterval) || !p.lastReset.CompareAndSwap(last, now) {
		return
	}
	p.pool.Reset()
	p.resets.Add(1)
	p.logger.Warn("pool reset: its connections are closed and reopened on demand", "pool", p.info.Name, "cause", cause)
}

// Ping checks that the pool can hand out a connection within its acquire
// timeout and that the server answers a ping on it within the ping timeout
// (at most 2s). Its errors are those of Acquire, or domain.KindUnavailable.
func (p *Pool) Ping(ctx context.Context) error {
	conn, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	pingCtx, cancel := context.WithTimeout(ctx, p.pingTimeout)
	defer cancel()
	if err := conn.Ping(pingCtx); err != nil {
		if classified := p.Classify(err); classified != err { //nolint:errorlint // identity: did Classify replace err?
			return classified
		}
		return &domain.Error{
			Kind:       domain.KindUnavailable,
			Code:       "database_unavailable",
			Message:    fmt.Sprintf("database unavailable: pool %s got no answer to a ping within %s", p.info.Name, p.pingTimeout),
			RetryAfter: retryAfter,
			Err:        err,
		}
	}
	return nil
}

// Info returns the pool's description: name, application_name, limits, mode,
// target and acquire timeout.
func (p *Pool) Info() PoolInfo { return p.info }

// OperationTimeout bounds one whole database operation of a request (the
// acquire and the statements after it): twice the acquire timeout. The
// acquire deadline alone cannot stop a statement on a connection whose peer
// went silent; this deadline does, so that a request needing the database
// answers in bounded time even when the network blackholes it.
func (p *Pool) OperationTimeout() time.Duration { return 2 * p.info.AcquireTimeout }

// Dedicated reports whether the pool is MLflow's own (MLFLOW_POOL=dedicated);
// the shared pool is not, and must be closed only by its owner.
func (p *Pool) Dedicated() bool { return p.info.Mode == ModeDedicated }

// Stat returns pgx's statistics for the pool.
func (p *Pool) Stat() *pgxpool.Stat { return p.pool.Stat() }

// Close closes the pool's connections, waiting for checked-out ones to be
// released.
func (p *Pool) Close() { p.pool.Close() }

// oneLineError is err written on one line: pgx puts each connection
// attempt on a line of its own, and an operator reads every line of a
// startup error as a problem of its own.
type oneLineError struct{ err error }

func (e oneLineError) Error() string {
	var b strings.Builder
	for line := range strings.SplitSeq(e.err.Error(), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case b.Len() == 0:
		case strings.HasSuffix(b.String(), ":"):
			b.WriteString(" ")
		default:
			b.WriteString("; ")
		}
		b.WriteString(line)
	}
	return b.String()
}

func (e oneLineError) Unwrap() error { return e.err }
