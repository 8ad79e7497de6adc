// Package openai calls the OpenAI Chat Completions and Embeddings APIs, and
// every server that speaks them: Ollama (base URL http://host:11434/v1, no
// key), vLLM, LM Studio.
//
// It speaks the wire format itself, through llm.OpenAIClient (encoding/json
// and net/http), rather than through the official SDK: a gateway uses a
// handful of fields of two endpoints, and the SDK cost each call about 90 µs
// and 29 KB of allocations, and the process about 9 MiB of resident code
// (measured on the bench machine; see docs/BENCHMARKS.md). It makes one
// attempt per call: the gateway retries.
//
// The adapter reads no environment variable: the base URL and the API key
// are always the options' own, so that a key meant for OpenAI never reaches
// another server.
package openai

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// DefaultBaseURL is the OpenAI API's base URL, used when Options.BaseURL is empty.
const DefaultBaseURL = "https://api.openai.com/v1"

// Options configures the OpenAI adapter.
type Options struct {
	// BaseURL is the API's base URL, such as http://localhost:11434/v1 for
	// Ollama; empty means DefaultBaseURL.
	BaseURL string
	// APIKey is sent as a bearer token; empty sends none (Ollama, vLLM and
	// LM Studio need none unless configured to).
	APIKey string
	// HTTPClient carries the calls; nil means llm.NewHTTPClient's.
	HTTPClient *http.Client
	// Timeout bounds each call, a stream included; zero means
	// llm.DefaultTimeout (ten minutes). The gateway's per-attempt deadline
	// in ctx usually ends a call first.
	Timeout time.Duration
	// UseMaxCompletionTokens sends the output cap as max_completion_tokens
	// instead of max_tokens to a server that is not OpenAI's: OpenAI's own
	// API (a host under api.openai.com) always gets max_completion_tokens,
	// which replaced max_tokens there and which its reasoning models
	// require, while Ollama, vLLM and LM Studio are sent max_tokens, which
	// they all understand.
	UseMaxCompletionTokens bool
}

// openAIHost is the host of OpenAI's API; its regional hosts
// (eu.api.openai.com) are below it.
const openAIHost = "api.openai.com"

// Provider calls one OpenAI-compatible API; it is safe for concurrent use.
type Provider struct {
	*llm.OpenAIClient
}

var (
	_ ports.Provider    = (*Provider)(nil)
	_ ports.PassThrough = (*Provider)(nil)
)

// New returns an adapter for the API at opts.BaseURL, or an error if the
// base URL is not an absolute http or https URL or the timeout is negative.
func New(opts Options) (*Provider, error) {
	ep, err := llm.Endpoint{BaseURL: opts.BaseURL, Timeout: opts.Timeout, HTTPClient: opts.HTTPClient}.Resolve("openai", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(ep.BaseURL, "/")
	urls := map[string]string{} // each operation's URL, joined once
	for _, op := range []string{llm.OpChatCompletions, llm.OpEmbeddings, llm.OpResponses} {
		urls[op] = base + "/" + op
	}
	header := http.Header{}
	if opts.APIKey != "" {
		header.Set("Authorization", "Bearer "+opts.APIKey)
	}
	return &Provider{llm.NewOpenAIClient(llm.OpenAIWire{
		Provider: "openai",
		Endpoint: ep,
		URL:      func(operation, _ string) string { return urls[operation] },
		Header:   header,
		Secret:   opts.APIKey,

		UseMaxCompletionTokens: opts.UseMaxCompletionTokens || isOpenAI(ep.BaseURL),
		PassThrough:            []domain.Dialect{domain.DialectOpenAIChat, domain.DialectOpenAIResponses},
	})}, nil
}

// isOpenAI reports whether baseURL, an absolute URL, is OpenAI's API.
func isOpenAI(baseURL string) bool {
	u, err := url.Parse(baseURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	return host == openAIHost || strings.HasSuffix(host, "."+openAIHost)
}
