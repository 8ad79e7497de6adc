// Package redistest gives tests a real Redis.
//
// The server comes from TEST_REDIS_URL when it is set (outside CI, to reuse
// a local server; tests then keep to keys of their own), otherwise from a
// testcontainers-go container started from TEST_REDIS_IMAGE, default the
// locally built localhost/tidygate-redis:7 (scripts/redis-image/build.sh).
// URL shares one container per test binary; Start gives a test a container
// of its own, which it may stop and start again (its URL stays the same).
//
// A package whose tests use URL should terminate the shared container when
// its tests end:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// With CI=true a missing Docker or Redis fails the test instead of skipping
// it, so that integration tests cannot pass by not running.
package redistest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/tidygate/tidygate/internal/freeaddr"
)

// LocalImage is the image scripts/redis-image/build.sh builds from the
// host's redis-server.
const LocalImage = "localhost/tidygate-redis:7"

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Server is a Redis in a container of its own.
type Server struct {
	URL string // redis://127.0.0.1:PORT/0, the same after Stop and Start
	ctr testcontainers.Container
}

// Main runs the tests of a package and then terminates the shared
// container, if one was started. Call it from TestMain; it does not return.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := testcontainers.TerminateContainer(shared.ctr); err != nil {
			fmt.Fprintln(os.Stderr, "redistest:", err)
		}
	}
	os.Exit(code)
}

// URL returns the URL of the shared test Redis, starting its container on
// first use. It skips (or, in CI, fails) the test when no Redis can be had.
func URL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared.URL
}

// Start starts a Redis container for this test alone, removed when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short")
	}
	s, err := start()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { _ = testcontainers.TerminateContainer(s.ctr) })
	return s
}

// Stop stops the server (its data is lost: the image keeps none).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	timeout := 5 * time.Second
	if err := s.ctr.Stop(context.Background(), &timeout); err != nil {
		t.Fatalf("redistest: stop: %v", err)
	}
}

// Start starts a stopped server again, on the same port, and waits until
// it accepts connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.ctr.Start(ctx); err != nil {
		t.Fatalf("redistest: start: %v", err)
	}
}

// Image returns the image containers are started from: TEST_REDIS_IMAGE,
// else LocalImage.
func Image() string {
	if img := os.Getenv("TEST_REDIS_IMAGE"); img != "" {
		return img
	}
	return LocalImage
}

func start() (s *Server, err error) {
	defer func() {
		if r := recover(); r != nil { // testcontainers panics when it finds no Docker host
			s, err = nil, fmt.Errorf("no Docker engine: %v", r)
		}
	}()
	// A fixed host port, so that the URL survives a restart of the
	// container (Docker picks a new ephemeral port on each start).
	addrs, err := freeaddr.Loopback(1)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	img := Image()
	ctr, err := testcontainers.Run(ctx, img,
		testcontainers.WithExposedPorts("6379/tcp"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{network.MustParsePort("6379/tcp"): {
				{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port}}}
		}),
		testcontainers.WithWaitStrategy(wait.ForLog("Ready to accept connections").WithStartupTimeout(time.Minute)),
		testcontainers.WithLabels(labels()),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("start Redis container from %s: %w", img, err)
	}
	return &Server{URL: "redis://" + addrs[0] + "/0", ctr: ctr}, nil
}

func labels() map[string]string {
	l := map[string]string{"org.tidygate.redistest": "true"}
	if run := os.Getenv("TIDYGATE_TEST_RUN"); run != "" {
		l["org.tidygate.test-run"] = run
	}
	return l
}

// unavailable skips the test, or fails it in CI, where a missing Redis
// must not let integration tests pass by not running.
func unavailable(t testing.TB, err error) {
	t.Helper()
	fix := "start Docker (scripts/start-docker.sh) and build " + LocalImage + " (scripts/redis-image/build.sh), " +
		"or set TEST_REDIS_URL; `make test` does this"
	if os.Getenv("CI") != "true" {
		t.Skipf("redistest: no Redis, skipping (%s): %v", fix, err)
	}
	t.Fatalf("redistest: CI=true, so integration tests must run against Redis, but none is available: %v\nFix: %s", err, fix)
}
