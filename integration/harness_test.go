//go:build integration

// Package integration tests the whole service — the real binary, real
// PostgreSQL through testcontainers-go, the official OpenAI client — the way
// an operator runs it.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/freeaddr"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// binary is the tidygate executable built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	if prebuilt := os.Getenv("TIDYGATE_BINARY"); prebuilt != "" {
		binary = prebuilt // a binary built elsewhere, e.g. with coverage
		pgtest.Main(m)
	}
	dir, err := os.MkdirTemp("", "tidygate-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tidygate")
	// The faultpoint tag builds in the fault points the kill -9 tests stop
	// the process at (TIDYGATE_FAULT_POINT); unset, they do nothing.
	build := exec.Command("go", "build", "-tags", "faultpoint", "-o", binary, "../cmd/app")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tidygate:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if err := pgtest.Terminate(); err != nil {
		fmt.Fprintln(os.Stderr, "terminate the test container:", err)
	}
	os.Exit(code)
}

// service is one running tidygate process.
type service struct {
	t       testing.TB
	cmd     *exec.Cmd
	URL     string       // http://127.0.0.1:port
	Admin   string       // http://127.0.0.1:port of ADMIN_ADDR: /metrics, /debug/*
	Key     string       // the API key requests use; the dev key unless set
	ok      atomic.Int64 // chat calls answered 200 through timedCall
	env     []string
	logMu   sync.Mutex
	log     bytes.Buffer
	exited  chan struct{}
	exitErr error
}

// freeAddrs returns n distinct free loopback addresses "127.0.0.1:port".
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs, err := freeaddr.Loopback(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// baseEnv is the environment every test service starts with: the database,
// a fresh journal directory, free ports, the local profile and its dev key.
func baseEnv(t testing.TB, dsn string) []string {
	addrs := freeAddrs(t, 2)
	return envAt(t, dsn, addrs[0], addrs[1])
}

// envAt is baseEnv with the API on httpAddr and the admin address on
// adminAddr, for a test that picks them together with addresses of its own.
func envAt(t testing.TB, dsn, httpAddr, adminAddr string) []string {
	return []string{
		"DATABASE_URL=" + dsn,
		"HTTP_ADDR=" + httpAddr,
		"ADMIN_ADDR=" + adminAddr,
		"MLFLOW_JOURNAL_DIR=" + t.TempDir(),
		"MLFLOW_SCHEMA=create",
		"LOG_FORMAT=json",
		"LOG_LEVEL=info",
		"PATH=" + os.Getenv("PATH"),
	}
}

// start runs `tidygate serve --dev-key` with env and waits until /readyz is 200.
func start(t testing.TB, env []string, args ...string) *service {
	t.Helper()
	s := startNoWait(t, env, args...)
	s.waitReady(60 * time.Second)
	return s
}

func startNoWait(t testing.TB, env []string, args ...string) *service {
	t.Helper()
	return launch(t, binary, env, args...)
}

// launch runs the tidygate executable bin with env and args (`serve
// --dev-key` when none) and does not wait for it to be ready.
func launch(t testing.TB, bin string, env []string, args ...string) *service {
	t.Helper()
	if len(args) == 0 {
		args = []string{"serve", "--dev-key"}
	}
	s := &service{t: t, env: env, exited: make(chan struct{}), Key: DevKey}
	for _, kv := range env {
		if addr, ok := strings.CutPrefix(kv, "HTTP_ADDR="); ok {
			s.URL = "http://" + addr
		}
		if addr, ok := strings.CutPrefix(kv, "ADMIN_ADDR="); ok {
			s.Admin = "http://" + addr
		}
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = env
	s.cmd.Stdout = s.writer()
	s.cmd.Stderr = s.writer()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("tidygate log:\n%s", s.Log())
		}
	})
	return s
}

type logWriter struct{ s *service }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.logMu.Lock()
	defer w.s.logMu.Unlock()
	return w.s.log.Write(p)
}

func (s *service) writer() io.Writer { return logWriter{s} }

// Log returns everything the process wrote so far.
func (s *service) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// waitReady polls /readyz until it answers 200 or the deadline passes.
func (s *service) waitReady(within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("tidygate exited before it was ready: %v\n%s", s.exitErr, s.Log())
		default:
		}
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("tidygate not ready within %s\n%s", within, s.Log())
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *service) Stop(within time.Duration) error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.exitErr
	case <-time.After(within):
		s.Kill()
		return fmt.Errorf("tidygate did not stop within %s", within)
	}
}

// Kill ends the process at once, like kill -9.
func (s *service) Kill() {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// DevKey is the key `serve --dev-key` seeds.
const DevKey = "tg-dev-local-only-0000000000000000"

// reply is a response whose body has been read and closed.
type reply struct {
	StatusCode int
	Header     http.Header
}

// adminGet sends GET path to the admin address (ADMIN_ADDR), without a key.
func (s *service) adminGet(path string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.Admin+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	r, b := s.send(req)
	return r.StatusCode, b
}

// do sends a request with the service's key and an audit reason unless the
// headers say otherwise, and returns the response with its body read.
func (s *service) do(method, path, body string, header ...string) (*reply, []byte) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Key)
	req.Header.Set("X-Audit-Reason", "integration test")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return s.send(req)
}

// chatRequest returns a chat completion request of chatBody with the
// service's key and an audit reason, for a test that sends it itself (to
// see the connection break, or from another goroutine).
func (s *service) chatRequest() *http.Request {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	if err != nil {
		panic(err) // the URL is the service's own
	}
	req.Header.Set("Authorization", "Bearer "+s.Key)
	req.Header.Set("X-Audit-Reason", "integration test")
	req.Header.Set("Content-Type", "application/json")
	return req
}

// send sends req and returns the response with its body read.
func (s *service) send(req *http.Request) (*reply, []byte) {
	s.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return &reply{StatusCode: resp.StatusCode, Header: resp.Header}, b
}
