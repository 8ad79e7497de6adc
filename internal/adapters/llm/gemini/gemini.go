// Package gemini calls Google's models through generateContent and
// streamGenerateContent, in the wire format the Gemini API and Vertex AI
// share: New for the Gemini API (an API key in the x-goog-api-key header),
// NewVertex for Vertex AI (a service account's OAuth 2 access token). The
// two differ only in their URLs, their credentials and their embeddings
// operation.
//
// A conversation is mapped as the API takes it: system and developer
// messages become the system instruction; user and tool messages contents
// of role user, assistant messages contents of role model (consecutive ones
// merged); text, inline images (an image by URL is refused with a 4xx:
// the API reads only files it stores), function calls and function
// responses (named by their call's function, since the API matches them by
// name), and reasoning blocks as thought parts and thought signatures.
// Tools are function declarations with their JSON Schema (a strict tool is
// refused by name: a declaration has no strict flag); tool choice is
// the function calling mode (NONE, ANY, ANY restricted to one function);
// a response format is a JSON response MIME type with its JSON Schema;
// thinking is the thinking config with its budget, thoughts included.
// Function calls the API returns without an id get one tidygate makes up
// (prefix call_tg), which is never sent back. Finish reasons: STOP is stop
// (tool_calls when the answer calls a function), MAX_TOKENS length, the
// blocking reasons content_filter. Usage: the prompt count (cached tokens
// included, CacheReadTokens) plus the tool-use prompt; the candidates plus
// the thoughts as output (ReasoningTokens).
//
// The adapter reads no environment variable and no file but the one
// NewVertex is given.
package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// DefaultBaseURL is the Gemini API's base URL, with its version, used when
// Options.BaseURL is empty.
const DefaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

// Options configures the Gemini API adapter.
type Options struct {
	// BaseURL is the API's base URL, its version included; empty means
	// DefaultBaseURL.
	BaseURL string
	// APIKey is sent in the x-goog-api-key header; it is required.
	APIKey string
	// HTTPClient carries the calls; nil means llm.NewHTTPClient's.
	HTTPClient *http.Client
	// Timeout bounds each call, a stream included; zero means
	// llm.DefaultTimeout.
	Timeout time.Duration
}

// Provider calls generateContent of the Gemini API or of Vertex AI; it is
// safe for concurrent use.
type Provider struct {
	endpoint llm.Endpoint
	// url returns the URL of the model's method (generateContent, …).
	url func(model, method string) string
	// embed calls the embeddings operation of this API.
	embed    func(ctx context.Context, p *Provider, req domain.EmbedRequest) (domain.EmbedResponse, error)
	classify llm.Classifier
	post     llm.JSONPost
}

// newProvider returns a Provider calling the API at ep for provider (its
// name in messages), with the credentials authorize sets.
func newProvider(provider, secret string, ep llm.Endpoint, base string,
	authorize func(context.Context, http.Header) error,
	embed func(context.Context, *Provider, domain.EmbedRequest) (domain.EmbedResponse, error)) *Provider {
	classify := llm.NewClassifier(provider, secret)
	return &Provider{
		endpoint: ep,
		url:      func(model, method string) string { return base + url.PathEscape(model) + ":" + method },
		embed:    embed,
		classify: classify,
		post:     llm.JSONPost{Client: ep.HTTPClient, Classify: classify, Authorize: authorize, ErrorDetail: errorDetail},
	}
}

var _ ports.Provider = (*Provider)(nil)

// New returns an adapter for the Gemini API, or an error if the key is
// missing, the base URL is not an absolute http or https URL or the
// timeout is negative.
func New(opts Options) (*Provider, error) {
	if opts.APIKey == "" {
		return nil, errors.New("gemini: an API key is required")
	}
	ep, err := llm.Endpoint{BaseURL: opts.BaseURL, Timeout: opts.Timeout, HTTPClient: opts.HTTPClient}.Resolve("gemini", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	return newProvider("gemini", opts.APIKey, ep, strings.TrimRight(ep.BaseURL, "/")+"/models/",
		llm.StaticHeader(http.Header{"X-Goog-Api-Key": {opts.APIKey}}), batchEmbed), nil
}

// Chat calls generateContent.
func (p *Provider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	body, err := p.translate(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	ctx, cancel := p.endpoint.Bound(ctx)
	defer cancel()
	var resp response
	if err := p.post.Call(ctx, p.url(req.Model, "generateContent"), body, &resp); err != nil {
		return domain.ChatResponse{}, err
	}
	a := newAnswer(req.Model, nil)
	if err := a.add(resp); err != nil {
		return domain.ChatResponse{}, p.classify.Malformed(err)
	}
	out, err := a.finish(req)
	if err != nil {
		return domain.ChatResponse{}, p.classify.Malformed(err)
	}
	return out, nil
}

// ChatStream calls streamGenerateContent with server-sent events. Each
// event is a response holding the next parts; the last one reported
// carries the finish reason and the final usage. A stream that ends
// without a finish reason broke off.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	body, err := p.translate(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	ctx, cancel := p.endpoint.Bound(ctx)
	defer cancel()
	resp, err := p.post.Send(ctx, p.url(req.Model, "streamGenerateContent")+"?alt=sse", body, "text/event-stream")
	if err != nil {
		return domain.ChatResponse{}, err
	}
	defer resp.Body.Close()

	a := newAnswer(req.Model, emit)
	events := llm.NewEvents(resp.Body)
	for {
		data, err := events.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return domain.ChatResponse{}, p.classify.Failure(err)
		}
		var ev response
		if err := json.Unmarshal(data, &ev); err != nil {
			return domain.ChatResponse{}, p.classify.Malformed(fmt.Errorf("a stream event: %w", err))
		}
		if ev.Error != nil {
			return domain.ChatResponse{}, p.reported(*ev.Error)
		}
		if err := a.add(ev); err != nil {
			if a.stopped != nil {
				return domain.ChatResponse{}, a.stopped
			}
			return domain.ChatResponse{}, p.classify.Malformed(err)
		}
	}
	out, err := a.finish(req)
	if err != nil {
		return domain.ChatResponse{}, p.classify.Malformed(fmt.Errorf("the stream ended early: %w", err))
	}
	usage := out.Usage
	if err := emit(domain.ChatChunk{FinishReason: out.FinishReason, Usage: &usage}); err != nil {
		return domain.ChatResponse{}, err
	}
	return out, nil
}

// Embed calls the API's embeddings operation, which takes text only: a
// request of token ids is refused.
func (p *Provider) Embed(ctx context.Context, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	if err := p.classify.TextInputs(req); err != nil {
		return domain.EmbedResponse{}, err
	}
	ctx, cancel := p.endpoint.Bound(ctx)
	defer cancel()
	return p.embed(ctx, p, req)
}

// errorDetail reads Google's error format for the message, and its
// RetryInfo for the delay when the answer has no Retry-After.
func errorDetail(raw []byte, h http.Header) (string, http.Header) {
	if e, ok := decodeError(raw); ok {
		return e.Message, e.retryHeader(h)
	}
	return string(raw), h
}

// decodeError reads Google's error format, alone or (as Vertex AI sends it
// for a stream) as the only element of an array.
func decodeError(raw []byte) (apiError, bool) {
	var one struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(raw, &one) == nil && one.Error != nil && one.Error.Message != "" {
		return *one.Error, true
	}
	var many []struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 && many[0].Error != nil && many[0].Error.Message != "" {
		return *many[0].Error, true
	}
	return apiError{}, false
}

// retryHeader returns header with a Retry-After taken from the error's
// RetryInfo detail (retryDelay, such as "7s") when header has none.
func (e apiError) retryHeader(header http.Header) http.Header {
	if header.Get("Retry-After") != "" {
		return header
	}
	for _, d := range e.Details {
		if !strings.HasSuffix(d.Type, "google.rpc.RetryInfo") {
			continue
		}
		if delay, err := time.ParseDuration(d.RetryDelay); err == nil && delay > 0 {
			h := header.Clone()
			if h == nil {
				h = http.Header{}
			}
			h.Set("Retry-After", fmt.Sprintf("%.3f", delay.Seconds()))
			return h
		}
	}
	return header
}

// errorStatus is the HTTP status a status name in an error event inside a
// stream (whose own status was 200) stands for.
var errorStatus = map[string]int{
	"INVALID_ARGUMENT":    http.StatusBadRequest,
	"FAILED_PRECONDITION": http.StatusBadRequest,
	"OUT_OF_RANGE":        http.StatusBadRequest,
	"NOT_FOUND":           http.StatusNotFound,
	"UNAUTHENTICATED":     http.StatusUnauthorized,
	"PERMISSION_DENIED":   http.StatusForbidden,
	"RESOURCE_EXHAUSTED":  http.StatusTooManyRequests,
}

// reported classifies an error event inside a stream by its code or status.
func (p *Provider) reported(e apiError) error {
	status := e.Code
	if status < http.StatusBadRequest {
		status = errorStatus[e.Status]
	}
	if status == 0 {
		return p.classify.Reported(e.Message)
	}
	return p.classify.HTTP(status, e.retryHeader(http.Header{}), e.Message)
}
