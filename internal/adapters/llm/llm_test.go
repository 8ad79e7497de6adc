package llm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
)

func TestHTTPClassification(t *testing.T) {
	c := llm.NewClassifier("acme", "sk-secret-123")
	cases := []struct {
		status int
		kind   domain.Kind
		quotes bool // the message quotes the provider's text
	}{
		{400, domain.KindInvalid, true}, {404, domain.KindInvalid, true}, {413, domain.KindInvalid, true},
		{422, domain.KindInvalid, true}, {429, domain.KindRateLimited, true},
		{401, domain.KindUpstream, false}, {403, domain.KindUpstream, false},
		{408, domain.KindUpstream, true}, {500, domain.KindUpstream, true}, {529, domain.KindUpstream, true},
	}
	for _, tc := range cases {
		err := c.HTTP(tc.status, http.Header{"Retry-After": {"3"}}, "bad  thing\nwith key sk-secret-123")
		if err.Kind != tc.kind || !errors.Is(err, tc.kind) {
			t.Errorf("HTTP %d: kind %s; want %s", tc.status, err.Kind, tc.kind)
		}
		if strings.Contains(err.Error(), "sk-secret-123") {
			t.Errorf("HTTP %d: %q contains the secret", tc.status, err.Error())
		}
		if !strings.HasPrefix(err.Message, "acme ") || strings.Contains(err.Message, "bad thing") != tc.quotes {
			t.Errorf("HTTP %d: message %q; want it to name acme and quote the provider: %v", tc.status, err.Message, tc.quotes)
		}
	}
	if got := c.HTTP(429, http.Header{"Retry-After": {"3"}}, "").RetryAfter; got != 3*time.Second {
		t.Errorf("RetryAfter = %s; want 3s", got)
	}
	if msg := c.HTTP(500, nil, strings.Repeat("é", 1000)).Message; len(msg) > 400 || !strings.HasSuffix(msg, "…") {
		t.Errorf("a long provider message was not cut: %d bytes", len(msg))
	}
	if msg := c.HTTP(502, nil, "").Message; !strings.Contains(msg, "Bad Gateway") {
		t.Errorf("an empty provider message gave %q; want the status text", msg)
	}
}

func TestFailureClassification(t *testing.T) {
	c := llm.NewClassifier("acme", "")
	for _, err := range []error{
		context.DeadlineExceeded,
		fmt.Errorf("wrapped: %w", context.Canceled),
		&url.Error{Op: "Post", URL: "http://x", Err: errors.New("connection refused")},
		errors.New("invalid character 'x' looking for beginning of value"),
	} {
		got := c.Failure(err)
		if got.Kind != domain.KindUpstream || !errors.Is(got, err) || !strings.Contains(got.Message, "acme") {
			t.Errorf("Failure(%v) = %v (kind %s); want an upstream failure naming acme and wrapping the cause", err, got, got.Kind)
		}
	}
	if msg := c.Failure(errors.New("garbage")).Message; !strings.Contains(msg, "could not read") {
		t.Errorf("a decoding error gave %q; want a malformed-response message", msg)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := map[string]struct {
		h    http.Header
		want time.Duration
	}{
		"seconds":      {http.Header{"Retry-After": {"12"}}, 12 * time.Second},
		"fraction":     {http.Header{"Retry-After": {"0.5"}}, 500 * time.Millisecond},
		"date":         {http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		"past date":    {http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		"milliseconds": {http.Header{"Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		"garbage":      {http.Header{"Retry-After": {"soon"}}, 0},
		"negative":     {http.Header{"Retry-After": {"-5"}}, 0},
		"absurd":       {http.Header{"Retry-After": {"1e300"}}, 0},
		"none":         {nil, 0},
	}
	for name, tc := range cases {
		if got := llm.RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("%s: RetryAfter = %s; want %s", name, got, tc.want)
		}
	}
}

func TestFinishReason(t *testing.T) {
	for in, want := range map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
		"guardrail_intervened": "content_filter", "refusal": "content_filter", "something_new": "something_new",
	} {
		if got := llm.FinishReason(in); got != want {
			t.Errorf("FinishReason(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestEstimateUsageStaysWithinTheReservation(t *testing.T) {
	req := domain.ChatRequest{Messages: []domain.Message{
		{Role: domain.RoleUser, Content: ""}, {Role: domain.RoleUser, Content: "a", Name: "n"},
		{Role: domain.RoleUser, Content: strings.Repeat("x", 1001)},
	}}
	got := llm.EstimateUsage(req, "four")
	if bound := domain.WorstCaseChat(req, 1); got.PromptTokens > bound.PromptTokens || got.CompletionTokens != 1 {
		t.Errorf("EstimateUsage = %+v; want prompt ≤ %d and one completion token", got, bound.PromptTokens)
	}
}

// TestDefaultClientKeepsConnectionsUnderConcurrency sends rounds of 16
// concurrent calls through the client adapters get by default and counts
// the connections the server saw opened: the client must keep them alive
// between rounds (Go's default transport keeps only 2 idle per host, and
// would open new ones for most calls of every round).
func TestDefaultClientKeepsConnectionsUnderConcurrency(t *testing.T) {
	var opened atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "{}")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	ep, err := llm.Endpoint{BaseURL: srv.URL}.Resolve("test", "")
	if err != nil {
		t.Fatal(err)
	}
	const concurrent, rounds = 16, 5
	for range rounds {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				resp, err := ep.HTTPClient.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			})
		}
		for range concurrent { // every call holds its connection until all have one
			release <- struct{}{}
		}
		wg.Wait()
	}
	// The transport puts a connection back on its idle list a moment after
	// its body is closed, so a call of the next round may occasionally open
	// one more; Go's default of 2 idle connections per host opens about 70.
	const most = concurrent + concurrent/2
	if n := opened.Load(); n > most {
		t.Errorf("%d rounds of %d concurrent calls opened %d connections; want at most %d", rounds, concurrent, n, most)
	}
}

func TestTextOnlyRefusesWhatItCannotTranslateByName(t *testing.T) {
	c := llm.NewClassifier("bedrock", "")
	text := domain.ChatRequest{Messages: []domain.Message{{Role: domain.RoleUser, Content: "hi"}}}
	if err := c.TextOnly(text); err != nil {
		t.Fatalf("TextOnly(text) = %v; want nil", err)
	}
	tools := text
	tools.Tools = []domain.Tool{{Name: "f"}}
	err := c.TextOnly(tools)
	if domain.KindOf(err) != domain.KindInvalid || !strings.Contains(err.Error(), "tools") || !strings.Contains(err.Error(), "bedrock") {
		t.Fatalf("TextOnly(tools) = %v; want an invalid error naming tools and bedrock", err)
	}
}
