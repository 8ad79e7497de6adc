// Package anthropic calls Anthropic's Messages API through the official SDK,
// github.com/anthropics/anthropic-sdk-go, with one client for all calls and
// the SDK's own retries off: the gateway retries.
//
// A conversation is translated in full (see params): system and developer
// messages become the system parameter; the other messages alternating
// turns of content blocks — text, images (base64 or URL), tool calls, tool
// results (text and images), and thinking and redacted thinking with their
// signatures and data, so that a tool loop with thinking continues; a tool
// message of plain text is text in a user turn; empty text and message
// names are not sent. Tools, tool choice, top_k, thinking (enabled with a
// budget, or adaptive without one) and a JSON Schema response format
// (structured outputs, output_config.format) are translated; a json_object
// response format, which Anthropic has no equivalent for, is refused by
// name. Answers and streams come back as the same blocks, streamed
// thinking (thinking_delta, signature_delta) included. Stop reasons are
// reported as OpenAI finish reasons (end_turn → stop, max_tokens → length,
// …), the stop sequence that ended an answer as itself.
//
// The client reads nothing from the environment (no ANTHROPIC_* variables,
// no profile files) and emits no OpenTelemetry spans: its settings are the
// options', and tidygate records calls itself. Anthropic has no embeddings
// API: Embed fails with domain.KindInvalid.
package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// DefaultBaseURL is the Anthropic API's base URL, used when Options.BaseURL is empty.
const DefaultBaseURL = "https://api.anthropic.com"

// Options configures the Anthropic adapter.
type Options struct {
	// BaseURL is the API's base URL; empty means DefaultBaseURL.
	BaseURL string
	// APIKey is sent in the x-api-key header; empty sends none.
	APIKey string
	// HTTPClient carries the calls; nil means a plain *http.Client.
	HTTPClient *http.Client
	// Timeout bounds each call; zero means llm.DefaultTimeout (ten
	// minutes, which also keeps the SDK from insisting on streaming for a
	// large max_tokens). The gateway's per-attempt deadline in ctx usually
	// ends a call first.
	Timeout time.Duration
}

// Provider calls the Anthropic Messages API; it is safe for concurrent use.
type Provider struct {
	client   anthropic.Client
	classify llm.Classifier
	endpoint llm.Endpoint // where pass-through calls go, without the SDK
	native   llm.JSONPost // carries them
}

var _ ports.Provider = (*Provider)(nil)

// New returns an adapter for the API at opts.BaseURL, or an error if the
// base URL is not an absolute http or https URL or the timeout is negative.
func New(opts Options) (*Provider, error) {
	ep, err := llm.Endpoint{BaseURL: opts.BaseURL, Timeout: opts.Timeout, HTTPClient: opts.HTTPClient}.Resolve("anthropic", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	clientOpts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithoutOpenTelemetry(),
		option.WithBaseURL(ep.BaseURL),
		option.WithHTTPClient(ep.HTTPClient),
		option.WithRequestTimeout(ep.Timeout),
		option.WithMaxRetries(0),
	}
	if opts.APIKey != "" {
		clientOpts = append(clientOpts, option.WithAPIKey(opts.APIKey))
	}
	p := &Provider{
		client:   anthropic.NewClient(clientOpts...),
		classify: llm.NewClassifier("anthropic", opts.APIKey),
		endpoint: ep,
	}
	key := http.Header{}
	if opts.APIKey != "" {
		key.Set("X-Api-Key", opts.APIKey)
	}
	p.native = llm.JSONPost{Client: ep.HTTPClient, Classify: p.classify, Authorize: llm.StaticHeader(key), ErrorDetail: errorDetail}
	return p, nil
}

// Chat calls the Messages API.
func (p *Provider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	params, err := p.params(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	msg, err := p.client.Messages.New(ctx, params)
	if err != nil {
		return domain.ChatResponse{}, p.failure(err)
	}
	blocks := make([]domain.Block, 0, len(msg.Content))
	for _, block := range msg.Content {
		switch block.Type {
		case "text":
			blocks = append(blocks, domain.TextBlock(block.Text))
		case "tool_use":
			blocks = append(blocks, domain.Block{Type: domain.BlockToolCall,
				ToolCall: domain.ToolCall{ID: block.ID, Name: block.Name, Arguments: orDefault(string(block.Input), "{}")}})
		case "thinking":
			blocks = append(blocks, domain.Block{Type: domain.BlockReasoning, Text: block.Thinking,
				Reasoning: domain.Reasoning{Signature: block.Signature}})
		case "redacted_thinking":
			blocks = append(blocks, domain.Block{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: block.Data}})
		}
	}
	out := domain.ChatResponse{
		ID:           msg.ID,
		Model:        orDefault(msg.Model, req.Model),
		FinishReason: llm.FinishReason(string(msg.StopReason)),
		StopSequence: msg.StopSequence,
		Created:      time.Now(),
	}
	if out.Usage, err = llm.UsageExcludingCache(msg.Usage.InputTokens, msg.Usage.CacheReadInputTokens, msg.Usage.CacheCreationInputTokens, msg.Usage.OutputTokens); err != nil {
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
// pieces, thinking with its signature, and redacted thinking whole.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	params, err := p.params(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	stream := p.client.Messages.NewStreaming(ctx, params)
	defer stream.Close()

	out := domain.ChatResponse{Model: req.Model, Created: time.Now()}
	blocks := llm.NewStream(emit)
	started, stopped := false, false
	var counts usageCounts
	for stream.Next() {
		ev := stream.Current()
		index := int(ev.Index)
		var err error
		switch ev.Type {
		case "message_start":
			started = true
			out.ID, out.Model = ev.Message.ID, orDefault(ev.Message.Model, req.Model)
			u := ev.Message.Usage
			counts = usageCounts{input: u.InputTokens, cacheRead: u.CacheReadInputTokens, cacheWrite: u.CacheCreationInputTokens, output: u.OutputTokens}
		case "content_block_start":
			err = p.startBlock(blocks, index, ev.ContentBlock)
		case "content_block_delta":
			switch ev.Delta.Type {
			case "text_delta":
				err = blocks.TextAt(index, ev.Delta.Text)
			case "input_json_delta":
				err = blocks.ArgumentsAt(index, ev.Delta.PartialJSON)
			case "thinking_delta":
				err = blocks.ReasoningAt(index, ev.Delta.Thinking)
			case "signature_delta":
				err = blocks.SignatureAt(index, ev.Delta.Signature)
			}
		case "message_delta":
			out.FinishReason = llm.FinishReason(string(ev.Delta.StopReason))
			out.StopSequence = ev.Delta.StopSequence
			// output_tokens is cumulative; the input counts, when present, too.
			u := ev.Usage
			counts.output = u.OutputTokens
			if u.JSON.InputTokens.Valid() && u.InputTokens > 0 {
				counts.input = u.InputTokens
			}
			if u.JSON.CacheReadInputTokens.Valid() && u.CacheReadInputTokens > 0 {
				counts.cacheRead = u.CacheReadInputTokens
			}
			if u.JSON.CacheCreationInputTokens.Valid() && u.CacheCreationInputTokens > 0 {
				counts.cacheWrite = u.CacheCreationInputTokens
			}
		case "message_stop":
			stopped = true
		}
		if err != nil {
			return domain.ChatResponse{}, p.streamFailure(err)
		}
	}
	if err := stream.Err(); err != nil {
		return domain.ChatResponse{}, p.failure(err)
	}
	if !started || !stopped || out.FinishReason == "" {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the stream ended before message_stop or without a stop reason"))
	}
	if out.Usage, err = llm.UsageExcludingCache(counts.input, counts.cacheRead, counts.cacheWrite, counts.output); err != nil {
		return domain.ChatResponse{}, p.classify.Malformed(err)
	}
	return blocks.Finish(out)
}

// startBlock starts a streamed content block: a tool call with its id and
// name, thinking (its text and signature follow in deltas), redacted
// thinking with its data, or text, whose start may already hold some.
func (p *Provider) startBlock(blocks *llm.Stream, index int, cb anthropic.ContentBlockStartEventContentBlockUnion) error {
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

// errorBody is the Anthropic error format: {"type":"error","error":{"type":…,"message":…}}.
type errorBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
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

// failure classifies a failed call: an *anthropic.Error by its status (or,
// for an error event inside a stream, by its error type), anything else as
// a transport failure or a malformed answer.
func (p *Provider) failure(err error) error {
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		return p.classify.Failure(err)
	}
	raw := apiErr.RawJSON()
	var body errorBody
	detail := raw
	if json.Unmarshal([]byte(raw), &body) == nil && body.Error.Message != "" {
		detail = body.Error.Message
	}
	status := apiErr.StatusCode
	if status < http.StatusBadRequest { // an error event inside a stream
		if status = streamErrorStatus(body.Error.Type); status == 0 {
			return p.classify.Reported(detail)
		}
	}
	var header http.Header
	if apiErr.Response != nil {
		header = apiErr.Response.Header
	}
	return p.classify.HTTP(status, header, detail)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
