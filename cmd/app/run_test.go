package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
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

// TestStartupErrorsOneLinePerProblem starts serve with a catalogue whose
// models have several faults each: every fault is reported on its own
// line, naming the file and the model, without fx's chain of wrappers.
func TestStartupErrorsOneLinePerProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	yaml := "models:\n" +
		"  - {name: a, type: image, provider: nimbus, colour: red, max_output_tokens: lots}\n" +
		"  - {name: b, type: chat, provider: mock, free: true, fallbacks: [nope]}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// The call log's journal may open before the catalogue is read: keep
	// it out of the source tree.
	env := []string{"CATALOGUE_FILE=" + path, "LOG_LEVEL=error", "MLFLOW_JOURNAL_DIR=" + filepath.Join(t.TempDir(), "journal")}
	err := run(context.Background(), []string{"serve"}, env, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("serve started with a broken catalogue")
	}
	var out bytes.Buffer
	if code := report(&out, err); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{`models[0] "a": unknown field "colour"`, `models[0] "a": max_output_tokens: "lots" is not a whole number`,
		`models[0] "a": type: "image" must be chat or embedding`, `models[0] "a": provider: "nimbus" must be`,
		`models[1] "b": max_output_tokens: must be positive`, `models[1] "b": fallbacks: fallback "nope" is not in the catalogue`}
	if len(lines) != len(want) {
		t.Errorf("%d lines, want one per problem (%d):\n%s", len(lines), len(want), out.String())
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("no line says %q:\n%s", w, out.String())
		}
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "tidygate: "+path+": models[") || strings.Contains(l, "could not build") || strings.Contains(l, "function") || len(l) > 200 {
			t.Errorf("line %q is not one problem of the catalogue", l)
		}
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

// TestUsageNamesEveryFlag keeps the usage text whole: every flag a command
// defines (as its -h lists them) is in it.
func TestUsageNamesEveryFlag(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^  --([a-z-]+)`)
	for _, c := range commands {
		args := append(strings.Fields(c.path), "-h")
		var stdout bytes.Buffer
		if err := run(context.Background(), args, nil, &stdout, io.Discard); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, n := range flagLine.FindAllStringSubmatch(stdout.String(), -1) {
			if !strings.Contains(usageText, "--"+n[1]) {
				t.Errorf("%v has --%s, which the usage text does not name", args, n[1])
			}
		}
	}
}
