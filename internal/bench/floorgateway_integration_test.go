//go:build integration

package bench_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/bench"
	"github.com/tidygate/tidygate/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestFloorGatewayMakesEachPartOncePerCall checks that the floor composed
// forwards each call after one round trip and answers it after one durable
// append, and that it forwards nothing when the round trip fails.
func TestFloorGatewayMakesEachPartOncePerCall(t *testing.T) {
	ctx := context.Background()
	mock := bench.NewMock(bench.MockOptions{})
	upstream := httptest.NewServer(mock)
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)
	db, err := pgxpool.New(ctx, pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	appender, err := bench.NewAppender(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer appender.Close()
	srv := httptest.NewServer(bench.NewFloorGateway(target, db, appender.Append))
	defer srv.Close()

	const calls = 3
	for _, stream := range []bool{false, true} {
		for range calls {
			status, _, body := post(t, srv.URL+"/v1/chat/completions", chatBody(stream))
			if status != http.StatusOK || len(body) == 0 {
				t.Fatalf("stream=%v: status %d, body %q", stream, status, body)
			}
		}
	}
	if got := db.Stat().AcquireCount(); got != 2*calls {
		t.Errorf("%d round trips for %d calls", got, 2*calls)
	}
	appends, err := filepath.Glob(filepath.Join(dir, "fsync-probe-*"))
	if err != nil || len(appends) != 1 {
		t.Fatalf("append files %v, %v", appends, err)
	}
	fi, err := os.Stat(appends[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 2*calls*bench.AppendSize {
		t.Errorf("append file holds %d bytes after %d calls, want %d: one append per call", fi.Size(), 2*calls, 2*calls*bench.AppendSize)
	}

	db.Close() // the round trip now fails: nothing is forwarded
	served := mock.Served()
	if status, _, _ := post(t, srv.URL+"/v1/chat/completions", chatBody(false)); status != http.StatusServiceUnavailable {
		t.Errorf("without the database: status %d, want 503", status)
	}
	if mock.Served() != served {
		t.Errorf("without the database the upstream was called")
	}
}
