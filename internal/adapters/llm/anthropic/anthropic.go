// Package anthropic calls Anthropic's Messages API through the official SDK,
// github.com/anthropics/anthropic-sdk-go, with one client for all calls and
// the SDK's own retries off: the gateway retries.
//
// A conversation is mapped as the API requires (see llm.Conversation):
// system and developer messages become the system parameter; user and
// assistant messages become alternating turns, consecutive messages of one
// side merged into one turn of several text blocks; a tool message becomes
// text in a user turn, since tidygate carries no tool call ids; empty
// messages and message names are not sent. Stop reasons are reported as
// OpenAI finish reasons (end_turn → stop, max_tokens → length, …).
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
	"fmt"
	"net/http"
	"strings"
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
	return &Provider{
		client:   anthropic.NewClient(clientOpts...),
		classify: llm.NewClassifier("anthropic", opts.APIKey),
	}, nil
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
	var content strings.Builder
	var calls []domain.Block
	for _, block := range msg.Content {
		switch block.Type {
		case "text":
			content.WriteString(block.Text)
		case "tool_use":
			calls = append(calls, domain.Block{Type: domain.BlockToolCall,
				ToolCall: domain.ToolCall{ID: block.ID, Name: block.Name, Arguments: string(block.Input)}})
		}
	}
	out := domain.ChatResponse{
		ID:           msg.ID,
		Model:        orDefault(msg.Model, req.Model),
		Content:      content.String(),
		FinishReason: llm.FinishReason(string(msg.StopReason)),
		Usage: domain.Usage{
			PromptTokens:     promptTokens(msg.Usage.InputTokens, msg.Usage.CacheCreationInputTokens, msg.Usage.CacheReadInputTokens),
			CompletionTokens: int(msg.Usage.OutputTokens),
		},
		Created: time.Now(),
	}
	if len(calls) > 0 {
		out.Blocks = calls
		if out.Content != "" {
			out.Blocks = append([]domain.Block{domain.TextBlock(out.Content)}, calls...)
		}
	}
	if out.FinishReason == "" {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the message has no stop reason"))
	}
	return out, p.checkUsage(out.Usage)
}

// ChatStream calls the Messages API with stream set. The prompt tokens come
// from message_start (or a later message_delta that reports them), the
// completion tokens from the last message_delta.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	params, err := p.params(req)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	stream := p.client.Messages.NewStreaming(ctx, params)
	defer stream.Close()

	out := domain.ChatResponse{Model: req.Model, Created: time.Now()}
	text := llm.NewStream(emit)
	var calls []domain.ToolCall
	toolIndex := map[int64]int{} // content block index → calls index
	started, stopped := false, false
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "message_start":
			started = true
			out.ID, out.Model = ev.Message.ID, orDefault(ev.Message.Model, req.Model)
			u := ev.Message.Usage
			out.Usage = domain.Usage{
				PromptTokens:     promptTokens(u.InputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens),
				CompletionTokens: int(u.OutputTokens),
			}
		case "content_block_start":
			if ev.ContentBlock.Type != "tool_use" {
				continue
			}
			call := domain.ToolCall{ID: ev.ContentBlock.ID, Name: ev.ContentBlock.Name}
			calls = append(calls, call)
			toolIndex[ev.Index] = len(calls) - 1
			start := domain.Block{Type: domain.BlockToolCall, ToolCall: call}
			if err := emit(domain.ChatChunk{Index: int(ev.Index), Start: &start}); err != nil {
				return domain.ChatResponse{}, err
			}
		case "content_block_delta":
			switch ev.Delta.Type {
			case "text_delta":
				if err := text.Text(ev.Delta.Text); err != nil {
					return domain.ChatResponse{}, err
				}
			case "input_json_delta":
				k, ok := toolIndex[ev.Index]
				if !ok || ev.Delta.PartialJSON == "" {
					continue
				}
				calls[k].Arguments += ev.Delta.PartialJSON
				if err := emit(domain.ChatChunk{Index: int(ev.Index), ArgumentsDelta: ev.Delta.PartialJSON}); err != nil {
					return domain.ChatResponse{}, err
				}
			}
		case "message_delta":
			out.FinishReason = llm.FinishReason(string(ev.Delta.StopReason))
			// output_tokens is cumulative; input_tokens, when present, too.
			out.Usage.CompletionTokens = int(ev.Usage.OutputTokens)
			if ev.Usage.JSON.InputTokens.Valid() && ev.Usage.InputTokens > 0 {
				out.Usage.PromptTokens = promptTokens(ev.Usage.InputTokens, ev.Usage.CacheCreationInputTokens, ev.Usage.CacheReadInputTokens)
			}
		case "message_stop":
			stopped = true
		}
	}
	if err := stream.Err(); err != nil {
		return domain.ChatResponse{}, p.failure(err)
	}
	if !started || !stopped || out.FinishReason == "" {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the stream ended before message_stop or without a stop reason"))
	}
	if err := p.checkUsage(out.Usage); err != nil {
		return domain.ChatResponse{}, err
	}
	if len(calls) > 0 {
		if t := text.Content(); t != "" {
			out.Blocks = append(out.Blocks, domain.TextBlock(t))
		}
		for _, c := range calls {
			if c.Arguments == "" {
				c.Arguments = "{}"
			}
			out.Blocks = append(out.Blocks, domain.Block{Type: domain.BlockToolCall, ToolCall: c})
		}
	}
	return text.Finish(out)
}

// Embed fails: Anthropic has no embeddings API.
func (p *Provider) Embed(context.Context, domain.EmbedRequest) (domain.EmbedResponse, error) {
	return domain.EmbedResponse{}, p.classify.Invalid("anthropic has no embeddings API")
}

// params maps the request onto the API's: the model, the output cap, the
// system prompt and turns, and temperature, top_p and stop sequences only
// when set.
func (p *Provider) params(req domain.ChatRequest) (anthropic.MessageNewParams, error) {
	if usesTools(req) {
		params, err := p.toolParams(req)
		p.sampling(&params, req)
		return params, err
	}
	if err := p.classify.TextOnly(req); err != nil {
		return anthropic.MessageNewParams{}, err
	}
	system, turns := llm.Conversation(req.Messages)
	if len(turns) == 0 {
		return anthropic.MessageNewParams{}, p.classify.Invalid("the request has no user or assistant message with content")
	}
	params := anthropic.MessageNewParams{
		Model:     req.Model,
		MaxTokens: int64(req.MaxTokens),
		Messages:  make([]anthropic.MessageParam, len(turns)),
	}
	for _, s := range system {
		params.System = append(params.System, anthropic.TextBlockParam{Text: s})
	}
	for i, turn := range turns {
		blocks := make([]anthropic.ContentBlockParamUnion, len(turn.Texts))
		for j, text := range turn.Texts {
			blocks[j] = anthropic.NewTextBlock(text)
		}
		if turn.Assistant {
			params.Messages[i] = anthropic.NewAssistantMessage(blocks...)
		} else {
			params.Messages[i] = anthropic.NewUserMessage(blocks...)
		}
	}
	p.sampling(&params, req)
	return params, nil
}

// sampling sets temperature, top_p and stop sequences, only when set.
func (p *Provider) sampling(params *anthropic.MessageNewParams, req domain.ChatRequest) {
	if req.Temperature != nil {
		params.Temperature = anthropic.Float(*req.Temperature)
	}
	if req.TopP != nil {
		params.TopP = anthropic.Float(*req.TopP)
	}
	params.StopSequences = req.Stop
}

// promptTokens counts every input token the call consumed. tidygate sets no
// cache breakpoints, so the cache counts are normally zero.
func promptTokens(input, cacheWrite, cacheRead int64) int {
	return int(input + cacheWrite + cacheRead)
}

func (p *Provider) checkUsage(u domain.Usage) error {
	if u.PromptTokens < 0 || u.CompletionTokens < 0 {
		return p.classify.Malformed(fmt.Errorf("negative token counts %+v", u))
	}
	return nil
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
