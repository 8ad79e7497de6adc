package httpapi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
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
	return newCoreHandlerOf(t, opts, nil, nil)
}

// newCoreHandlerOf is newCoreHandler with models beside the default ones,
// served by providers beside the idle "mock".
func newCoreHandlerOf(t *testing.T, opts httpapi.Options, models []domain.Model, providers map[string]ports.Provider) (http.Handler, *memory.CallLog) {
	t.Helper()
	cat, err := domain.NewCatalogue(append(domain.DefaultModels(), models...))
	if err != nil {
		t.Fatal(err)
	}
	keys, log := memory.NewKeyStore(), memory.NewCallLog()
	keys.Add(goodKey, domain.Caller{KeyID: "key-1", User: "alice", Team: "risk"})
	all := map[string]ports.Provider{"mock": idleProvider{}}
	maps.Copy(all, providers)
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Providers: all,
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

// countingProvider counts Messages requests as Anthropic does, with count.
// It makes no calls.
type countingProvider struct {
	idleProvider
	count func(req domain.NativeRequest) (int, error)
}

var _ ports.TokenCounter = countingProvider{}

func (countingProvider) CountsTokens(d domain.Dialect) bool {
	return d == domain.DialectAnthropicMessages
}

func (p countingProvider) CountTokens(_ context.Context, req domain.NativeRequest) (int, error) {
	return p.count(req)
}

// newCountHandler serves the API over the real gateway, with the model
// "claude" (upstream claude-v1) on counter beside the default models.
func newCountHandler(t *testing.T, counter countingProvider) (http.Handler, *memory.CallLog) {
	t.Helper()
	claude := domain.Model{Name: "claude", Type: domain.ModelChat, Provider: "anth", Upstream: "claude-v1", MaxOutputTokens: 100}
	return newCoreHandlerOf(t, httpapi.Options{}, []domain.Model{claude}, map[string]ports.Provider{"anth": counter})
}

// countTokens posts body to h's count_tokens as Claude Code does.
func countTokens(h http.Handler, body string) *httptest.ResponseRecorder {
	return (&rig{h: h}).do(http.MethodPost, "/v1/messages/count_tokens?beta=true", body, "Authorization", "", "X-Api-Key", goodKey,
		"Anthropic-Version", "2023-06-01", "Anthropic-Beta", "token-counting-2024-11-01")
}

// TestCountTokensThroughTheCore: a model whose provider counts gets the
// body as the client sent it, under the upstream name, with the client's
// Anthropic headers, and its count is the answer, said to be passed
// through and recorded with its reason; any other model's count is the
// estimate, said to be one, and not recorded.
func TestCountTokensThroughTheCore(t *testing.T) {
	var counted []domain.NativeRequest
	h, log := newCountHandler(t, countingProvider{count: func(req domain.NativeRequest) (int, error) {
		counted = append(counted, req)
		return 2095, nil
	}})
	body := `{"model":"claude","messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"A report."}},` +
		`{"type":"text","text":"Summarize it."}]}],"tools":[{"name":"look","input_schema":{"type":"object"}}]}`
	rec := countTokens(h, body)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"input_tokens":2095}`+"\n" || rec.Header().Get("X-Tidygate-Mode") != "pass-through" {
		t.Fatalf("status %d, mode %q: %s", rec.Code, rec.Header().Get("X-Tidygate-Mode"), rec.Body)
	}
	want := domain.NativeRequest{Dialect: domain.DialectAnthropicMessages, Body: []byte(body), Model: "claude-v1",
		Header: map[string][]string{"Anthropic-Version": {"2023-06-01"}, "Anthropic-Beta": {"token-counting-2024-11-01"}}}
	if len(counted) != 1 || !reflect.DeepEqual(counted[0], want) {
		t.Fatalf("the provider counted %+v; want %+v", counted, want)
	}
	recs := log.Records()
	if len(recs) != 1 || recs[0].Endpoint != domain.EndpointCountTokens || recs[0].AuditReason != "unit test" ||
		recs[0].RequestID != rec.Header().Get("X-Request-Id") || recs[0].Usage.PromptTokens != 2095 {
		t.Fatalf("records %+v; want the count's, with its reason", recs)
	}

	rec = countTokens(h, `{"model":"mock-chat","messages":[{"role":"user","content":"Hello, world"}]}`)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"input_tokens":7}`+"\n" || rec.Header().Get("X-Tidygate-Mode") != "estimated" {
		t.Fatalf("status %d, mode %q: %s", rec.Code, rec.Header().Get("X-Tidygate-Mode"), rec.Body)
	}
	if n := len(log.Records()); n != 1 || len(counted) != 1 {
		t.Fatalf("%d records, %d counts; want the one count's only", n, len(counted))
	}
}

// TestCountTokensNeedsAnAuditReason: a count_tokens request without an
// X-Audit-Reason is refused as a call without one is, whether its
// provider would count it or tidygate would estimate it, and no provider
// is asked.
func TestCountTokensNeedsAnAuditReason(t *testing.T) {
	counted := 0
	h, _ := newCountHandler(t, countingProvider{count: func(domain.NativeRequest) (int, error) {
		counted++
		return 2095, nil
	}})
	call := (&rig{h: h}).do(http.MethodPost, "/v1/messages", `{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}`,
		"Authorization", "", "X-Api-Key", goodKey, "Anthropic-Version", "2023-06-01", "X-Audit-Reason", "")
	refusal := anthropicErrorOf(t, call, http.StatusBadRequest, "invalid_request_error")
	for _, model := range []string{"claude", "mock-chat"} {
		rec := (&rig{h: h}).do(http.MethodPost, "/v1/messages/count_tokens", `{"model":"`+model+`","messages":[{"role":"user","content":"Hi"}]}`,
			"Authorization", "", "X-Api-Key", goodKey, "Anthropic-Version", "2023-06-01", "X-Audit-Reason", "")
		if msg := anthropicErrorOf(t, rec, http.StatusBadRequest, "invalid_request_error"); msg != refusal || !strings.Contains(msg, "X-Audit-Reason") {
			t.Errorf("%s: refused with %q; want the call's refusal %q", model, msg, refusal)
		}
	}
	if counted != 0 {
		t.Errorf("the provider counted %d times; want none", counted)
	}
}

// TestCountTokensAnswersTheProvidersFailure: the provider's refusal of the
// request is the client's 400, any other failure a 502, both in
// Anthropic's error shape; neither is an estimate.
func TestCountTokensAnswersTheProvidersFailure(t *testing.T) {
	for name, tc := range map[string]struct {
		err    error
		status int
		typ    string
		says   string
	}{
		"refused": {&domain.Error{Kind: domain.KindInvalid, Message: "anthropic refused the request: messages.0: a document needs a source"},
			http.StatusBadRequest, "invalid_request_error", "a document needs a source"},
		"failed": {&domain.Error{Kind: domain.KindUpstream, Message: "anthropic answered 529"},
			http.StatusBadGateway, "api_error", `provider "anth" failed for model "claude"`},
	} {
		t.Run(name, func(t *testing.T) {
			h, _ := newCountHandler(t, countingProvider{count: func(domain.NativeRequest) (int, error) { return 0, tc.err }})
			rec := countTokens(h, `{"model":"claude","messages":[{"role":"user","content":"Hi"}]}`)
			if msg := anthropicErrorOf(t, rec, tc.status, tc.typ); !strings.Contains(msg, tc.says) {
				t.Errorf("message %q; want it to say %q", msg, tc.says)
			}
		})
	}
}

// TestARefusedCountTokensIsRecordedAsOne: a count_tokens body that does
// not decode is refused, and its refusal recorded under the count's
// endpoint, not the Messages API's.
func TestARefusedCountTokensIsRecordedAsOne(t *testing.T) {
	h, log := newCountHandler(t, countingProvider{count: func(domain.NativeRequest) (int, error) { return 1, nil }})
	anthropicErrorOf(t, countTokens(h, `{"model":"claude","messages":"not a list"}`), http.StatusBadRequest, "invalid_request_error")
	if recs := log.Records(); len(recs) != 1 || recs[0].Endpoint != domain.EndpointCountTokens || recs[0].Outcome != domain.OutcomeRejected {
		t.Errorf("records %+v; want the count's refusal", recs)
	}
}
