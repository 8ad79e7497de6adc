package infra

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// connURL is a PostgreSQL connection URL together with where it came from,
// so that errors can name the setting without quoting its value.
type connURL struct {
	url    string
	source string // e.g. "DATABASE_URL", "the DB_* settings"
}

// sharedDSN returns the shared pool's connection URL: DATABASE_URL when set,
// otherwise one built from DB_HOST, DB_PORT, DB_USER, DB_PASSWORD and
// DB_NAME, with every part escaped.
func sharedDSN(cfg Config) connURL {
	if cfg.DatabaseURL != "" {
		return connURL{url: cfg.DatabaseURL, source: "DATABASE_URL"}
	}
	u := url.URL{
		Scheme: "postgres",
		Host:   net.JoinHostPort(cfg.DBHost, strconv.Itoa(cfg.DBPort)),
		Path:   "/" + cfg.DBName,
	}
	if cfg.DBPassword != "" {
		u.User = url.UserPassword(cfg.DBUser, cfg.DBPassword)
	} else if cfg.DBUser != "" {
		u.User = url.User(cfg.DBUser)
	}
	return connURL{url: u.String(), source: "the DB_* settings"}
}

// mlflowDSN returns the dedicated MLflow pool's connection URL:
// MLFLOW_TRACKING_URI when set, otherwise the shared pool's. SQLAlchemy-style
// schemes that name a driver (postgresql+psycopg2://) are accepted.
func mlflowDSN(cfg Config) connURL {
	if cfg.MLflowTrackingURI == "" {
		return sharedDSN(cfg)
	}
	s := cfg.MLflowTrackingURI
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if base, _, hasDriver := strings.Cut(scheme, "+"); hasDriver && (base == "postgresql" || base == "postgres") {
			s = base + "://" + rest
		}
	}
	return connURL{url: s, source: "MLFLOW_TRACKING_URI"}
}

// Keepalive probes on every connection: a peer that vanished without closing
// (a failed-over host, a dropped NAT entry) is detected within about
// keepAliveIdle + keepAliveCount×keepAliveInterval instead of Go's default of
// about 2.5 minutes. libpq's keepalives_* keywords would only be sent to the
// server as runtime parameters, so the dialer sets them.
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
)

// Server-side limits sent as runtime parameters unless the URL sets them: a
// runaway statement or a transaction left open cannot hold a connection (and
// its locks) forever.
const (
	defaultStatementTimeout         = "30s"
	defaultIdleInTransactionTimeout = "60s"
)

// healthCheckPeriod is how often pgx reaps expired and idle connections and
// refills MinConns; shorter than pgx's minute so that a pool refills soon
// after the database returns.
const healthCheckPeriod = 15 * time.Second

// poolSettings are the pool-level choices for one pool, already mapped from
// the configuration.
type poolSettings struct {
	name           string // "shared" or "mlflow"; application_name is "tidygate-" + name
	mode           string // ModeShared or ModeDedicated
	minConns       int32
	maxConns       int32
	lifetime       time.Duration // the oldest a connection may get (lifetime plus jitter)
	idleTime       time.Duration
	acquireTimeout time.Duration
	connectTimeout time.Duration
	sslMode        string // used when the URL has no sslmode
	sslRootCert    string // used when the URL has no sslrootcert

	idleCap int32 // when positive, connections released beyond this many idle are closed
	prePing bool  // ping every connection before handing it out, resetting the pool on failure
}

// check rejects settings no pool can work with; configuration validation
// catches them earlier with the variables' names.
func (s poolSettings) check() error {
	switch {
	case s.maxConns < 1:
		return fmt.Errorf("the maximum of connections is %d; it must be at least 1", s.maxConns)
	case s.minConns < 0 || s.minConns > s.maxConns:
		return fmt.Errorf("the minimum of connections is %d; it must be between 0 and the maximum, %d", s.minConns, s.maxConns)
	case s.acquireTimeout <= 0:
		return fmt.Errorf("the acquire timeout is %s; it must be positive", s.acquireTimeout)
	case s.connectTimeout <= 0:
		return fmt.Errorf("the connect timeout is %s; it must be positive", s.connectTimeout)
	case s.idleTime <= 0:
		return fmt.Errorf("the idle time is %s; it must be positive (pgx would close every idle connection)", s.idleTime)
	}
	return nil
}

// applicationName is what a pool's connections show in pg_stat_activity.
func applicationName(pool string) string { return "tidygate-" + pool }

// parsePoolConfig parses c.url and applies s. Settings in the URL win, except
// application_name, which tidygate sets per pool so that each pool can be
// told apart on the server. Unless the URL says otherwise, connections go
// only to a server that accepts writes (target_session_attrs=read-write), so
// that a demoted primary is never used after a failover. Errors never contain
// the password.
func parsePoolConfig(c connURL, s poolSettings) (*pgxpool.Config, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s is not a postgres:// URL (value not shown: it may hold a password)", c.source)
	}
	q := u.Query()
	setDefault := func(key, value string) {
		if value != "" && !q.Has(key) {
			q.Set(key, value)
		}
	}
	setDefault("sslmode", s.sslMode)
	setDefault("sslrootcert", s.sslRootCert)
	setDefault("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()

	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		password, _ := u.User.Password()
		return nil, fmt.Errorf("%s: %s", c.source, redactPassword(parseErrorText(err), password))
	}

	cc := cfg.ConnConfig
	if !q.Has("connect_timeout") {
		cc.ConnectTimeout = s.connectTimeout
	}
	dialer := &net.Dialer{
		Timeout:         cc.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount},
	}
	cc.DialFunc = dialer.DialContext
	cc.RuntimeParams["application_name"] = applicationName(s.name)
	if _, set := cc.RuntimeParams["statement_timeout"]; !set {
		cc.RuntimeParams["statement_timeout"] = defaultStatementTimeout
	}
	if _, set := cc.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = defaultIdleInTransactionTimeout
	}

	cfg.MinConns = s.minConns
	cfg.MaxConns = s.maxConns
	cfg.MaxConnLifetime, cfg.MaxConnLifetimeJitter = lifetimeWithJitter(s.lifetime)
	cfg.MaxConnIdleTime = s.idleTime
	cfg.HealthCheckPeriod = healthCheckPeriod
	cfg.PingTimeout = pingTimeout(s.acquireTimeout)
	return cfg, nil
}

// lifetimeWithJitter spreads connection expiries over the last tenth of
// limit, so that connections opened together are not all closed together,
// and no connection outlives limit (a proxy or server may enforce it).
func lifetimeWithJitter(limit time.Duration) (lifetime, jitter time.Duration) {
	jitter = limit / 10
	return limit - jitter, jitter
}

// pingTimeout bounds the liveness ping of a pooled connection: short enough
// that a silently dead connection leaves time within the acquire deadline to
// try another one, long enough not to discard healthy connections on a slow
// link.
func pingTimeout(acquireTimeout time.Duration) time.Duration {
	return min(2*time.Second, max(acquireTimeout/2, 100*time.Millisecond))
}

// parseErrorText returns pgx's description of a connection string it could
// not parse.
func parseErrorText(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// The text quotes the connection string with the password masked
		// where pgx recognises it; redactPassword covers the rest.
		return pe.Error()
	}
	return err.Error()
}

// redactPassword replaces password, raw or URL-escaped, in text.
func redactPassword(text, password string) string {
	if password == "" {
		return text
	}
	userinfo := strings.TrimPrefix(url.UserPassword("", password).String(), ":")
	for _, form := range []string{password, userinfo, url.QueryEscape(password), url.PathEscape(password)} {
		text = strings.ReplaceAll(text, form, "xxxxx")
	}
	return text
}

// target describes where a pool connects, host:port/database, without
// credentials.
func target(cc *pgconn.Config) string {
	return net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))) + "/" + cc.Database
}
