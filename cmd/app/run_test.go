package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestStartupErrorsOneLinePerProblem starts serve with a bad setting and a
// catalogue whose models have several faults each, the database on a
// closed port and required at start: every problem, the setting's and each
// of the catalogue's (naming the file and the model), is its own line, all
// at once, exit status 2, and nothing was opened (no database error, no
// journal). With the setting fixed, the catalogue's problems alone are
// reported the same way.
func TestStartupErrorsOneLinePerProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	yaml := "models:\n" +
		"  - {name: a, type: image, provider: nimbus, colour: red, max_output_tokens: lots}\n" +
		"  - {name: b, type: chat, provider: mock, free: true, fallbacks: [nope]}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(t.TempDir(), "journal")
	env := []string{"CATALOGUE_FILE=" + path, "LOG_LEVEL=error", "MLFLOW_JOURNAL_DIR=" + journal,
		"DB_HOST=127.0.0.1", "DB_PORT=1", "DB_CONNECT_TIMEOUT=1s", "DB_REQUIRE_AT_START=true"}
	catalogue := []string{`models[0] "a": unknown field "colour"`, `models[0] "a": max_output_tokens: "lots" is not a whole number`,
		`models[0] "a": type: "image" must be chat or embedding`, `models[0] "a": provider: "nimbus" must be`,
		`models[1] "b": max_output_tokens: must be positive`, `models[1] "b": fallbacks: fallback "nope" is not in the catalogue`}
	for _, tc := range []struct {
		name  string
		extra []string
		want  []string
	}{
		{"with a bad setting", []string{"REPLICAS=0"}, append([]string{"config: REPLICAS=0: "}, catalogue...)},
		{"alone", nil, catalogue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			err := run(ctx, []string{"serve"}, append(slices.Clip(env), tc.extra...), io.Discard, &stderr)
			if err == nil {
				t.Fatal("serve started with a broken configuration")
			}
			if code := report(&stderr, err); code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != len(tc.want)+1 {
				t.Errorf("%d lines, want one per problem (%d) and the count:\n%s", len(lines), len(tc.want), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("no line says %q:\n%s", w, stderr.String())
				}
			}
			for _, l := range lines[:len(lines)-1] {
				if !strings.HasPrefix(l, "config: "+path+": models[") && !strings.HasPrefix(l, "config: REPLICAS=") || len(l) > 200 {
					t.Errorf("line %q is not one problem of the configuration", l)
				}
			}
			if last := lines[len(lines)-1]; last != fmt.Sprintf("tidygate: %d configuration problem(s); nothing was started", len(tc.want)) {
				t.Errorf("last line %q", last)
			}
			if _, err := os.Stat(journal); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the call log's journal was opened (%v)", err)
			}
		})
	}
}

// TestCredentialsAreCheckedAtStart: before anything starts, every named
// instance's key is checked, whether or not a model uses the instance, and
// the settings of each implicit instance a model uses; each problem is one
// line naming the file, the entry and the key, all at once, beside the
// catalogue's other problems; exit status 2, the database never reached.
func TestCredentialsAreCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "catalogue.yaml")
	if err := os.WriteFile(path, []byte(`providers:
  - {name: p1, type: openai, api_key_env: NO_SUCH_VAR_XYZ}
  - {name: p2, type: anthropic, api_key_file: `+filepath.Join(dir, "no-such-key")+`}
models:
  - {name: m, type: chat, provider: mock, max_output_tokens: 10, free: true}
  - {name: n, type: chat, provider: anthropic, max_output_tokens: 10, free: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"CATALOGUE_FILE=" + path, "MLFLOW_JOURNAL_DIR=" + filepath.Join(dir, "journal"),
		"DATABASE_URL=postgres://tidygate@127.0.0.1:1/none", "DB_CONNECT_TIMEOUT=1s", "DB_REQUIRE_AT_START=true"}
	code, _, stderr := cli(t, env, "serve")
	if code != 2 {
		t.Errorf("exit status %d, want 2:\n%s", code, stderr)
	}
	want := []string{
		"config: " + path + `: providers[0] "p1": api_key_env: the variable NO_SUCH_VAR_XYZ is not set (line 2)`,
		"config: " + path + `: providers[1] "p2": api_key_file: stat ` + filepath.Join(dir, "no-such-key") + ": no such file or directory",
		"config: " + path + `: models[1] "n": provider: "anthropic": set ANTHROPIC_API_KEY`,
		"tidygate: 3 configuration problem(s); nothing was started",
	}
	if got := strings.Split(strings.TrimSpace(stderr), "\n"); !slices.Equal(got, want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
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

// TestConfigCommandChecksTheCatalogue: config checks what serve checks,
// the catalogue and the credentials it names included, and prints nothing
// but the problems when there are any.
func TestConfigCommandChecksTheCatalogue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	if err := os.WriteFile(path, []byte("providers:\n  - {name: p1, type: openai, api_key_env: NO_SUCH_VAR_XYZ}\n"+
		"models:\n  - {name: a, type: image, provider: mock, max_output_tokens: 10, free: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, []string{"CATALOGUE_FILE=" + path, "REPLICAS=0"}, "config")
	if code != 2 || stdout != "" {
		t.Errorf("exit status %d, stdout %q; want 2 and nothing", code, stdout)
	}
	for _, w := range []string{"config: REPLICAS=0: ", "config: " + path + `: providers[0] "p1": api_key_env: the variable NO_SUCH_VAR_XYZ is not set`,
		"config: " + path + `: models[0] "a": type: "image" must be chat or embedding`, "tidygate: 3 configuration problem(s)"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("no line says %q:\n%s", w, stderr)
		}
	}
	if err := os.WriteFile(path, []byte("providers:\n  - {name: p1, type: openai, api_key_env: NO_SUCH_VAR_XYZ}\n"+
		"models:\n  - {name: a, type: chat, provider: mock, max_output_tokens: 10, free: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = cli(t, []string{"CATALOGUE_FILE=" + path, "NO_SUCH_VAR_XYZ=sk-1"}, "config")
	if code != 0 || !strings.Contains(stdout, "CATALOGUE_FILE="+path+"\n") {
		t.Errorf("exit status %d, stdout %q, stderr %q; want 0 and the configuration", code, stdout, stderr)
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
	if err := fx.ValidateApp(appOptions(context.Background(), testConfiguration(t, cfg, testProviderSettings(t)), logger, false)); err != nil {
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
			if !strings.Contains(groupUsage(""), "--"+n[1]) {
				t.Errorf("%v has --%s, which the usage text does not name", args, n[1])
			}
		}
	}
}
