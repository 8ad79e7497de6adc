//go:build integration

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/fx"

	"github.com/tidygate/tidygate/internal/freeaddr"
)

// slowUpstream speaks OpenAI's streaming chat: it sends chunks words, then
// holds the stream open until its request ends.
func slowUpstream(t *testing.T, words int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < words; i++ {
			fmt.Fprintf(w, "data: {\"id\":\"up-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"slow\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word%d \"}}]}\n\n", i)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestShutdownEndsStreamsChargedAndRecorded opens a stream that never ends
// by itself, stops the app (as SIGTERM does), and checks that the stop
// succeeds within SHUTDOWN_TIMEOUT, that the client's stream ended, that the
// call was settled (not left held), and that its trace says it was ended
// by the shutdown.
func TestShutdownEndsStreamsChargedAndRecorded(t *testing.T) {
	up := slowUpstream(t, 3)
	catalogue := filepath.Join(t.TempDir(), "catalogue.yaml")
	if err := os.WriteFile(catalogue, []byte(`models:
  - name: slow-chat
    type: chat
    provider: openai
    price_per_million: {input: "1", output: "2"}
    max_output_tokens: 100
`), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, err := freeaddr.Loopback(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := addrs[0]
	cfg := testConfig(t, map[string]string{"HTTP_ADDR": addr, "CATALOGUE_FILE": catalogue, "SHUTDOWN_TIMEOUT": "4s"})
	ps, problems := loadProviderSettings(map[string]string{"OPENAI_BASE_URL": up.URL + "/v1", "OPENAI_API_KEY": "sk-test"})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := fx.New(appOptions(context.Background(), testConfiguration(t, cfg, ps), logger, true), fx.NopLogger)
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = app.Stop(ctx)
		}
	}()

	waitReady(ctx, t, "http://"+addr+"/readyz")

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"slow-chat","stream":true,"messages":[{"role":"user","content":"tell me a long story"}]}`))
	req.Header.Set("Authorization", "Bearer "+DevKey)
	req.Header.Set("X-Audit-Reason", "shutdown test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	requestID := resp.Header.Get("X-Request-Id")
	events := bufio.NewScanner(resp.Body)
	seen := 0 // the three words; a translated stream sends a role chunk first, a passed-through one does not
	for seen < 3 && events.Scan() {
		if strings.HasPrefix(events.Text(), "data: ") && strings.Contains(events.Text(), `"word`) {
			seen++
		}
	}
	if seen != 3 {
		t.Fatalf("read %d words before the shutdown: %v", seen, events.Err())
	}

	stopErr := make(chan error, 1)
	go func() { stopErr <- app.Stop(ctx) }()
	var rest []string
	for events.Scan() {
		if line := events.Text(); line != "" {
			rest = append(rest, line)
		}
	}
	stopped = true
	if err := <-stopErr; err != nil {
		t.Fatalf("stop failed: %v", err)
	}
	if len(rest) == 0 || !strings.Contains(rest[len(rest)-1], "shutting_down") {
		t.Fatalf("the stream ended with %q, want an error event saying tidygate is shutting down", rest)
	}

	conn, err := pgx.Connect(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var state string
	if err := conn.QueryRow(ctx, `SELECT state FROM tidygate_reservations WHERE id = $1`, requestID).Scan(&state); err != nil || state != "settled" {
		t.Fatalf("reservation %s: state %q (%v), want settled", requestID, state, err)
	}
	var prompt, completion int64
	if err := conn.QueryRow(ctx, `SELECT sum(prompt_tokens), sum(completion_tokens) FROM tidygate_usage WHERE model = 'slow-chat'`).
		Scan(&prompt, &completion); err != nil || prompt == 0 || completion != int64(len("word0 word1 word2 ")) {
		t.Fatalf("usage %d prompt, %d completion tokens (%v); want the prompt and the 18 bytes streamed", prompt, completion, err)
	}
	var why string
	if err := conn.QueryRow(ctx, `SELECT m.value FROM trace_request_metadata m
		JOIN trace_request_metadata id ON id.request_id = m.request_id AND id.key = 'tidygate.request_id' AND id.value = $1
		WHERE m.key = 'tidygate.interrupted'`, requestID).Scan(&why); err != nil || why != "shutdown" {
		t.Fatalf("trace of %s: interrupted %q (%v), want shutdown", requestID, why, err)
	}
}

// waitReady polls url until it answers 200: the gateway's tables are
// migrated and the development key seeded after the app has started.
func waitReady(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	for {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never became ready: %v", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
