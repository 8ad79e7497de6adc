// Package pgtest gives tests a real, empty PostgreSQL database.
//
// The server comes from TEST_DATABASE_URL when it is set (outside CI, to reuse
// a local server), otherwise from one testcontainers-go container per test
// binary, started from TEST_PG_IMAGE. Without TEST_PG_IMAGE the locally built
// image localhost/tidygate-pg:15 (scripts/pg-image/build.sh) is used when the
// Docker engine has it, else postgres:17-alpine, which needs a registry. Each
// call to New creates a fresh database on that server and drops it when the
// test ends.
//
// A package whose tests use pgtest should terminate the shared container when
// its tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Without it the container outlives the test binary (Ryuk is disabled on
// machines without a registry) until `make test` or .ci/run sweeps it.
//
// With CI=true a missing Docker or PostgreSQL fails the test instead of
// skipping it, so that integration tests cannot pass by not running.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// DefaultImage is the PostgreSQL image used when TEST_PG_IMAGE is not set and
// LocalImage is not present.
const DefaultImage = "postgres:17-alpine"

// LocalImage is the image scripts/pg-image/build.sh builds from the host's
// PostgreSQL 15; it is preferred over DefaultImage when the engine has it.
const LocalImage = "localhost/tidygate-pg:15"

var (
	serverOnce sync.Once
	serverDSN  string
	serverErr  error

	containerMu sync.Mutex
	container   testcontainers.Container // the shared container, if one was started
)

// Main runs the tests of a package and then terminates the shared container,
// if one was started. Call it from TestMain; it does not return.
func Main(m *testing.M) {
	code := m.Run()
	if err := Terminate(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
	}
	os.Exit(code)
}

// Terminate stops and removes the shared container, if one was started. Tests
// that call ServerDSN or New afterwards get an error.
func Terminate() error {
	containerMu.Lock()
	defer containerMu.Unlock()
	if container == nil {
		return nil
	}
	err := testcontainers.TerminateContainer(container)
	container = nil
	serverOnce.Do(func() {})
	serverErr = errors.New("pgtest: the shared container was terminated")
	if err != nil {
		return fmt.Errorf("terminate PostgreSQL container: %w", err)
	}
	return nil
}

// ServerDSN returns the DSN of the shared test server's maintenance database,
// starting the container on first use. It skips (or, in CI, fails) the test
// when no server can be had.
func ServerDSN(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	serverOnce.Do(func() { serverDSN, serverErr = startServer() })
	if serverErr != nil {
		unavailable(t, serverErr)
	}
	return serverDSN
}

// New creates an empty database on the test server and returns its DSN. The
// database is dropped when the test ends.
func New(t testing.TB) string {
	t.Helper()
	admin := ServerDSN(t)
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unavailable(t, fmt.Errorf("connect to test server: %w", err))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return WithDatabase(t, admin, name)
}

// WithDatabase returns dsn with its database name replaced.
func WithDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: parse dsn: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Image returns the image the container is started from: TEST_PG_IMAGE, else
// LocalImage when the Docker engine has it, else DefaultImage.
func Image() string {
	if img := os.Getenv("TEST_PG_IMAGE"); img != "" {
		return img
	}
	if localImageExists() {
		return LocalImage
	}
	return DefaultImage
}

func localImageExists() (ok bool) {
	defer func() {
		if recover() != nil { // testcontainers panics when it finds no Docker host
			ok = false
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false
	}
	defer cli.Close()
	_, err = cli.ImageInspect(ctx, LocalImage)
	return err == nil
}

func startServer() (dsn string, err error) {
	if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
		return dsn, nil
	}
	defer func() {
		if r := recover(); r != nil { // testcontainers panics when it finds no Docker host
			dsn, err = "", fmt.Errorf("no Docker engine: %v", r)
		}
	}()
	img := Image()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := tcpostgres.Run(ctx, img,
		tcpostgres.WithDatabase("app"),
		tcpostgres.WithUsername("app"),
		tcpostgres.WithPassword("app"),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithLabels(labels()),
	)
	if err != nil {
		if ctr != nil {
			err = fmt.Errorf("%w%s", err, logTail(ctr))
			_ = testcontainers.TerminateContainer(ctr)
		}
		return "", fmt.Errorf("start PostgreSQL container from %s: %w", img, err)
	}
	containerMu.Lock()
	container = ctr
	containerMu.Unlock()
	// The container lives until Main or Terminate removes it, or else as
	// long as the test binary's caller lets it: without Ryuk it is removed by
	// the sweep in .ci/run and the Makefile.
	return ctr.ConnectionString(ctx, "sslmode=disable")
}

// RunLabel is the container label that carries TIDYGATE_TEST_RUN, so that a
// test run (scripts/with-test-db.sh) can remove exactly the containers it
// leaked without touching those of concurrent runs.
const RunLabel = "org.tidygate.test-run"

func labels() map[string]string {
	l := map[string]string{"org.tidygate.pgtest": "true"}
	if run := os.Getenv("TIDYGATE_TEST_RUN"); run != "" {
		l[RunLabel] = run
	}
	return l
}

// logTail returns the end of a failed container's log, for the error message.
func logTail(ctr testcontainers.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "\ncontainer log (last lines):\n\t" + strings.Join(lines, "\n\t")
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: CI=true, so integration tests must run against PostgreSQL, but none is available: %v\n"+
			"Fix: start Docker (scripts/start-docker.sh) and build the local image (scripts/pg-image/build.sh), "+
			"then run with TEST_PG_IMAGE=%s TESTCONTAINERS_RYUK_DISABLED=true; or set TEST_DATABASE_URL "+
			"to a PostgreSQL server whose user may create databases (`make test` does all this).", err, LocalImage)
	}
	t.Skipf("pgtest: no PostgreSQL, skipping (set TEST_DATABASE_URL, or start Docker and run scripts/pg-image/build.sh; `make test` does this): %v", err)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
