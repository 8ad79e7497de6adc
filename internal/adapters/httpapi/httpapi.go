// Package httpapi is tidygate's inbound adapter: an OpenAI-compatible HTTP API
// (chat completions with and without streaming, embeddings, models) plus the
// caller's own usage, served by a chi router in front of the gateway.
//
// It owns the OpenAI wire format and converts it explicitly to and from the
// domain types, authenticates API keys, and holds the one table that maps
// domain error kinds to HTTP statuses and OpenAI error objects (problemOf).
// Every response, errors included, carries X-Request-Id (under
// /v1/messages also as Anthropic's request-id) and X-Tidygate-Overhead-Ms,
// the time tidygate itself spent on the request.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/httpin"
)

// Gateway is what the HTTP API needs from the application service;
// *gateway.Service provides it.
type Gateway interface {
	// Authenticate returns the caller behind an API key secret or a token,
	// presented from the client address from; an address that failed too
	// often is refused (KindRateLimited).
	Authenticate(ctx context.Context, secret, from string) (domain.Caller, error)
	// Chat runs a chat completion.
	Chat(ctx context.Context, call gateway.Call, req domain.ChatRequest) (gateway.ChatResult, error)
	// ChatStream runs a chat completion, handing each chunk to emit as it arrives.
	ChatStream(ctx context.Context, call gateway.Call, req domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error)
	// ChatNative runs a chat call whose request is also at hand as the
	// client sent it: passed through to a provider that takes its dialect,
	// translated for any other; a stream's events go to n.Emit or emit.
	ChatNative(ctx context.Context, call gateway.Call, req domain.ChatRequest, n gateway.Native, emit func(domain.ChatChunk) error) (gateway.ChatResult, error)
	// Refuse records a request the edge refused before it could become a
	// call (its body could not be decoded) and returns why.
	Refuse(ctx context.Context, call gateway.Call, ep domain.Endpoint, model string, why error) error
	// Embed runs an embeddings call.
	Embed(ctx context.Context, call gateway.Call, req domain.EmbedRequest) (gateway.EmbedResult, error)
	// Models returns the catalogue models the caller may use.
	Models(c domain.Caller) []domain.Model
	// CountTokens counts a chat request's prompt tokens for a model the
	// caller may use, under a call's policy (its audit reason included):
	// its provider's count of n, the request as the client sent it, or
	// tidygate's estimate.
	CountTokens(ctx context.Context, call gateway.Call, req domain.ChatRequest, n domain.NativeRequest) (gateway.TokenCount, error)
	// StoresResponse reports whether a Responses request's response is to
	// be stored, given its "store" (nil when absent).
	StoresResponse(asked *bool) bool
	// StoreResponse keeps a response for the caller's user.
	StoreResponse(ctx context.Context, c domain.Caller, r domain.StoredResponse) error
	// PreviousResponse returns the caller's stored response that a request
	// continues from (previous_response_id).
	PreviousResponse(ctx context.Context, c domain.Caller, id string) (domain.StoredResponse, error)
	// StoredResponse returns the caller's stored response.
	StoredResponse(ctx context.Context, c domain.Caller, id string) (domain.StoredResponse, error)
	// StoredResponseInput returns the caller's stored response for
	// listing its input; one stored without its input is refused.
	StoredResponseInput(ctx context.Context, c domain.Caller, id string) (domain.StoredResponse, error)
	// DeleteStoredResponse deletes the caller's stored response.
	DeleteStoredResponse(ctx context.Context, c domain.Caller, id string) error
	// Usage returns the caller's own usage report.
	Usage(ctx context.Context, c domain.Caller) (domain.UsageReport, error)
}

var _ Gateway = (*gateway.Service)(nil)

// Options tune the handler; a zero field means its default.
type Options struct {
	// MaxBodyBytes bounds a request body; larger bodies get 413. Default 4 MiB.
	MaxBodyBytes int64
	// MaxAgentBodyBytes bounds a request body of the agents' dialects
	// (Anthropic Messages, OpenAI Responses), which carry images and long contexts.
	// Default 32 MiB.
	MaxAgentBodyBytes int64
	// Logger receives one line per failed request. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for timestamps and the overhead header. Default time.Now.
	Now func() time.Time
	// NewRequestID makes the id of a request whose client sent no valid
	// X-Request-Id. Default: 32 hex digits, time-ordered, 80 random bits.
	NewRequestID func() string
	// StreamWriteTimeout bounds writing one event of a stream to a client
	// that has stopped reading. Default 30s.
	StreamWriteTimeout time.Duration
	// Unauthenticated, when set, counts each request refused because it
	// carried no usable API key. Such a request has no caller to trace, so
	// it is logged and counted here, never recorded in the call log.
	Unauthenticated UnauthenticatedCounter
	// Probes, when set, is served without authentication at /healthz and
	// /readyz, for load balancers. Nothing else operational is served on
	// the API address: /metrics and /debug/* belong to the admin address.
	Probes http.Handler
}

// UnauthenticatedCounter counts requests refused for want of a valid API
// key, by the refusal's error code ("missing_api_key", "invalid_api_key").
// cmd/app backs it with a Prometheus counter.
type UnauthenticatedCounter interface {
	// CountUnauthenticated adds one refusal with the given code.
	CountUnauthenticated(code string)
}

// uncounted is the UnauthenticatedCounter used when none is given.
type uncounted struct{}

func (uncounted) CountUnauthenticated(string) {}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.MaxAgentBodyBytes <= 0 {
		o.MaxAgentBodyBytes = 32 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Unauthenticated == nil {
		o.Unauthenticated = uncounted{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewRequestID == nil {
		now := o.Now
		o.NewRequestID = func() string { return newRequestID(now()) }
	}
	if o.StreamWriteTimeout <= 0 {
		o.StreamWriteTimeout = 30 * time.Second
	}
	return o
}

// handler serves the API; its methods are the routes and their middleware.
type handler struct {
	gw           Gateway
	log          *slog.Logger
	now          func() time.Time
	newRequestID func() string
	maxBody      int64
	maxAgentBody int64
	streamWrite  time.Duration
	unauth       UnauthenticatedCounter
}

// NewHandler returns the API's routes:
//
//	POST /v1/chat/completions   chat completion, streamed as server-sent events when "stream" is true
//	POST /v1/embeddings         one vector per input: a string, or an array of token ids
//	GET  /v1/models             the models (and aliases) the caller may use
//	GET  /v1/models/{model}     one of them
//	GET  /v1/usage              the caller's usage this month and the state of their budgets
//	POST /v1/messages           the Anthropic Messages API, streamed as Anthropic's events when "stream" is true
//	POST /v1/messages/count_tokens  a Messages request's input tokens: Anthropic's count, or an estimate
//	POST /v1/responses          the OpenAI Responses API, streamed as its events when "stream" is true
//	GET  /v1/responses/{id}     the caller's stored response
//	GET  /v1/responses/{id}/input_items  a page of its input items
//	DELETE /v1/responses/{id}   deletes the caller's stored response
//
// The /v1 routes need "Authorization: Bearer <key>"; calls and token
// counts also need an X-Audit-Reason header, which the gateway checks. Unknown paths get 404 and
// wrong methods 405, both as OpenAI error objects.
func NewHandler(gw Gateway, opts Options) http.Handler {
	opts = opts.withDefaults()
	h := &handler{gw: gw, log: opts.Logger, now: opts.Now, newRequestID: opts.NewRequestID,
		maxBody: opts.MaxBodyBytes, maxAgentBody: opts.MaxAgentBodyBytes, streamWrite: opts.StreamWriteTimeout, unauth: opts.Unauthenticated}

	r := chi.NewRouter()
	r.Use(h.serveExchange)
	r.NotFound(h.notFound)
	r.MethodNotAllowed(h.methodNotAllowed(r))
	if opts.Probes != nil {
		r.Handle("/healthz", opts.Probes)
		r.Handle("/readyz", opts.Probes)
	}
	r.Group(func(r chi.Router) {
		r.Use(h.authenticate)
		r.Post("/v1/chat/completions", h.chat)
		r.Post("/v1/embeddings", h.embeddings)
		r.Get("/v1/models", h.models)
		r.Head("/v1/models", h.models)  // as GET; net/http sends no body for HEAD
		r.Get("/v1/models/*", h.model)  // an id may hold a slash
		r.Head("/v1/models/*", h.model) // as GET
		r.Get("/v1/usage", h.usage)
		r.Post("/v1/messages", h.messages)
		r.Post("/v1/messages/count_tokens", h.countTokens)
		r.Post("/v1/responses", h.responses)
		r.Get("/v1/responses/{id}", h.getResponse)
		r.Get("/v1/responses/{id}/input_items", h.responseInputItems)
		r.Delete("/v1/responses/{id}", h.deleteResponse)
	})
	return r
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.writeError(w, r, &domain.Error{Kind: domain.KindNotFound, Code: "unknown_url",
		Message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")"})
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 asks for,
// found by asking the router which methods match the path.
func (h *handler) methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions}
	return func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
				w.Header().Add("Allow", m)
			}
		}
		h.writeError(w, r, &domain.Error{Kind: domain.KindInvalid, Code: codeMethodNotAllowed,
			Message: "Method " + r.Method + " is not allowed for " + r.URL.Path})
	}
}

// call describes the request to the gateway. The audit reason is the text
// the client wrote, in UTF-8 or, as fetch clients send it, ISO-8859-1
// (httpin.HeaderText).
func (h *handler) call(r *http.Request) gateway.Call {
	ex := exchangeOf(r)
	return gateway.Call{RequestID: ex.id, ClientRequestID: ex.clientID, Caller: ex.caller, AuditReason: httpin.HeaderText(r.Header.Get(auditReasonHeader)), Start: ex.start,
		Endpoint: endpointOf(r), RateLimits: func(l domain.RateLimits) { ex.limits = l }}
}
