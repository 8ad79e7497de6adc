package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/fx"

	"github.com/tidygate/tidygate/internal/infra"
)

func TestBadConfigurationIsReportedWhole(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve"},
		[]string{"MLFLOW_POOL=both", "REPLICAS=0", "DB_PASSWORD=hunter2", "DB_PORT=x"}, io.Discard, &stderr)
	var usage usageError
	if !errors.As(err, &usage) {
		t.Fatalf("err = %v, want a usage error (exit 2)", err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per problem (3), got:\n%s", stderr.String())
	}
	for _, want := range []string{"MLFLOW_POOL", "REPLICAS", "DB_PORT"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("no line names %s:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "hunter2") {
		t.Fatal("the password was printed")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"keys"}, {"serve", "--no-such-flag"}} {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
	if err := run(context.Background(), []string{"serve", "--dev-key"}, []string{"DEPLOY_PROFILE=aws"}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "DEPLOY_PROFILE=local") {
		t.Fatalf("the dev key outside the local profile: %v", err)
	}
}

func TestConfigCommandRedacts(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config"}, []string{"OPENAI_API_KEY=sk-secret", "REPLICAS=3"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "sk-secret") || !strings.Contains(out.String(), "REPLICAS=3\n") {
		t.Fatalf("config output:\n%s", out.String())
	}
}

// TestGraphIsComplete checks, without running any constructor, that the fx
// graph has every dependency it needs.
func TestGraphIsComplete(t *testing.T) {
	cfg, err := infra.LoadConfig(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := fx.ValidateApp(appOptions(context.Background(), cfg, testProviderSettings(t), logger, false)); err != nil {
		t.Fatal(err)
	}
}

func TestHealthcheck(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, `{"status":"ok"}`)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer up.Close()
	addr := strings.TrimPrefix(up.URL, "http://")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck"}, []string{"HTTP_ADDR=" + addr}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "ok") {
		t.Fatalf("healthy: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"healthcheck", "--ready"}, []string{"HTTP_ADDR=" + addr}, io.Discard, io.Discard); err == nil {
		t.Fatal("an unready service passed --ready")
	}
	up.Close()
	if err := run(context.Background(), []string{"healthcheck"}, []string{"HTTP_ADDR=" + addr}, io.Discard, io.Discard); err == nil {
		t.Fatal("a stopped service passed")
	}
}
