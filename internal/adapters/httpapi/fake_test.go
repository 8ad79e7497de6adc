package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// goodKey is the one key the fake gateway accepts.
const goodKey = "tg-test-key-0123456789abcdef"

var (
	chatModel  = domain.Model{Name: "mock-chat", Type: domain.ModelChat, Provider: "mock", Upstream: "mock-1", Aliases: []string{"mock"}}
	embedModel = domain.Model{Name: "mock-embed", Type: domain.ModelEmbedding, Provider: "mock"}
)

// fakeGateway answers like the gateway would, and records what it was asked.
// A nil function field means a canned success.
type fakeGateway struct {
	caller  domain.Caller
	authErr error
	chat    func(ctx context.Context, req domain.ChatRequest) (gateway.ChatResult, error)
	stream  func(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error)
	embed   func(ctx context.Context, req domain.EmbedRequest) (gateway.EmbedResult, error)
	usage   func(ctx context.Context, c domain.Caller) (domain.UsageReport, error)
	native  func(ctx context.Context, req domain.ChatRequest, n gateway.Native) (gateway.ChatResult, error)
	stores  bool                   // StoresResponse follows the request, storing by default, and StoreResponse keeps them in saved
	prev    *domain.StoredResponse // what PreviousResponse finds, if anything
	models  []domain.Model         // the catalogue Models lists; nil: chatModel and embedModel

	mu         sync.Mutex
	calls      []gateway.Call
	chats      []domain.ChatRequest
	refused    []gateway.Call
	refusedEps []domain.Endpoint
	saved      []domain.StoredResponse
}

func (g *fakeGateway) Authenticate(_ context.Context, secret, _ string) (domain.Caller, error) {
	if g.authErr != nil {
		return domain.Caller{}, g.authErr
	}
	if secret != goodKey {
		return domain.Caller{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_api_key", Message: "invalid API key"}
	}
	c := g.caller
	if c.KeyID == "" {
		c.KeyID = "key-1"
	}
	return c, nil
}

func (g *fakeGateway) record(call gateway.Call, req *domain.ChatRequest) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, call)
	if req != nil {
		g.chats = append(g.chats, *req)
	}
}

func (g *fakeGateway) lastCall(t *testing.T) gateway.Call {
	t.Helper()
	return lastOf(t, g, &g.calls, "the gateway was not called")
}

// lastOf returns the last item of one of g's lists, or fails t with empty.
func lastOf[T any](t *testing.T, g *fakeGateway, list *[]T, empty string) T {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(*list) == 0 {
		t.Fatal(empty)
	}
	return (*list)[len(*list)-1]
}

func (g *fakeGateway) refusedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.refused)
}

func (g *fakeGateway) callCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}

var okResult = gateway.Result{Model: chatModel, Attempts: 2, ProviderTime: 30 * time.Millisecond, Cost: 1250}

// Refuse keeps the refusal, as the gateway records it.
func (g *fakeGateway) Refuse(_ context.Context, call gateway.Call, ep domain.Endpoint, _ string, why error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refused = append(g.refused, call)
	g.refusedEps = append(g.refusedEps, ep)
	return why
}

// refusedEndpoint returns the endpoint of the last refusal.
func (g *fakeGateway) refusedEndpoint(t *testing.T) domain.Endpoint {
	t.Helper()
	return lastOf(t, g, &g.refusedEps, "nothing was refused")
}

func (g *fakeGateway) Chat(ctx context.Context, call gateway.Call, req domain.ChatRequest) (gateway.ChatResult, error) {
	g.record(call, &req)
	if err := req.Validate(); err != nil { // the gateway validates meaning
		return gateway.ChatResult{}, err
	}
	if g.chat != nil {
		return g.chat(ctx, req)
	}
	return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{
		Content: "Hello there", FinishReason: "stop", Usage: domain.Usage{PromptTokens: 7, CompletionTokens: 3},
		Created: time.Unix(1_700_000_000, 0),
	}}, nil
}

func (g *fakeGateway) ChatStream(ctx context.Context, call gateway.Call, req domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
	g.record(call, &req)
	if err := req.Validate(); err != nil {
		return gateway.ChatResult{}, err
	}
	if g.stream != nil {
		return g.stream(ctx, req, emit)
	}
	return streamWords(emit, "Hello", " there")
}

// ChatNative translates, as the gateway does for a provider that takes no
// request as it is, unless g.native answers.
func (g *fakeGateway) ChatNative(ctx context.Context, call gateway.Call, req domain.ChatRequest, n gateway.Native, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
	if g.native != nil {
		g.record(call, &req)
		return g.native(ctx, req, n)
	}
	if n.Untranslatable != nil { // no model of the fake passes requests through
		g.record(call, &req)
		return gateway.ChatResult{}, n.Untranslatable
	}
	if req.Stream {
		return g.ChatStream(ctx, call, req, emit)
	}
	return g.Chat(ctx, call, req)
}

// streamWords emits one chunk per word and a final chunk with the finish
// reason and usage, as a provider does.
func streamWords(emit func(domain.ChatChunk) error, words ...string) (gateway.ChatResult, error) {
	text := ""
	for _, w := range words {
		if err := emit(domain.ChatChunk{Delta: w}); err != nil {
			return gateway.ChatResult{Result: okResult}, err
		}
		text += w
	}
	u := domain.Usage{PromptTokens: 7, CompletionTokens: len(words)}
	if err := emit(domain.ChatChunk{FinishReason: "stop", Usage: &u}); err != nil {
		return gateway.ChatResult{Result: okResult}, err
	}
	return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{Content: text, FinishReason: "stop", Usage: u}}, nil
}

func (g *fakeGateway) Embed(ctx context.Context, call gateway.Call, req domain.EmbedRequest) (gateway.EmbedResult, error) {
	g.record(call, nil)
	if err := req.Validate(); err != nil {
		return gateway.EmbedResult{}, err
	}
	if g.embed != nil {
		return g.embed(ctx, req)
	}
	res := gateway.EmbedResult{Result: gateway.Result{Model: embedModel, Attempts: 1, Cost: 1},
		Response: domain.EmbedResponse{Usage: domain.Usage{PromptTokens: req.Len() * 2}}}
	for i := range req.Len() {
		res.Response.Vectors = append(res.Response.Vectors, []float32{float32(i), 0.5, -1.25})
	}
	return res, nil
}

func (g *fakeGateway) Models(domain.Caller) []domain.Model {
	if g.models != nil {
		return g.models
	}
	return []domain.Model{chatModel, embedModel}
}

func (g *fakeGateway) Usage(ctx context.Context, c domain.Caller) (domain.UsageReport, error) {
	if g.usage != nil {
		return g.usage(ctx, c)
	}
	return domain.UsageReport{User: c.User, Team: c.Team}, nil
}

// rig is a handler over a fake gateway, with its log captured.
type rig struct {
	gw  *fakeGateway
	h   http.Handler
	log *strings.Builder
	mu  *sync.Mutex
}

// lockedWriter serialises the log writes of concurrent requests.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func newRig(t testing.TB, gw *fakeGateway, opts httpapi.Options) *rig {
	t.Helper()
	r := &rig{gw: gw, log: &strings.Builder{}, mu: &sync.Mutex{}}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{r.mu, r.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r.h = httpapi.NewHandler(gw, opts)
	return r
}

func (r *rig) logged() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// do sends a request with the good key and an audit reason unless the
// header pairs say otherwise (an empty value deletes the header).
func (r *rig) do(method, path, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+goodKey)
	req.Header.Set("X-Audit-Reason", "unit test")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec
}

// apiError is the OpenAI error object as a client decodes it.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// errorOf decodes an OpenAI error response and checks its status.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder, status int) apiError {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == nil || body.Error.Message == "" || body.Error.Type == "" {
		t.Fatalf("not an OpenAI error object (%v): %s", err, rec.Body)
	}
	return *body.Error
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

const helloBody = `{"model":"mock-chat","messages":[{"role":"user","content":"Hi"}]}`

func (g *fakeGateway) CountTokens(_ context.Context, call gateway.Call, req domain.ChatRequest, _ domain.NativeRequest) (gateway.TokenCount, error) {
	g.record(call, &req)
	if req.Model != chatModel.Name && req.Model != "mock" {
		return gateway.TokenCount{}, &domain.Error{Kind: domain.KindNotFound, Code: "model_not_found", Message: "unknown model " + req.Model}
	}
	return gateway.TokenCount{Tokens: req.EstimatePromptTokens()}, nil
}

// The fake stores no responses, as a gateway without a response store.
// StoresResponse stores nothing unless g.stores, then what the request
// asks, storing when it does not say.
func (g *fakeGateway) StoresResponse(s *bool) bool { return g.stores && (s == nil || *s) }

func (g *fakeGateway) StoreResponse(_ context.Context, _ domain.Caller, sr domain.StoredResponse) error {
	if !g.stores {
		return &domain.Error{Kind: domain.KindUnavailable, Message: "no response store"}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.saved = append(g.saved, sr)
	return nil
}

func (g *fakeGateway) PreviousResponse(context.Context, domain.Caller, string) (domain.StoredResponse, error) {
	if g.prev != nil {
		return *g.prev, nil
	}
	return domain.StoredResponse{}, domain.InvalidParam("previous_response_id", "previous_response_id is not supported: this gateway stores no responses")
}

// StoredResponse serves a response the fake stored (g.stores), else 404.
func (g *fakeGateway) StoredResponse(_ context.Context, _ domain.Caller, id string) (domain.StoredResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, sr := range g.saved {
		if sr.ID == id {
			return sr, nil
		}
	}
	return domain.StoredResponse{}, domain.Errorf(domain.KindNotFound, "Response with id '%s' not found.", id)
}

func (g *fakeGateway) StoredResponseInput(ctx context.Context, c domain.Caller, id string) (domain.StoredResponse, error) {
	return g.StoredResponse(ctx, c, id)
}

func (g *fakeGateway) DeleteStoredResponse(_ context.Context, _ domain.Caller, id string) error {
	return domain.Errorf(domain.KindNotFound, "Response with id '%s' not found.", id)
}
