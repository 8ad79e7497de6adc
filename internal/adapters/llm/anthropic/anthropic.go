// Package anthropic calls Anthropic's Messages API in its wire format, with
// net/http and encoding/json (see llm.JSONPost): one attempt per call, as
// the gateway retries, with the API key in the x-api-key header and the API
// version (anthropic-version 2023-06-01) on every request.
//
// A conversation is translated in full (see request): system and developer
// messages become the system parameter; the other messages alternating
// turns of content blocks — text, images (base64 or URL), tool calls, tool
// results (text and images), and thinking and redacted thinking with their
// signatures and data, so that a tool loop with thinking continues; a tool
// message of plain text is text in a user turn; empty text and message
// names are not sent. Tools (strict tool use included), tool choice,
// top_k, thinking (enabled with a budget, or adaptive without one), a
// reasoning effort (output_config.effort) and a JSON Schema response
// format (structured outputs, output_config.format) are translated; a
// json_object response format, which Anthropic has no equivalent for, is
// refused by name.
// Answers and streams come back as the same blocks, streamed thinking
// (thinking_delta, signature_delta) included, with their usage, the tokens
// read from and written to the prompt cache included. Stop reasons are
// reported as OpenAI finish reasons (end_turn → stop, max_tokens → length,
// …), the stop sequence that ended an answer as itself. An error answer is
// classified by its status (429 with its Retry-After, 529 overloaded as the
// provider's failure), an error event inside a stream by its error type.
//
// The adapter reads nothing from the environment (no ANTHROPIC_* variables,
// no profile files): its settings are the options'. Anthropic has no
// embeddings API: Embed fails with domain.KindInvalid.
package anthropic

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// DefaultBaseURL is the Anthropic API's base URL, used when Options.BaseURL is empty.
const DefaultBaseURL = "https://api.anthropic.com"

// apiVersion is the version of the Messages API the adapter speaks, sent as
// the anthropic-version header unless a passed-through client chose its own.
const apiVersion = "2023-06-01"

// Options configures the Anthropic adapter.
type Options struct {
	// BaseURL is the API's base URL; empty means DefaultBaseURL.
	BaseURL string
	// APIKey is sent in the x-api-key header; empty sends none.
	APIKey string
	// HTTPClient carries the calls; nil means llm.NewHTTPClient's.
	HTTPClient *http.Client
	// Timeout bounds each call; zero means llm.DefaultTimeout. The
	// gateway's per-attempt deadline in ctx usually ends a call first.
	Timeout time.Duration
}

// Provider calls the Anthropic Messages API; it is safe for concurrent use.
type Provider struct {
	classify llm.Classifier
	endpoint llm.Endpoint
	url      string       // the Messages API's
	countURL string       // its token counting endpoint's
	post     llm.JSONPost // carries every call
}

var _ ports.Provider = (*Provider)(nil)

// New returns an adapter for the API at opts.BaseURL, or an error if the
// base URL is not an absolute http or https URL or the timeout is negative.
func New(opts Options) (*Provider, error) {
	ep, err := llm.Endpoint{BaseURL: opts.BaseURL, Timeout: opts.Timeout, HTTPClient: opts.HTTPClient}.Resolve("anthropic", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		classify: llm.NewClassifier("anthropic", opts.APIKey),
		endpoint: ep,
		url:      strings.TrimRight(ep.BaseURL, "/") + "/v1/messages",
	}
	p.countURL = p.url + "/count_tokens"
	p.post = llm.JSONPost{Client: ep.HTTPClient, Classify: p.classify, Authorize: requestHeaders(opts.APIKey), ErrorDetail: errorDetail}
	return p, nil
}

// requestHeaders returns the function that sets what every request carries: the
// API key, and the API version unless the request already names one (a
// passed-through client's).
func requestHeaders(apiKey string) func(context.Context, http.Header) error {
	key, version := []string{apiKey}, []string{apiVersion}
	return func(_ context.Context, h http.Header) error {
		if apiKey != "" {
			h["X-Api-Key"] = key
		}
		if len(h["Anthropic-Version"]) == 0 {
			h["Anthropic-Version"] = version
		}
		return nil
	}
}

// Chat calls the Messages API.
func (p *Provider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	body, err := p.request(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	ctx, cancel := p.endpoint.Bound(ctx)
	defer cancel()
	var msg message
	if err := p.post.Call(ctx, p.url, body, &msg); err != nil {
		return domain.ChatResponse{}, err
	}
	blocks := make([]domain.Block, 0, len(msg.Content))
	for _, block := range msg.Content {
		switch block.Type {
		case "text":
			blocks = append(blocks, domain.TextBlock(block.Text))
		case "tool_use":
			blocks = append(blocks, domain.Block{Type: domain.BlockToolCall,
				ToolCall: domain.ToolCall{ID: block.ID, Name: block.Name, Arguments: domain.ToolArguments(string(block.Input))}})
		case "thinking":
			blocks = append(blocks, domain.Block{Type: domain.BlockReasoning, Text: block.Thinking,
				Reasoning: domain.Reasoning{Signature: block.Signature}})
		case "redacted_thinking":
			blocks = append(blocks, domain.Block{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: block.Data}})
		}
	}
	out := domain.ChatResponse{
		ID:           msg.ID,
		Model:        cmp.Or(msg.Model, req.Model),
		FinishReason: llm.FinishReason(msg.StopReason),
		StopSequence: msg.StopSequence,
		Created:      time.Now(),
	}
	u := msg.Usage
	if out.Usage, err = llm.UsageExcludingCache(u.input(), u.CacheReadInputTokens, u.CacheCreationInputTokens, u.OutputTokens); err != nil {
		return domain.ChatResponse{}, p.classify.Malformed(err)
	}
	out.Content, out.Blocks = llm.Answer(blocks)
	if out.FinishReason == "" {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the message has no stop reason"))
	}
	return out, nil
}

// ChatStream calls the Messages API with stream set. The prompt tokens come
// from message_start (or a later message_delta that reports them), the
// completion tokens from the last message_delta. Each content block is
// passed on under its index: text, tool calls with their arguments in
// pieces, thinking with its signature, and redacted thinking whole. An
// error event ends the stream as the provider's failure.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	body, err := p.request(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	body.Stream = true
	ctx, cancel := p.endpoint.Bound(ctx)
	defer cancel()
	resp, err := p.post.Send(ctx, p.url, body, "text/event-stream")
	if err != nil {
		return domain.ChatResponse{}, err
	}
	defer resp.Body.Close()

	s := streamed{out: domain.ChatResponse{Model: req.Model, Created: time.Now()}, blocks: llm.NewStream(emit)}
	events := llm.NewEvents(resp.Body)
	var ev event
	for {
		data, err := events.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return domain.ChatResponse{}, p.classify.Failure(err)
		}
		if len(data) == 0 {
			continue
		}
		ev = event{}
		if err := json.Unmarshal(data, &ev); err != nil {
			return domain.ChatResponse{}, p.classify.Malformed(fmt.Errorf("a stream event: %w", err))
		}
		if ev.Type == "error" {
			return domain.ChatResponse{}, p.eventFailure(ev.Error, resp.Header)
		}
		if err := s.apply(&ev); err != nil {
			return domain.ChatResponse{}, p.streamFailure(err)
		}
	}
	if !s.started || !s.stopped || s.out.FinishReason == "" {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the stream ended before message_stop or without a stop reason"))
	}
	c := s.counts
	if s.out.Usage, err = llm.UsageExcludingCache(c.input, c.cacheRead, c.cacheWrite, c.output); err != nil {
		return domain.ChatResponse{}, p.classify.Malformed(err)
	}
	return s.blocks.Finish(s.out)
}

// streamed is what a Messages stream has said so far.
type streamed struct {
	out              domain.ChatResponse
	blocks           *llm.Stream
	counts           usageCounts
	started, stopped bool // message_start and message_stop came
}

// apply takes in one event: message_start's id, model and counts, a content
// block's start or delta, message_delta's stop reason and counts, and
// message_stop; ping and events tidygate does not know are skipped.
func (s *streamed) apply(ev *event) error {
	switch ev.Type {
	case "message_start":
		s.started = true
		s.out.ID, s.out.Model = ev.Message.ID, cmp.Or(ev.Message.Model, s.out.Model)
		u := ev.Message.Usage
		s.counts = usageCounts{input: u.input(), cacheRead: u.CacheReadInputTokens, cacheWrite: u.CacheCreationInputTokens, output: u.OutputTokens}
	case "content_block_start":
		return startBlock(s.blocks, ev.Index, ev.ContentBlock)
	case "content_block_delta":
		switch ev.Delta.Type {
		case "text_delta":
			return s.blocks.TextAt(ev.Index, ev.Delta.Text)
		case "input_json_delta":
			return s.blocks.ArgumentsAt(ev.Index, ev.Delta.PartialJSON)
		case "thinking_delta":
			return s.blocks.ReasoningAt(ev.Index, ev.Delta.Thinking)
		case "signature_delta":
			return s.blocks.SignatureAt(ev.Index, ev.Delta.Signature)
		}
	case "message_delta":
		s.out.FinishReason = llm.FinishReason(ev.Delta.StopReason)
		s.out.StopSequence = ev.Delta.StopSequence
		// output_tokens is cumulative; the input counts, when present, too.
		u := ev.Usage
		s.counts.output = u.OutputTokens
		if u.input() > 0 {
			s.counts.input = u.input()
		}
		if u.CacheReadInputTokens > 0 {
			s.counts.cacheRead = u.CacheReadInputTokens
		}
		if u.CacheCreationInputTokens > 0 {
			s.counts.cacheWrite = u.CacheCreationInputTokens
		}
	case "message_stop":
		s.stopped = true
	}
	return nil
}

// startBlock starts a streamed content block: a tool call with its id and
// name, thinking (its text and signature follow in deltas), redacted
// thinking with its data, or text, whose start may already hold some.
func startBlock(blocks *llm.Stream, index int, cb contentBlock) error {
	switch cb.Type {
	case "tool_use":
		return blocks.Start(index, domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: cb.ID, Name: cb.Name}})
	case "thinking":
		if err := blocks.Start(index, domain.Block{Type: domain.BlockReasoning}); err != nil {
			return err
		}
		if err := blocks.ReasoningAt(index, cb.Thinking); err != nil {
			return err
		}
		return blocks.SignatureAt(index, cb.Signature)
	case "redacted_thinking":
		return blocks.Start(index, domain.Block{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: cb.Data}})
	case "text":
		if err := blocks.Start(index, domain.TextBlock("")); err != nil {
			return err
		}
		return blocks.TextAt(index, cb.Text)
	}
	return nil // a server tool's block, which tidygate does not ask for
}

// streamFailure classifies a failure while passing on a stream: a piece
// that does not fit its block is a malformed answer; anything else is
// emit's error, which ends the stream as it is.
func (p *Provider) streamFailure(err error) error {
	var mismatch *llm.MismatchError
	if errors.As(err, &mismatch) {
		return p.classify.Malformed(err)
	}
	return err
}

// Embed fails: Anthropic has no embeddings API.
func (p *Provider) Embed(context.Context, domain.EmbedRequest) (domain.EmbedResponse, error) {
	return domain.EmbedResponse{}, p.classify.Invalid("anthropic has no embeddings API")
}

// usageCounts are Anthropic's counts as a stream reports them: input
// excludes the tokens read from and written to the prompt cache (see
// llm.UsageExcludingCache); message_start gives them all, message_delta
// the cumulative output and any input count that changed.
type usageCounts struct {
	input, cacheRead, cacheWrite, output int64
}

// errorDetail reads an error answer in Anthropic's shape,
// {"type":"error","error":{"type":…,"message":…}}: its message, or the
// whole body when it has none.
func errorDetail(raw []byte, h http.Header) (string, http.Header) {
	var body struct {
		Error apiError `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error.Message != "" {
		return body.Error.Message, h
	}
	return string(raw), h
}

// streamErrorStatus returns the HTTP status an error event inside a stream
// (whose own status was 200) stands for, when its type is the client's
// fault, tidygate's credentials or a rate limit; zero for the provider's own
// failures (api_error, overloaded_error, …).
func streamErrorStatus(errorType string) int {
	switch errorType {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "rate_limit_error":
		return http.StatusTooManyRequests
	}
	return 0
}

// eventFailure classifies an error event inside a stream by its error type
// (see streamErrorStatus), with header, the stream's own, for a rate
// limit's Retry-After; a type that is the provider's own failure, or an
// event without an error, is a failure the provider reported.
func (p *Provider) eventFailure(e *apiError, header http.Header) error {
	if e == nil {
		return p.classify.Reported("an error event without an error")
	}
	if status := streamErrorStatus(e.Type); status != 0 {
		return p.classify.HTTP(status, header, e.Message)
	}
	return p.classify.Reported(e.Message)
}
