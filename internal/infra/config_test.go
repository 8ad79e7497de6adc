package infra

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// problems loads environ and returns the reported problems, failing the test
// if the error is not a *ConfigError.
func problems(t *testing.T, environ map[string]string) []string {
	t.Helper()
	_, err := LoadConfig(environ)
	if err == nil {
		return nil
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("LoadConfig returned %T, want *ConfigError: %v", err, err)
	}
	return ce.Problems
}

func mustLoad(t *testing.T, environ map[string]string) Config {
	t.Helper()
	cfg, err := LoadConfig(environ)
	if err != nil {
		t.Fatalf("LoadConfig(%v): %v", environ, err)
	}
	return cfg
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg := mustLoad(t, map[string]string{})
	checks := []struct {
		name      string
		got, want any
	}{
		{"Profile", cfg.Profile, "local"},
		{"Replicas", cfg.Replicas, 1},
		{"DBHost", cfg.DBHost, "127.0.0.1"},
		{"DBPort", cfg.DBPort, 5432},
		{"DBSSLMode", cfg.DBSSLMode, "prefer"},
		{"DBPoolMinConns", cfg.DBPoolMinConns, int32(1)},
		{"DBPoolMaxConns", cfg.DBPoolMaxConns, int32(10)},
		{"DBAcquireTimeout", cfg.DBAcquireTimeout, 5 * time.Second},
		{"DBConnectTimeout", cfg.DBConnectTimeout, 5 * time.Second},
		{"DBMaxConnIdleTime", cfg.DBMaxConnIdleTime, 10 * time.Minute},
		{"DBConnBudget", cfg.DBConnBudget, "enforce"},
		{"LedgerLockTimeout", cfg.LedgerLockTimeout, time.Second},
		{"MLflowPool", cfg.MLflowPool, "shared"},
		{"MLflowPoolSize", cfg.MLflowPoolSize, int32(10)},
		{"MLflowMaxOverflow", cfg.MLflowMaxOverflow, int32(20)},
		{"MLflowPoolTimeout", cfg.MLflowPoolTimeout.Duration(), 30 * time.Second},
		{"MLflowPoolRecycle", cfg.MLflowPoolRecycle.Duration(), 1800 * time.Second},
		{"MLflowPoolPrePing", cfg.MLflowPoolPrePing, true},
		{"MLflowSchema", cfg.MLflowSchema, "create"},
		{"MLflowLogMode", cfg.MLflowLogMode, "traces"},
		{"WriterBatchSize", cfg.WriterBatchSize, 100},
		{"HTTPAddr", cfg.HTTPAddr, "127.0.0.1:8080"},
		{"LogLevel", cfg.LogLevel, "info"},
		{"ConcurrentPerKey", cfg.ConcurrentPerKey(), 64},
		{"ConcurrentPerTeam", cfg.ConcurrentPerTeam(), 128},
		{"ReserveFirst", cfg.ReserveFirst(), false},
		{"ProfileDefaults", strings.Join(cfg.ProfileDefaults(), " "), "MLFLOW_SCHEMA=create"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadConfigProfiles(t *testing.T) {
	type pool struct {
		min                    int32
		idle, connect, acquire time.Duration
		sslmode, schema        string
	}
	cases := []struct {
		name    string
		environ map[string]string
		want    pool
		applied []string
	}{
		{
			name:    "local",
			environ: map[string]string{"DEPLOY_PROFILE": "local"},
			want:    pool{1, 10 * time.Minute, 5 * time.Second, 5 * time.Second, "prefer", "create"},
			applied: []string{"MLFLOW_SCHEMA=create"},
		},
		{
			name:    "home keeps connections warm",
			environ: map[string]string{"DEPLOY_PROFILE": "home"},
			want:    pool{4, 30 * time.Minute, 10 * time.Second, 10 * time.Second, "prefer", "verify"},
			applied: []string{"DB_POOL_MIN_CONNS=4", "DB_POOL_MAX_CONN_IDLE_TIME=30m", "DB_CONNECT_TIMEOUT=10s",
				"DB_POOL_ACQUIRE_TIMEOUT=10s", "MLFLOW_SCHEMA=verify"},
		},
		{
			name:    "aws",
			environ: map[string]string{"DEPLOY_PROFILE": "aws"},
			want:    pool{1, 10 * time.Minute, 5 * time.Second, 3 * time.Second, "require", "verify"},
			applied: []string{"DB_POOL_MIN_CONNS=1", "DB_CONNECT_TIMEOUT=5s", "DB_POOL_ACQUIRE_TIMEOUT=3s",
				"DB_SSLMODE=require", "MLFLOW_SCHEMA=verify"},
		},
		{
			name: "explicit values win over the profile",
			environ: map[string]string{"DEPLOY_PROFILE": "aws", "DB_SSLMODE": "disable", "DB_POOL_ACQUIRE_TIMEOUT": "1s",
				"MLFLOW_SCHEMA": "create"},
			want:    pool{1, 10 * time.Minute, 5 * time.Second, 1 * time.Second, "disable", "create"},
			applied: []string{"DB_POOL_MIN_CONNS=1", "DB_CONNECT_TIMEOUT=5s"},
		},
		{
			name:    "an empty value counts as unset",
			environ: map[string]string{"DEPLOY_PROFILE": "home", "DB_POOL_MIN_CONNS": "", "MLFLOW_SCHEMA": "create", "DB_CONNECT_TIMEOUT": "3s", "DB_POOL_ACQUIRE_TIMEOUT": "4s", "DB_POOL_MAX_CONN_IDLE_TIME": "1m"},
			want:    pool{4, time.Minute, 3 * time.Second, 4 * time.Second, "prefer", "create"},
			applied: []string{"DB_POOL_MIN_CONNS=4"},
		},
		{
			name:    "an empty profile is local",
			environ: map[string]string{"DEPLOY_PROFILE": ""},
			want:    pool{1, 10 * time.Minute, 5 * time.Second, 5 * time.Second, "prefer", "create"},
			applied: []string{"MLFLOW_SCHEMA=create"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := maps.Clone(tc.environ)
			cfg := mustLoad(t, tc.environ)
			got := pool{cfg.DBPoolMinConns, cfg.DBMaxConnIdleTime, cfg.DBConnectTimeout, cfg.DBAcquireTimeout, cfg.DBSSLMode, cfg.MLflowSchema}
			if got != tc.want {
				t.Errorf("pool settings = %+v, want %+v", got, tc.want)
			}
			if applied := cfg.ProfileDefaults(); !slices.Equal(applied, tc.applied) {
				t.Errorf("ProfileDefaults = %q, want %q", applied, tc.applied)
			}
			if !maps.Equal(before, tc.environ) {
				t.Errorf("LoadConfig modified its argument: %v", tc.environ)
			}
		})
	}
}

func TestLoadConfigRejects(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	unbounded := " (SQLAlchemy's %s means no limit, which a bounded pgx pool cannot honour)"
	type rejection struct {
		environ map[string]string
		want    string // the one problem reported
	}
	cases := []rejection{
		{map[string]string{"DEPLOY_PROFILE": "mars"}, `DEPLOY_PROFILE="mars": must be local, home or aws`},
		{map[string]string{"REPLICAS": "0"}, `REPLICAS=0: must be at least 1`},
		{map[string]string{"MAX_CONCURRENT_PER_KEY": "0"}, `MAX_CONCURRENT_PER_KEY=0: must be between 1 and 256`},
		{map[string]string{"MAX_CONCURRENT_CALLS": "10", "MAX_CONCURRENT_PER_TEAM": "11"}, `MAX_CONCURRENT_PER_TEAM=11: must be between 1 and 10`},
		{map[string]string{"MAX_CONCURRENT_PER_KEY": "many"}, `MAX_CONCURRENT_PER_KEY="many": must be a whole number`},
		{map[string]string{"REPLICAS": "two"}, `REPLICAS="two": must be a whole number`},
		{map[string]string{"DB_PORT": "0"}, `DB_PORT=0: must be between 1 and 65535`},
		{map[string]string{"DB_PORT": "65536"}, `DB_PORT=65536: must be between 1 and 65535`},
		{map[string]string{"DATABASE_URL": "mysql://app:hunter2@db/app"}, `DATABASE_URL="mysql://app:xxxxx@db/app": must be a postgres:// or postgresql:// URL`},
		{map[string]string{"DATABASE_URL": "host=db password=hunter2"}, `DATABASE_URL="***": must be a postgres:// or postgresql:// URL`},
		{map[string]string{"DB_SSLMODE": "on"}, `DB_SSLMODE="on": must be disable, allow, prefer, require, verify-ca or verify-full`},
		{map[string]string{"DB_SSLMODE": "verify-full"}, `DB_SSLMODE="verify-full": needs DB_SSLROOTCERT, the CA bundle that signed the server's certificate (for RDS: the RDS CA bundle)`},
		{map[string]string{"DB_SSLMODE": "verify-ca", "DB_SSLROOTCERT": ca + ".missing"}, `DB_SSLROOTCERT="` + ca + `.missing": must be a readable CA bundle file (no such file or directory)`},
		{map[string]string{"DB_SSLMODE": "verify-ca", "DB_SSLROOTCERT": filepath.Dir(ca)}, `DB_SSLROOTCERT="` + filepath.Dir(ca) + `": must be a readable CA bundle file (not a regular file)`},
		// A CA bundle is read whatever the mode, so a wrong path is refused with every mode.
		{map[string]string{"DB_SSLROOTCERT": ca + ".missing"}, `DB_SSLROOTCERT="` + ca + `.missing": must be a readable CA bundle file (no such file or directory)`},
		{map[string]string{"CATALOGUE_FILE": ca + ".yaml"}, `CATALOGUE_FILE="` + ca + `.yaml": must be a readable catalogue file (no such file or directory)`},
		{map[string]string{"CATALOGUE_FILE": filepath.Dir(ca)}, `CATALOGUE_FILE="` + filepath.Dir(ca) + `": must be a readable catalogue file (not a regular file)`},
		{map[string]string{"DB_POOL_MAX_CONNS": "0"}, `DB_POOL_MAX_CONNS=0: must be at least 1`},
		{map[string]string{"DB_POOL_MAX_CONNS": "3000000000"}, `DB_POOL_MAX_CONNS="3000000000": is out of range`},
		{map[string]string{"DB_POOL_MIN_CONNS": "-1"}, `DB_POOL_MIN_CONNS=-1: must be at least 0`},
		{map[string]string{"ADMIN_AUTH_FAILURE_LIMIT": "-1"}, `ADMIN_AUTH_FAILURE_LIMIT=-1: must be at least 0 (0: failed authentications are not throttled)`},
		{map[string]string{"DB_POOL_MIN_CONNS": "11"}, `DB_POOL_MIN_CONNS=11: must not exceed DB_POOL_MAX_CONNS=10`},
		{map[string]string{"DEPLOY_PROFILE": "home", "DB_POOL_MAX_CONNS": "1"}, `DB_POOL_MIN_CONNS=4 (the DEPLOY_PROFILE=home default): must not exceed DB_POOL_MAX_CONNS=1`},
		{map[string]string{"LEDGER_LOCK_TIMEOUT": "0s"}, `LEDGER_LOCK_TIMEOUT=0s: must be at least 1ms`},
		{map[string]string{"KEY_CACHE_TTL": "-1s"}, `KEY_CACHE_TTL=-1s: must be between 0 (no cache) and 10m0s: it bounds how long a key change whose notification is lost goes unseen`},
		{map[string]string{"KEY_CACHE_TTL": "11m"}, `KEY_CACHE_TTL=11m0s: must be between 0 (no cache) and 10m0s: it bounds how long a key change whose notification is lost goes unseen`},
		{map[string]string{"LEDGER_LOCK_TIMEOUT": "5s"}, `LEDGER_LOCK_TIMEOUT=5s: must be shorter than DB_POOL_ACQUIRE_TIMEOUT=5s, so that one budget's locked row cannot keep other callers waiting for a connection`},
		{map[string]string{"LEDGER_LOCK_TIMEOUT": "2s", "DB_POOL_ACQUIRE_TIMEOUT": "1s"}, `LEDGER_LOCK_TIMEOUT=2s: must be shorter than DB_POOL_ACQUIRE_TIMEOUT=1s, so that one budget's locked row cannot keep other callers waiting for a connection`},
		{map[string]string{"DB_POOL_ACQUIRE_TIMEOUT": "5 parsecs"}, `DB_POOL_ACQUIRE_TIMEOUT="5 parsecs": must be a duration such as 500ms, 5s or 10m`},
		{map[string]string{"DB_REQUIRE_AT_START": "maybe"}, `DB_REQUIRE_AT_START="maybe": must be true or false`},
		{map[string]string{"DB_CONNECTION_BUDGET": "ignore"}, `DB_CONNECTION_BUDGET="ignore": must be enforce or warn`},
		{map[string]string{"MLFLOW_POOL": "both"}, `MLFLOW_POOL="both": must be shared or dedicated`},
		{map[string]string{"MLFLOW_SQLALCHEMY_POOL_SIZE": "0"}, `MLFLOW_SQLALCHEMY_POOL_SIZE=0: must be at least 1` + strings.Replace(unbounded, "%s", "0", 1)},
		{map[string]string{"MLFLOW_SQLALCHEMY_MAX_OVERFLOW": "-1"}, `MLFLOW_SQLALCHEMY_MAX_OVERFLOW=-1: must be at least 0` + strings.Replace(unbounded, "%s", "-1", 1)},
		{map[string]string{"MLFLOW_SQLALCHEMY_POOL_SIZE": "2147483647"}, `MLFLOW_SQLALCHEMY_MAX_OVERFLOW=20: POOL_SIZE + MAX_OVERFLOW must be at most 2147483647`},
		{map[string]string{"MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "soon"}, `MLFLOW_SQLALCHEMY_POOL_TIMEOUT="soon": must be a number of seconds such as 30 or a duration such as 30s`},
		{map[string]string{"MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "-5"}, `MLFLOW_SQLALCHEMY_POOL_TIMEOUT="-5": must not be negative`},
		{map[string]string{"MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "0"}, `MLFLOW_SQLALCHEMY_POOL_TIMEOUT=0s: must be longer than zero`},
		{map[string]string{"MLFLOW_SQLALCHEMY_POOL_RECYCLE": "0"}, `MLFLOW_SQLALCHEMY_POOL_RECYCLE=0s: must be longer than zero`},
		{map[string]string{"MLFLOW_SQLALCHEMY_POOL_PRE_PING": "yes"}, `MLFLOW_SQLALCHEMY_POOL_PRE_PING="yes": must be true or false`},
		{map[string]string{"MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLFLOW_POOL": "dedicated"}, `MLFLOW_TRACKING_URI="http://mlflow:5000": must be a postgres:// or postgresql:// URL (tidygate writes to MLflow's database, not to its tracking server)`},
		{map[string]string{"MLFLOW_TRACKING_URI": "postgresql://ml:s3cret@db/mlflow"}, `MLFLOW_POOL="shared": must be dedicated when MLFLOW_TRACKING_URI is set (a shared pool cannot reach another database)`},
		{map[string]string{"MLFLOW_SCHEMA": "drop"}, `MLFLOW_SCHEMA="drop": must be verify or create`},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, lb.internal"}, `TRUSTED_PROXIES="10.0.0.0/8, lb.internal": "lb.internal" is neither an IP address nor a CIDR prefix such as 10.0.0.0/8`},
		{map[string]string{"MLFLOW_LOG_MODE": "all"}, `MLFLOW_LOG_MODE="all": must be traces, runs, both or off`},
		{map[string]string{"LEDGER_SYNCHRONOUS_COMMIT": "true"}, `LEDGER_SYNCHRONOUS_COMMIT="true": must be off or on`},
		{map[string]string{"LEDGER_RESERVATION": "before"}, `LEDGER_RESERVATION="before": must be alongside or first`},
		{map[string]string{"DEPLOY_PROFILE": "aws", "MLFLOW_LOG_MODE": "off"}, `MLFLOW_LOG_MODE="off": turns the audit trail off, which only the local profile allows (for benchmarks and development), not DEPLOY_PROFILE=aws`},
		{map[string]string{"MLFLOW_LOG_CONTENT": "some"}, `MLFLOW_LOG_CONTENT="some": must be full, preview or none`},
		{map[string]string{"MLFLOW_JOURNAL_DIR": "  "}, `MLFLOW_JOURNAL_DIR="  ": must name a directory`},
		{map[string]string{"MLFLOW_JOURNAL_MAX_RECORDS": "0"}, `MLFLOW_JOURNAL_MAX_RECORDS=0: must be at least 1`},
		{map[string]string{"MLFLOW_JOURNAL_WHEN_FULL": "drop"}, `MLFLOW_JOURNAL_WHEN_FULL="drop": must be refuse or accept`},
		{map[string]string{"MLFLOW_WRITER_BATCH_SIZE": "0"}, `MLFLOW_WRITER_BATCH_SIZE=0: must be between 1 and 1000`},
		{map[string]string{"MLFLOW_WRITER_BATCH_SIZE": "1001"}, `MLFLOW_WRITER_BATCH_SIZE=1001: must be between 1 and 1000`},
		{map[string]string{"HTTP_ADDR": "8080"}, `HTTP_ADDR="8080": must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or :8080`},
		{map[string]string{"HTTP_ADDR": "localhost:99999"}, `HTTP_ADDR="localhost:99999": must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or :8080`},
		{map[string]string{"ADMIN_ADDR": "localhost"}, `ADMIN_ADDR="localhost": must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or :8080`},
		{map[string]string{"ADMIN_ADDR": "127.0.0.1:8080"}, `ADMIN_ADDR="127.0.0.1:8080": must differ from HTTP_ADDR`},
		{map[string]string{"HTTP_MAX_BODY_BYTES": "-1"}, `HTTP_MAX_BODY_BYTES=-1: must be at least 0 (0 or unset: each dialect's default)`},
		{map[string]string{"AUDIT_REASON_MIN_LEN": "0"}, `AUDIT_REASON_MIN_LEN=0: must be at least 1 (every call must state its reason)`},
		{map[string]string{"AUDIT_REASON_MAX_LEN": "8001"}, `AUDIT_REASON_MAX_LEN=8001: must be between 3 and 8000`},
		{map[string]string{"AUDIT_REASON_MIN_LEN": "10", "AUDIT_REASON_MAX_LEN": "5"}, `AUDIT_REASON_MAX_LEN=5: must be between 10 and 8000`},
		{map[string]string{"MAX_CONCURRENT_CALLS": "0"}, `MAX_CONCURRENT_CALLS=0: must be at least 1`},
		// "Local" is the host's zone, which replicas on other hosts need not share.
		{map[string]string{"BUDGET_TIME_ZONE": "Local"}, `BUDGET_TIME_ZONE="Local": must be an IANA time zone such as UTC or Europe/Berlin, not Local (this host's zone, which other replicas need not share)`},
		{map[string]string{"BUDGET_TIME_ZONE": "Mars/Olympus"}, `BUDGET_TIME_ZONE="Mars/Olympus": must be an IANA time zone such as UTC or Europe/Berlin`},
		// A bad value is reported once, not again as the bound of another.
		{map[string]string{"MAX_CONCURRENT_CALLS": "0", "MAX_CONCURRENT_PER_KEY": "5"}, `MAX_CONCURRENT_CALLS=0: must be at least 1`},
		{map[string]string{"MAX_CONCURRENT_CALLS": "many", "MAX_CONCURRENT_PER_TEAM": "5"}, `MAX_CONCURRENT_CALLS="many": must be a whole number`},
		{map[string]string{"AUDIT_REASON_MIN_LEN": "9000"}, `AUDIT_REASON_MIN_LEN=9000: must be at most 8000 (the most AUDIT_REASON_MAX_LEN may be)`},
		{map[string]string{"AUDIT_REASON_MIN_LEN": "few", "AUDIT_REASON_MAX_LEN": "2"}, `AUDIT_REASON_MIN_LEN="few": must be a whole number`},
		{map[string]string{"DB_POOL_ACQUIRE_TIMEOUT": "1ms"}, `DB_POOL_ACQUIRE_TIMEOUT=1ms: must be at least 2ms while LEDGER_LOCK_TIMEOUT is not set (its default is half of DB_POOL_ACQUIRE_TIMEOUT, and at least 1ms)`},
		{map[string]string{"EMBED_MAX_DIMENSIONS": "65537"}, `EMBED_MAX_DIMENSIONS=65537: must be between 1 and 65536`},
		{map[string]string{"EMBED_MAX_INPUTS": "2049"}, `EMBED_MAX_INPUTS=2049: must be between 1 and 2048`},
		{map[string]string{"EMBED_MAX_INPUT_BYTES": "0"}, `EMBED_MAX_INPUT_BYTES=0: must be at least 1`},
		{map[string]string{"EMBED_MAX_RESPONSE_VALUES": "0"}, `EMBED_MAX_RESPONSE_VALUES=0: must be at least 1`},
		{map[string]string{"PROVIDER_MAX_ATTEMPTS": "0"}, `PROVIDER_MAX_ATTEMPTS=0: must be between 1 and 10`},
		{map[string]string{"PROVIDER_MAX_ATTEMPTS": "11"}, `PROVIDER_MAX_ATTEMPTS=11: must be between 1 and 10`},
		{map[string]string{"LOG_LEVEL": "loud"}, `LOG_LEVEL="loud": must be debug, info, warn or error`},
		{map[string]string{"LOG_FORMAT": "xml"}, `LOG_FORMAT="xml": must be text or json`},
		{map[string]string{"REDIS_URL": "127.0.0.1:6379"}, `REDIS_URL="***": ` + redisURLRule},
		{map[string]string{"REDIS_URL": "http://127.0.0.1:6379"}, `REDIS_URL="http://127.0.0.1:6379": ` + redisURLRule},
		{map[string]string{"REDIS_URL": "redis://:99999"}, `REDIS_URL="redis://:99999": ` + redisURLRule},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:0"}, `REDIS_URL="redis://127.0.0.1:0": ` + redisURLRule},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/zero"}, `REDIS_URL="redis://127.0.0.1:6379/zero": ` + redisURLRule},
		{map[string]string{"REDIS_URL": "redis://u:secret@127.0.0.1:x"}, `REDIS_URL="***": ` + redisURLRule},
	}
	for _, name := range []string{"DB_POOL_ACQUIRE_TIMEOUT", "DB_CONNECT_TIMEOUT", "DB_POOL_MAX_CONN_LIFETIME",
		"DB_POOL_MAX_CONN_IDLE_TIME", "MLFLOW_WRITER_FLUSH_INTERVAL", "HTTP_READ_HEADER_TIMEOUT", "HTTP_IDLE_TIMEOUT",
		"HTTP_WRITE_TIMEOUT", "SHUTDOWN_TIMEOUT", "PROVIDER_TIMEOUT", "PROVIDER_RETRY_BACKOFF"} {
		cases = append(cases,
			rejection{map[string]string{name: "0s"}, name + "=0s: must be longer than zero"},
			rejection{map[string]string{name: "-2m"}, name + "=-2m0s: must be longer than zero"})
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			got := problems(t, tc.environ)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("LoadConfig(%v) problems:\n%s\nwant exactly:\n%s", tc.environ, strings.Join(got, "\n"), tc.want)
			}
		})
	}
}

// TestLedgerLockTimeoutDefaultStaysBelowTheAcquireTimeout: an operator who
// shortens DB_POOL_ACQUIRE_TIMEOUT gets a lock timeout below it, not a
// startup error about a setting they never set.
func TestLedgerLockTimeoutDefaultStaysBelowTheAcquireTimeout(t *testing.T) {
	if got := mustLoad(t, map[string]string{"DB_POOL_ACQUIRE_TIMEOUT": "1s"}).LedgerLockTimeout; got != 500*time.Millisecond {
		t.Errorf("LedgerLockTimeout = %v, want 500ms (half of DB_POOL_ACQUIRE_TIMEOUT=1s)", got)
	}
	if got := mustLoad(t, map[string]string{"LEDGER_LOCK_TIMEOUT": "250ms"}).LedgerLockTimeout; got != 250*time.Millisecond {
		t.Errorf("LedgerLockTimeout = %v, want the explicit 250ms", got)
	}
}

func TestLedgerReservationFirstReservesEveryCallFirst(t *testing.T) {
	if !mustLoad(t, map[string]string{"LEDGER_RESERVATION": "first"}).ReserveFirst() {
		t.Error("LEDGER_RESERVATION=first: ReserveFirst() = false, want true")
	}
	if mustLoad(t, map[string]string{"LEDGER_RESERVATION": "alongside"}).ReserveFirst() {
		t.Error("LEDGER_RESERVATION=alongside: ReserveFirst() = true, want false")
	}
}

func TestLoadConfigAccepts(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, environ := range []map[string]string{
		{"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": ca},
		{"DATABASE_URL": "postgresql://app:pw@db.internal:5432/app?sslmode=require"},
		{"DATABASE_URL": "postgres:///app?host=/var/run/postgresql"},
		{"MLFLOW_POOL": "dedicated", "MLFLOW_TRACKING_URI": "postgresql://ml@db/mlflow"},
		{"HTTP_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0"},
		{"HTTP_ADDR": ":8080", "ADMIN_ADDR": "[::1]:9090"},
		{"MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "2.5", "MLFLOW_SQLALCHEMY_MAX_OVERFLOW": "0", "DB_POOL_MIN_CONNS": "0"},
		{"LOG_FORMAT": "json", "LOG_LEVEL": "debug"},
	} {
		if got := problems(t, environ); len(got) > 0 {
			t.Errorf("LoadConfig(%v) rejected a valid configuration:\n%s", environ, strings.Join(got, "\n"))
		}
	}
}

func TestLoadConfigReportsEveryProblemAtOnce(t *testing.T) {
	got := problems(t, map[string]string{
		"DEPLOY_PROFILE":                 "mars",
		"REPLICAS":                       "0",
		"DB_PORT":                        "abc",
		"DB_POOL_ACQUIRE_TIMEOUT":        "5 parsecs",
		"MLFLOW_POOL":                    "both",
		"MLFLOW_SQLALCHEMY_POOL_SIZE":    "0",
		"MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "soon",
		"DATABASE_URL":                   "mysql://u:hunter2@h/db",
		"DB_SSLMODE":                     "verify-full",
		"HTTP_ADDR":                      "8080",
		"LOG_LEVEL":                      "loud",
	})
	// Parse errors come first. A value that failed to parse is not checked
	// again as zero, and an unknown profile does not add a problem about the
	// MLFLOW_SCHEMA default it could not supply.
	want := []string{
		`DB_PORT="abc": must be a whole number`,
		`DB_POOL_ACQUIRE_TIMEOUT="5 parsecs": must be a duration such as 500ms, 5s or 10m`,
		`MLFLOW_SQLALCHEMY_POOL_TIMEOUT="soon": must be a number of seconds such as 30 or a duration such as 30s`,
		`DEPLOY_PROFILE="mars": must be local, home or aws`,
		`REPLICAS=0: must be at least 1`,
		`DATABASE_URL="mysql://u:xxxxx@h/db": must be a postgres:// or postgresql:// URL`,
		`DB_SSLMODE="verify-full": needs DB_SSLROOTCERT, the CA bundle that signed the server's certificate (for RDS: the RDS CA bundle)`,
		`MLFLOW_POOL="both": must be shared or dedicated`,
		`MLFLOW_SQLALCHEMY_POOL_SIZE=0: must be at least 1 (SQLAlchemy's 0 means no limit, which a bounded pgx pool cannot honour)`,
		`HTTP_ADDR="8080": must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or :8080`,
		`LOG_LEVEL="loud": must be debug, info, warn or error`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSecondsUnmarshalText(t *testing.T) {
	good := map[string]time.Duration{
		"30": 30 * time.Second, "0": 0, "1.5": 1500 * time.Millisecond, " 1800 ": 30 * time.Minute, "2.": 2 * time.Second,
		".25": 250 * time.Millisecond, "30s": 30 * time.Second, "1m30s": 90 * time.Second, "250ms": 250 * time.Millisecond,
	}
	for in, want := range good {
		var s Seconds
		if err := s.UnmarshalText([]byte(in)); err != nil || s.Duration() != want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", in, s.Duration(), err, want)
		}
	}
	for _, bad := range []string{"", "-1", "-1s", "soon", "30 s", "1e3", "0x10", "NaN", "Inf", "1.2.3", ".", "99999999999999999999"} {
		var s Seconds
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, want an error", bad, s.Duration())
		}
	}
}

// secretEnviron sets every secret, some inside URLs, each containing "s3cret".
var secretEnviron = map[string]string{
	"DB_PASSWORD":         "s3cret-db",
	"DATABASE_URL":        "postgres://app:s3cret-url@db:5432/app?sslmode=disable",
	"MLFLOW_POOL":         "dedicated",
	"MLFLOW_TRACKING_URI": "postgresql://ml@db/mlflow?password=s3cret-query",
}

func TestRedactedHidesSecrets(t *testing.T) {
	cfg := mustLoad(t, secretEnviron)
	view := cfg.Redacted()
	for k, v := range view {
		if strings.Contains(v, "s3cret") {
			t.Errorf("Redacted()[%s] = %q shows a secret", k, v)
		}
	}
	want := map[string]string{
		"DB_PASSWORD":                    "***",
		"DATABASE_URL":                   "postgres://app:xxxxx@db:5432/app?sslmode=disable",
		"MLFLOW_TRACKING_URI":            "postgresql://ml@db/mlflow?password=xxxxx",
		"REPLICAS":                       "1",
		"MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "30s",
		"DB_POOL_ACQUIRE_TIMEOUT":        "5s",
	}
	for k, w := range want {
		if view[k] != w {
			t.Errorf("Redacted()[%s] = %q, want %q", k, view[k], w)
		}
	}
	if len(view) != len(settings()) {
		t.Errorf("Redacted has %d settings, Config reads %d", len(view), len(settings()))
	}

	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("configuration", "config", cfg)
	if out := buf.String(); strings.Contains(out, "s3cret") || !strings.Contains(out, "config.DB_PASSWORD=***") {
		t.Errorf("logging the Config wrote:\n%s", out)
	}
}

func TestProblemsHideSecrets(t *testing.T) {
	environ := maps.Clone(secretEnviron)
	environ["DATABASE_URL"] = "mysql://app:s3cret-url@db/app"
	environ["MLFLOW_TRACKING_URI"] = "://ml:s3cret@db" // does not parse: masked whole
	got := problems(t, environ)
	if len(got) != 2 {
		t.Fatalf("problems = %q, want two", got)
	}
	for _, p := range got {
		if strings.Contains(p, "s3cret") {
			t.Errorf("problem %q shows a secret", p)
		}
	}
}

func TestNewLogger(t *testing.T) {
	cases := []struct {
		level, format string
		lines         int // of a Debug and a Warn
	}{
		{"debug", "text", 2},
		{"info", "json", 1},
		{"warn", "text", 1},
		{"error", "json", 0},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		log := NewLogger(Config{LogLevel: tc.level, LogFormat: tc.format}, &buf)
		log.Debug("d")
		log.Warn("w")
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if buf.Len() == 0 {
			lines = nil
		}
		if len(lines) != tc.lines {
			t.Errorf("LOG_LEVEL=%s wrote %d lines, want %d:\n%s", tc.level, len(lines), tc.lines, buf.String())
		}
		for _, line := range lines {
			if isJSON := json.Valid([]byte(line)); isJSON != (tc.format == "json") {
				t.Errorf("LOG_FORMAT=%s wrote %q", tc.format, line)
			}
		}
	}
}

// TestConsoleSessionSecret checks CONSOLE_SESSION_SECRET and its _FILE: the
// file's content (without its final newline) is the secret, and each
// problem is one line that never shows the secret.
func TestConsoleSessionSecret(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "secret")
	secret := strings.Repeat("s3cr3t-", 6)
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg := mustLoad(t, map[string]string{"CONSOLE_SESSION_SECRET_FILE": good}); cfg.ConsoleSessionSecret != secret {
		t.Errorf("from the file: %q, want %q", cfg.ConsoleSessionSecret, secret)
	}
	if cfg := mustLoad(t, map[string]string{"CONSOLE_SESSION_SECRET": secret}); cfg.ConsoleSessionSecret != secret {
		t.Errorf("as is: %q", cfg.ConsoleSessionSecret)
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"both":      {map[string]string{"CONSOLE_SESSION_SECRET": secret, "CONSOLE_SESSION_SECRET_FILE": good}, "both set"},
		"missing":   {map[string]string{"CONSOLE_SESSION_SECRET_FILE": filepath.Join(dir, "nope")}, "no such file"},
		"empty":     {map[string]string{"CONSOLE_SESSION_SECRET_FILE": empty}, "the file is empty"},
		"too short": {map[string]string{"CONSOLE_SESSION_SECRET": "short-secret"}, "at least 32 bytes"},
	} {
		got := problems(t, tc.env)
		if len(got) != 1 || !strings.Contains(got[0], tc.want) || strings.Contains(got[0], secret) || strings.Contains(got[0], "short-secret") {
			t.Errorf("%s: %q, want one problem saying %q without the secret", name, got, tc.want)
		}
	}
}

// redisURLRule is what a bad REDIS_URL is told.
const redisURLRule = "must be redis://[user:password@]host[:port][/db] with a port from 1 to 65535 and a database number, or rediss://… (TLS)"

// TestRedisURLsThatWork: the forms go-redis takes are accepted.
func TestRedisURLsThatWork(t *testing.T) {
	for _, u := range []string{"redis://127.0.0.1:6379/0", "redis://127.0.0.1", "redis://:secret@redis.internal:6380/2",
		"rediss://user:secret@cache.example.com:6380", "redis://[::1]:6379/"} {
		if cfg := mustLoad(t, map[string]string{"REDIS_URL": u}); cfg.RedisURL != u {
			t.Errorf("REDIS_URL = %q, want %q", cfg.RedisURL, u)
		}
	}
}

// BUDGET_ALERT_THRESHOLDS set but empty means no alerts, as README says,
// not the default thresholds that an unset variable gets.
func TestBudgetAlertThresholdsEmptyMeansNone(t *testing.T) {
	if got := mustLoad(t, map[string]string{}).BudgetThresholds(); !slices.Equal(got, []int{50, 80, 100}) {
		t.Errorf("unset: thresholds = %v, want [50 80 100]", got)
	}
	for _, v := range []string{"", " "} {
		if got := mustLoad(t, map[string]string{"BUDGET_ALERT_THRESHOLDS": v}).BudgetThresholds(); len(got) != 0 {
			t.Errorf("BUDGET_ALERT_THRESHOLDS=%q: thresholds = %v, want none", v, got)
		}
	}
}
