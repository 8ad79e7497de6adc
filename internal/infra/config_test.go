package infra

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, environ map[string]string) (Config, *ConfigError) {
	t.Helper()
	cfg, err := LoadConfig(environ)
	if err == nil {
		return cfg, nil
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("LoadConfig returned %T, want *ConfigError: %v", err, err)
	}
	return cfg, ce
}

func TestDefaults(t *testing.T) {
	cfg, ce := load(t, map[string]string{})
	if ce != nil {
		t.Fatal(ce)
	}
	if cfg.Profile != "local" || cfg.DBPoolMinConns != 1 || cfg.DBPoolMaxConns != 10 || cfg.MLflowPool != "shared" ||
		cfg.MLflowPoolSize != 10 || cfg.MLflowMaxOverflow != 20 || cfg.MLflowPoolTimeout.Duration() != 30*time.Second ||
		cfg.MLflowPoolRecycle.Duration() != 1800*time.Second || !cfg.MLflowPoolPrePing || cfg.MLflowSchema != "create" ||
		cfg.Replicas != 1 || cfg.HTTPAddr != "127.0.0.1:8080" {
		t.Fatalf("defaults = %+v", cfg)
	}
}

func TestProfiles(t *testing.T) {
	home, ce := load(t, map[string]string{"DEPLOY_PROFILE": "home", "DB_CONNECT_TIMEOUT": "3s"})
	if ce != nil {
		t.Fatal(ce)
	}
	if home.DBPoolMinConns != 2 || home.DBMaxConnIdleTime != 30*time.Minute || home.MLflowSchema != "verify" {
		t.Fatalf("home = %+v", home)
	}
	if home.DBConnectTimeout != 3*time.Second {
		t.Fatal("a profile overrode a variable that was set")
	}
	if got := home.ProfileDefaults(); !slices.Contains(got, "DB_POOL_MIN_CONNS=2") || slices.ContainsFunc(got, func(s string) bool {
		return strings.HasPrefix(s, "DB_CONNECT_TIMEOUT=")
	}) {
		t.Fatalf("ProfileDefaults = %v", got)
	}
	aws, ce := load(t, map[string]string{"DEPLOY_PROFILE": "aws"})
	if ce != nil {
		t.Fatal(ce)
	}
	if aws.DBSSLMode != "require" || aws.DBAcquireTimeout != 3*time.Second || aws.MLflowSchema != "verify" {
		t.Fatalf("aws = %+v", aws)
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	_, ce := load(t, map[string]string{
		"DEPLOY_PROFILE":                 "mars",
		"REPLICAS":                       "0",
		"DB_PORT":                        "abc",
		"DB_POOL_MIN_CONNS":              "20",
		"MLFLOW_POOL":                    "both",
		"MLFLOW_SQLALCHEMY_POOL_SIZE":    "0",
		"MLFLOW_SQLALCHEMY_MAX_OVERFLOW": "-1",
		"MLFLOW_SQLALCHEMY_POOL_TIMEOUT": "soon",
		"DB_POOL_ACQUIRE_TIMEOUT":        "5 parsecs",
		"DATABASE_URL":                   "mysql://u:hunter2@h/db",
		"DB_SSLMODE":                     "verify-full",
		"HTTP_ADDR":                      "8080",
		"MOCK_FAILURE_RATE":              "2",
		"LOG_LEVEL":                      "loud",
	})
	if ce == nil {
		t.Fatal("bad configuration accepted")
	}
	want := []string{"DEPLOY_PROFILE", "REPLICAS", "DB_PORT", "DB_POOL_MIN_CONNS", "MLFLOW_POOL", "MLFLOW_SQLALCHEMY_POOL_SIZE",
		"MLFLOW_SQLALCHEMY_MAX_OVERFLOW", "MLFLOW_SQLALCHEMY_POOL_TIMEOUT", "DB_POOL_ACQUIRE_TIMEOUT", "DATABASE_URL",
		"DB_SSLROOTCERT", "HTTP_ADDR", "MOCK_FAILURE_RATE", "LOG_LEVEL"}
	text := ce.Error()
	for _, v := range want {
		if !strings.Contains(text, v) {
			t.Errorf("no problem names %s:\n%s", v, text)
		}
	}
	if strings.Contains(text, "hunter2") {
		t.Fatalf("a problem shows the password:\n%s", text)
	}
	for _, line := range ce.Problems {
		if strings.Contains(line, "\n") || line == "" {
			t.Errorf("problem %q is not one line", line)
		}
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "1.5": 1500 * time.Millisecond, "2m": 2 * time.Minute} {
		var s Seconds
		if err := s.UnmarshalText([]byte(in)); err != nil || s.Duration() != want {
			t.Errorf("%q → %v, %v; want %v", in, s.Duration(), err, want)
		}
	}
	for _, bad := range []string{"-1", "soon", ""} {
		var s Seconds
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRedacted(t *testing.T) {
	cfg, ce := load(t, map[string]string{
		"DB_PASSWORD":         "s3cret-db",
		"DATABASE_URL":        "postgres://app:s3cret-url@db:5432/app?sslmode=disable",
		"MLFLOW_TRACKING_URI": "postgresql://ml:s3cret-ml@db/mlflow",
		"OPENAI_API_KEY":      "sk-s3cret-openai",
		"ANTHROPIC_API_KEY":   "sk-ant-s3cret",
	})
	if ce != nil {
		t.Fatal(ce)
	}
	view := cfg.Redacted()
	all := ""
	for k, v := range view {
		all += k + "=" + v + "\n"
	}
	if strings.Contains(all, "s3cret") {
		t.Fatalf("a secret leaked:\n%s", all)
	}
	if view["DB_PASSWORD"] != "***" || !strings.Contains(view["DATABASE_URL"], "app:xxxxx@db:5432") || view["REPLICAS"] != "1" {
		t.Fatalf("redacted view = %v", view)
	}
}

func TestSSLRootCertMustExist(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ce := load(t, map[string]string{"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": ca}); ce != nil {
		t.Fatal(ce)
	}
	if _, ce := load(t, map[string]string{"DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": ca + ".missing"}); ce == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
