// Package gateway is the application service, the corporate LLM gateway: the
// one place where a call flows through policy, budget, provider, ledger and
// call log. It sees persistence and providers only through ports.
package gateway

import (
	"context"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// Call is what the edge knows about a call besides its body.
type Call struct {
	RequestID   string
	Caller      domain.Caller
	AuditReason string
	Start       time.Time // when the request arrived
}

// Result says who answered a call and what it cost. It is filled as far as
// the call got, also when the call fails.
type Result struct {
	Model        domain.Model  // the catalogue model that answered (or was last tried)
	Attempts     int           // provider calls made
	FallbackUsed bool          // a fallback model answered
	ProviderTime time.Duration // time spent waiting on providers
	Cost         domain.Micros
}

// ChatResult is a chat completion and how it was obtained.
type ChatResult struct {
	Result
	Response domain.ChatResponse
}

// EmbedResult is an embedding response and how it was obtained.
type EmbedResult struct {
	Result
	Response domain.EmbedResponse
}

// Options tune the service; the zero value of each field means its default.
type Options struct {
	MinAuditReasonLen  int           // default 3
	MaxAttempts        int           // attempts per model, default 3
	RetryBackoff       time.Duration // first backoff, doubled per retry; default 200ms
	MaxConcurrentCalls int           // concurrent upstream calls; default 256
	ProviderTimeout    time.Duration // per attempt; default 60s
	Now                func() time.Time
}

// Deps are the ports the service consumes.
type Deps struct {
	Catalogue *domain.Catalogue
	Providers map[string]ports.Provider // by provider name, as used in the catalogue
	Keys      ports.KeyStore
	Ledger    ports.SpendLedger
	CallLog   ports.CallLog
}

// Service is the corporate LLM gateway.
type Service struct{}

// NewService checks that every provider the catalogue names is configured.
func NewService(deps Deps, opts Options) (*Service, error) { panic("todo") }

// Authenticate returns the caller behind an API key secret.
func (s *Service) Authenticate(ctx context.Context, secret string) (domain.Caller, error) {
	panic("todo")
}

// Chat runs a non-streaming chat completion.
func (s *Service) Chat(ctx context.Context, call Call, req domain.ChatRequest) (ChatResult, error) {
	panic("todo")
}

// ChatStream runs a streaming chat completion, calling emit for each chunk.
// Once emit has been called, the call is not retried.
func (s *Service) ChatStream(ctx context.Context, call Call, req domain.ChatRequest, emit func(domain.ChatChunk) error) (ChatResult, error) {
	panic("todo")
}

// Embed runs an embeddings call.
func (s *Service) Embed(ctx context.Context, call Call, req domain.EmbedRequest) (EmbedResult, error) {
	panic("todo")
}

// Models returns the models (with their aliases) the caller may use.
func (s *Service) Models(c domain.Caller) []domain.Model { panic("todo") }

// Usage returns the caller's usage report for the current month.
func (s *Service) Usage(ctx context.Context, c domain.Caller) (domain.UsageReport, error) {
	panic("todo")
}
