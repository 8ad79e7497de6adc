package infra

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
)

// ConfigError lists every problem found in the configuration, one readable
// line each, so that an operator fixes them all in one go.
type ConfigError struct{ Problems []string }

// Error returns the problems, one per line.
func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

// UnmarshalText parses a number of seconds ("30") or a Go duration ("30s").
func (s *Seconds) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	if n, err := strconv.ParseFloat(text, 64); err == nil {
		if n < 0 {
			return fmt.Errorf("%q is negative", text)
		}
		*s = Seconds(time.Duration(n * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("%q is neither a number of seconds nor a duration such as 30s", text)
	}
	if d < 0 {
		return fmt.Errorf("%q is negative", text)
	}
	*s = Seconds(d)
	return nil
}

// Duration returns the value as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) }

// LoadConfig parses the configuration from environ (variable → value; the
// caller passes the process environment), applies the profile's defaults to
// variables that are not set, and validates the result. Every problem is
// reported at once in a *ConfigError; nothing falls back silently.
func LoadConfig(environ map[string]string) (Config, error) {
	var cfg Config
	var problems []string
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		problems = append(problems, parseProblems(err)...)
	}
	applyProfile(&cfg, environ)
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return Config{}, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

// parseProblems turns the env library's aggregate error into one line per
// variable, naming the variable rather than the Go field.
func parseProblems(err error) []string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []string{err.Error()}
	}
	vars := envNames()
	var out []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			out = append(out, fmt.Sprintf("%s: %s", vars[pe.Name], cleanParseError(pe.Err)))
			continue
		}
		out = append(out, e.Error())
	}
	return out
}

func cleanParseError(err error) string {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Sprintf("%q is not a valid number", ne.Num)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "time: ") {
		return strings.TrimPrefix(msg, "time: ") + " (want a duration such as 5s or 1m)"
	}
	return msg
}

// envNames maps Config's field names to their environment variables.
func envNames() map[string]string {
	t := reflect.TypeOf(Config{})
	out := make(map[string]string, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("env"), ",")
		out[t.Field(i).Name] = name
	}
	return out
}

// checker collects validation problems.
type checker struct{ problems []string }

func (c *checker) add(format string, args ...any) { c.problems = append(c.problems, fmt.Sprintf(format, args...)) }

func (c *checker) oneOf(name, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	c.add("%s=%q: must be one of %s", name, value, strings.Join(allowed, ", "))
}

func (c *checker) positive(name string, d time.Duration) {
	if d <= 0 {
		c.add("%s=%s: must be positive", name, d)
	}
}

func (c *checker) postgresURL(name, value string) {
	if value == "" {
		return
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		c.add("%s: must be a postgres:// or postgresql:// URL with a host (value not shown: it may hold a password)", name)
	}
}

func (c *checker) hostPort(name, value string, required bool) {
	if value == "" && !required {
		return
	}
	if _, port, err := net.SplitHostPort(value); err != nil || port == "" {
		c.add("%s=%q: must be host:port, e.g. 127.0.0.1:8080", name, value)
	}
}

func (cfg Config) validate() []string {
	var c checker
	c.oneOf("DEPLOY_PROFILE", cfg.Profile, "local", "home", "aws")
	if cfg.Replicas < 1 {
		c.add("REPLICAS=%d: must be at least 1", cfg.Replicas)
	}
	c.postgresURL("DATABASE_URL", cfg.DatabaseURL)
	c.postgresURL("MLFLOW_TRACKING_URI", cfg.MLflowTrackingURI)
	if cfg.DBPort < 1 || cfg.DBPort > 65535 {
		c.add("DB_PORT=%d: must be between 1 and 65535", cfg.DBPort)
	}
	c.oneOf("DB_SSLMODE", cfg.DBSSLMode, "disable", "allow", "prefer", "require", "verify-ca", "verify-full")
	if cfg.DBSSLMode == "verify-ca" || cfg.DBSSLMode == "verify-full" {
		if cfg.DBSSLRootCert == "" {
			c.add("DB_SSLMODE=%s needs DB_SSLROOTCERT, the CA bundle file (for RDS: the RDS CA bundle)", cfg.DBSSLMode)
		} else if _, err := os.Stat(cfg.DBSSLRootCert); err != nil {
			c.add("DB_SSLROOTCERT=%q: cannot read the file: %v", cfg.DBSSLRootCert, errors.Unwrap(err))
		}
	}
	if cfg.DBPoolMaxConns < 1 {
		c.add("DB_POOL_MAX_CONNS=%d: must be at least 1", cfg.DBPoolMaxConns)
	}
	if cfg.DBPoolMinConns < 0 || cfg.DBPoolMinConns > cfg.DBPoolMaxConns {
		c.add("DB_POOL_MIN_CONNS=%d: must be between 0 and DB_POOL_MAX_CONNS (%d)", cfg.DBPoolMinConns, cfg.DBPoolMaxConns)
	}
	c.positive("DB_POOL_ACQUIRE_TIMEOUT", cfg.DBAcquireTimeout)
	c.positive("DB_CONNECT_TIMEOUT", cfg.DBConnectTimeout)
	c.positive("DB_POOL_MAX_CONN_LIFETIME", cfg.DBMaxConnLifetime)
	c.positive("DB_POOL_MAX_CONN_IDLE_TIME", cfg.DBMaxConnIdleTime)
	c.oneOf("DB_CONNECTION_BUDGET", cfg.DBConnBudget, "enforce", "warn")

	c.oneOf("MLFLOW_POOL", cfg.MLflowPool, "shared", "dedicated")
	if cfg.MLflowPoolSize < 1 {
		c.add("MLFLOW_SQLALCHEMY_POOL_SIZE=%d: must be at least 1 (SQLAlchemy's 0 means unlimited, which a bounded pool cannot honour)", cfg.MLflowPoolSize)
	}
	if cfg.MLflowMaxOverflow < 0 {
		c.add("MLFLOW_SQLALCHEMY_MAX_OVERFLOW=%d: must be 0 or more (SQLAlchemy's -1 means unlimited, which a bounded pool cannot honour)", cfg.MLflowMaxOverflow)
	}
	c.positive("MLFLOW_SQLALCHEMY_POOL_TIMEOUT", cfg.MLflowPoolTimeout.Duration())
	c.positive("MLFLOW_SQLALCHEMY_POOL_RECYCLE", cfg.MLflowPoolRecycle.Duration())
	c.oneOf("MLFLOW_SCHEMA", cfg.MLflowSchema, "verify", "create")
	c.oneOf("MLFLOW_LOG_MODE", cfg.MLflowLogMode, "traces", "runs", "both")
	c.oneOf("MLFLOW_LOG_CONTENT", cfg.MLflowLogContent, "full", "preview", "none")
	c.oneOf("MLFLOW_JOURNAL_WHEN_FULL", cfg.JournalWhenFull, "refuse", "accept")
	if strings.TrimSpace(cfg.JournalDir) == "" {
		c.add("MLFLOW_JOURNAL_DIR: must not be empty")
	}
	if cfg.JournalMaxRecords < 1 {
		c.add("MLFLOW_JOURNAL_MAX_RECORDS=%d: must be at least 1", cfg.JournalMaxRecords)
	}
	if cfg.WriterBatchSize < 1 || cfg.WriterBatchSize > 1000 {
		c.add("MLFLOW_WRITER_BATCH_SIZE=%d: must be between 1 and 1000", cfg.WriterBatchSize)
	}
	c.positive("MLFLOW_WRITER_FLUSH_INTERVAL", cfg.WriterFlushInterval)

	c.hostPort("HTTP_ADDR", cfg.HTTPAddr, true)
	c.hostPort("ADMIN_ADDR", cfg.AdminAddr, false)
	if cfg.MaxBodyBytes < 1 {
		c.add("HTTP_MAX_BODY_BYTES=%d: must be positive", cfg.MaxBodyBytes)
	}
	c.positive("HTTP_READ_HEADER_TIMEOUT", cfg.ReadHeaderTimeout)
	c.positive("HTTP_IDLE_TIMEOUT", cfg.IdleTimeout)
	c.positive("HTTP_WRITE_TIMEOUT", cfg.WriteTimeout)
	c.positive("SHUTDOWN_TIMEOUT", cfg.ShutdownTimeout)

	if cfg.AuditReasonMinLen < 1 {
		c.add("AUDIT_REASON_MIN_LEN=%d: must be at least 1 (the audit reason is mandatory)", cfg.AuditReasonMinLen)
	}
	if cfg.MaxConcurrentCalls < 1 {
		c.add("MAX_CONCURRENT_CALLS=%d: must be at least 1", cfg.MaxConcurrentCalls)
	}
	c.positive("PROVIDER_TIMEOUT", cfg.ProviderTimeout)
	if cfg.ProviderAttempts < 1 || cfg.ProviderAttempts > 10 {
		c.add("PROVIDER_MAX_ATTEMPTS=%d: must be between 1 and 10", cfg.ProviderAttempts)
	}
	c.positive("PROVIDER_RETRY_BACKOFF", cfg.RetryBackoff)
	if cfg.OpenAIBaseURL != "" {
		if u, err := url.Parse(cfg.OpenAIBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.add("OPENAI_BASE_URL=%q: must be an http(s) URL", cfg.OpenAIBaseURL)
		}
	}
	if cfg.AnthropicBaseURL != "" {
		if u, err := url.Parse(cfg.AnthropicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.add("ANTHROPIC_BASE_URL=%q: must be an http(s) URL", cfg.AnthropicBaseURL)
		}
	}
	if cfg.MockLatency < 0 {
		c.add("MOCK_LATENCY=%s: must not be negative", cfg.MockLatency)
	}
	if cfg.MockFailureRate < 0 || cfg.MockFailureRate > 1 {
		c.add("MOCK_FAILURE_RATE=%g: must be between 0 and 1", cfg.MockFailureRate)
	}
	c.oneOf("LOG_LEVEL", cfg.LogLevel, "debug", "info", "warn", "error")
	c.oneOf("LOG_FORMAT", cfg.LogFormat, "text", "json")
	return c.problems
}
