package httpapi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// idleProvider fails every call: the tests that use it expect none.
type idleProvider struct{}

var errCalled = errors.New("the provider was called")

func (idleProvider) Chat(context.Context, domain.ChatRequest) (domain.ChatResponse, error) {
	return domain.ChatResponse{}, errCalled
}

func (idleProvider) ChatStream(context.Context, domain.ChatRequest, func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	return domain.ChatResponse{}, errCalled
}

func (idleProvider) Embed(context.Context, domain.EmbedRequest) (domain.EmbedResponse, error) {
	return domain.EmbedResponse{}, errCalled
}

// newCoreHandler serves the API over the real gateway, the in-memory key
// store (holding goodKey for alice) and the in-memory call log it returns.
func newCoreHandler(t *testing.T, opts httpapi.Options) (http.Handler, *memory.CallLog) {
	t.Helper()
	cat, err := domain.NewCatalogue(domain.DefaultModels())
	if err != nil {
		t.Fatal(err)
	}
	keys, log := memory.NewKeyStore(), memory.NewCallLog()
	keys.Add(goodKey, domain.Caller{KeyID: "key-1", User: "alice", Team: "risk"})
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Providers: map[string]ports.Provider{"mock": idleProvider{}},
		Keys: keys, Ledger: memory.NewLedger(), CallLog: log}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return httpapi.NewHandler(svc, opts), log
}

// TestRefusalsAreRecordedThroughTheCore serves the API over the real gateway
// and the in-memory call log: every refused request that carried a valid
// key has a record, whether the edge refused it (undecodable) or the
// gateway did (its meaning), and an unauthenticated one has none.
func TestRefusalsAreRecordedThroughTheCore(t *testing.T) {
	h, log := newCoreHandler(t, httpapi.Options{})
	cases := []struct {
		name, path, body, key string
		status                int
		param                 string
		recorded              bool
	}{
		{"temperature 7", "/v1/chat/completions", `{"model":"mock-chat","temperature":7,"messages":[{"role":"user","content":"hi"}]}`, goodKey, 400, "temperature", true},
		{"no messages", "/v1/chat/completions", `{"model":"mock-chat","messages":[]}`, goodKey, 400, "messages", true},
		{"stream with a bad role", "/v1/chat/completions", `{"model":"mock-chat","stream":true,"messages":[{"role":"wizard","content":"hi"}]}`, goodKey, 400, "messages[0].role", true},
		{"malformed JSON", "/v1/chat/completions", `{"model":"mock-chat",`, goodKey, 400, "", true},
		{"wrong type", "/v1/chat/completions", `{"model":"mock-chat","temperature":"hot","messages":[]}`, goodKey, 400, "temperature", true},
		{"responses: a stored response", "/v1/responses", `{"model":"mock-chat","input":"hi","previous_response_id":"resp_1"}`, goodKey, 400, "previous_response_id", true},
		{"responses: a hosted tool", "/v1/responses", `{"model":"mock-chat","input":"hi","tools":[{"type":"web_search"}]}`, goodKey, 400, "tools[0].type", true},
		{"empty embedding input", "/v1/embeddings", `{"model":"mock-embed","input":[]}`, goodKey, 400, "input", true},
		{"unknown key", "/v1/chat/completions", `{"model":"mock-chat","temperature":7,"messages":[]}`, "tg-unknown-key-0000000000000", 401, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(log.Records())
			req := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+tc.key)
			req.Header.Set("X-Audit-Reason", "refusal test")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			recs := log.Records()[before:]
			if !tc.recorded {
				if len(recs) != 0 {
					t.Fatalf("an unauthenticated request was recorded: %+v", recs)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1", len(recs))
			}
			r := recs[0]
			if r.Outcome != domain.OutcomeRejected || r.ErrorKind != domain.KindInvalid || r.RequestID != rec.Header().Get("X-Request-Id") ||
				r.User != "alice" || r.AuditReason != "refusal test" || !strings.Contains(r.ErrorMessage, tc.param) {
				t.Fatalf("record %+v", r)
			}
			if tc.path == "/v1/embeddings" && r.Endpoint != domain.EndpointEmbeddings {
				t.Fatalf("record endpoint %q", r.Endpoint)
			}
		})
	}
}

// refusalCounter counts unauthenticated refusals by code, as the
// Prometheus counter behind it in cmd/app does.
type refusalCounter struct {
	mu     sync.Mutex
	byCode map[string]int
}

func (c *refusalCounter) CountUnauthenticated(code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byCode == nil {
		c.byCode = map[string]int{}
	}
	c.byCode[code]++
}

func (c *refusalCounter) count(code string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byCode[code]
}

// TestUnauthenticatedRefusalsAreCountedNotRecorded serves the API over the
// real gateway and the in-memory call log: a request with a bad or missing
// key is counted under its code and leaves no call record, while a good key
// is not counted.
func TestUnauthenticatedRefusalsAreCountedNotRecorded(t *testing.T) {
	counter := &refusalCounter{}
	h, log := newCoreHandler(t, httpapi.Options{Unauthenticated: counter})
	body := `{"model":"mock-chat","messages":[{"role":"user","content":"hi"}]}`
	cases := []struct {
		name, auth, code string
		status           int
	}{
		{"unknown key", "Bearer tg-unknown-key-0000000000000", "invalid_api_key", 401},
		{"malformed key", "Bearer nonsense", "invalid_api_key", 401},
		{"missing key", "", "missing_api_key", 401},
		{"good key, bad request", "Bearer " + goodKey, "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, beforeInvalid, beforeMissing := len(log.Records()), counter.count("invalid_api_key"), counter.count("missing_api_key")
			req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(strings.Replace(body, `"messages"`, `"temperature":7,"messages"`, 1)))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("X-Audit-Reason", "counter test")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			grown := counter.count("invalid_api_key") - beforeInvalid + counter.count("missing_api_key") - beforeMissing
			records := len(log.Records()) - before
			if tc.code == "" {
				if grown != 0 || records != 1 {
					t.Fatalf("a keyed refusal: %d counted, %d records; want 0 and 1", grown, records)
				}
				return
			}
			if grown != 1 || counter.count(tc.code) == 0 {
				t.Fatalf("counted %v, want one more %q", counter.byCode, tc.code)
			}
			if records != 0 {
				t.Fatalf("an unauthenticated request left %d call records", records)
			}
		})
	}
}

// answeringProvider answers every chat call with a short text.
type answeringProvider struct{ idleProvider }

func (answeringProvider) Chat(_ context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	return domain.ChatResponse{Model: req.Model, Content: "hi", FinishReason: domain.FinishStop,
		Usage: domain.Usage{PromptTokens: 5, CompletionTokens: 1}}, nil
}

// Answers carry the caller's rate limits in its dialect's headers, the
// refusal too (with Retry-After), and a key without limits gets none.
func TestRateLimitHeadersInEachDialect(t *testing.T) {
	cat, err := domain.NewCatalogue(domain.DefaultModels())
	if err != nil {
		t.Fatal(err)
	}
	const (
		openaiKey    = "tg-test-key-openai-00000000000"
		anthropicKey = "tg-test-key-anthropic-0000000"
	)
	keys := memory.NewKeyStore()
	keys.Add(openaiKey, domain.Caller{KeyID: "k-openai", User: "alice", RPM: 2, TPM: 100_000})
	keys.Add(anthropicKey, domain.Caller{KeyID: "k-anthropic", User: "alice", RPM: 2, TPM: 100_000})
	keys.Add(goodKey, domain.Caller{KeyID: "k-free", User: "alice"})
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat,
		Providers: map[string]ports.Provider{"mock": answeringProvider{}},
		Keys:      keys, Ledger: memory.NewLedger(), CallLog: memory.NewCallLog()}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := httpapi.NewHandler(svc, httpapi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	post := func(path, key, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Audit-Reason", "rate limit headers")
		req.Header.Set("anthropic-version", "2023-06-01")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	chat := `{"model":"mock-chat","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}`
	for i, want := range []struct {
		status    int
		remaining string
	}{{200, "1"}, {200, "0"}, {429, "0"}} {
		rec := post("/v1/chat/completions", openaiKey, chat)
		hd := rec.Header()
		if rec.Code != want.status || hd.Get("x-ratelimit-limit-requests") != "2" || hd.Get("x-ratelimit-remaining-requests") != want.remaining {
			t.Fatalf("OpenAI call %d: %d, limit %q remaining %q; want %d, 2, %s: %s", i+1, rec.Code,
				hd.Get("x-ratelimit-limit-requests"), hd.Get("x-ratelimit-remaining-requests"), want.status, want.remaining, rec.Body)
		}
		if hd.Get("x-ratelimit-limit-tokens") != "100000" || hd.Get("x-ratelimit-remaining-tokens") == "" {
			t.Fatalf("OpenAI call %d: tokens limit %q remaining %q", i+1, hd.Get("x-ratelimit-limit-tokens"), hd.Get("x-ratelimit-remaining-tokens"))
		}
		reset, err := time.ParseDuration(hd.Get("x-ratelimit-reset-requests"))
		if err != nil || reset < 0 || reset > time.Minute {
			t.Fatalf("OpenAI call %d: x-ratelimit-reset-requests %q, want a duration within the minute", i+1, hd.Get("x-ratelimit-reset-requests"))
		}
		if want.status == 429 && hd.Get("Retry-After") == "" {
			t.Fatalf("a 429 without Retry-After")
		}
	}

	msg := `{"model":"mock-chat","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}`
	rec := post("/v1/messages", anthropicKey, msg)
	hd := rec.Header()
	if rec.Code != 200 || hd.Get("anthropic-ratelimit-requests-limit") != "2" || hd.Get("anthropic-ratelimit-requests-remaining") != "1" ||
		hd.Get("anthropic-ratelimit-tokens-limit") != "100000" || hd.Get("x-ratelimit-limit-requests") != "" {
		t.Fatalf("Anthropic call: %d, headers %v: %s", rec.Code, hd, rec.Body)
	}
	for _, name := range []string{"anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset"} {
		if at, err := time.Parse(time.RFC3339, hd.Get(name)); err != nil || time.Until(at) > time.Minute {
			t.Fatalf("%s %q, want an RFC 3339 time within the minute", name, hd.Get(name))
		}
	}

	rec = post("/v1/chat/completions", goodKey, chat)
	for name := range rec.Header() {
		if strings.Contains(strings.ToLower(name), "ratelimit") {
			t.Fatalf("a key without limits got %s: %v", name, rec.Header())
		}
	}
}
