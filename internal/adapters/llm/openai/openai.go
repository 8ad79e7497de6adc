// Package openai calls the OpenAI Chat Completions and Embeddings APIs, and
// every server that speaks them: Ollama (base URL http://host:11434/v1, no
// key), vLLM, LM Studio. It uses the official SDK,
// github.com/openai/openai-go/v3, with one client for all calls and the
// SDK's own retries off: the gateway retries.
//
// Messages are sent as the API takes them, with two exceptions: a developer
// message is sent as a system message (OpenAI treats them alike for its
// newer models; self-hosted servers often know only system), and a tool
// message is sent as a user message, since tidygate carries no tool call
// ids and the API refuses a tool message without one.
//
// The SDK fills in settings the options leave unset from OPENAI_*
// environment variables (organization, project, custom headers); the base
// URL and the API key are always the options' own.
package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/packages/ssestream"

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
	// HTTPClient carries the calls; nil means a plain *http.Client.
	HTTPClient *http.Client
	// Timeout bounds each call; zero means llm.DefaultTimeout (ten
	// minutes). The gateway's per-attempt deadline in ctx usually ends a
	// call first.
	Timeout time.Duration
	// UseMaxCompletionTokens sends the output cap as max_completion_tokens,
	// which OpenAI's reasoning models require, instead of max_tokens, which
	// Ollama, vLLM, LM Studio and OpenAI's other models understand.
	UseMaxCompletionTokens bool
}

// Provider calls one OpenAI-compatible API; it is safe for concurrent use.
type Provider struct {
	client              openai.Client
	classify            llm.Classifier
	maxCompletionTokens bool
}

var _ ports.Provider = (*Provider)(nil)

// New returns an adapter for the API at opts.BaseURL, or an error if the
// base URL is not an absolute http or https URL or the timeout is negative.
func New(opts Options) (*Provider, error) {
	ep, err := llm.Endpoint{BaseURL: opts.BaseURL, Timeout: opts.Timeout, HTTPClient: opts.HTTPClient}.Resolve("openai", DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	return &Provider{
		client: openai.NewClient(
			option.WithBaseURL(ep.BaseURL),
			option.WithAPIKey(opts.APIKey), // also when empty: a key from the environment must not leak to another server
			option.WithHTTPClient(ep.HTTPClient),
			option.WithRequestTimeout(ep.Timeout),
			option.WithMaxRetries(0),
		),
		classify:            llm.NewClassifier("openai", opts.APIKey),
		maxCompletionTokens: opts.UseMaxCompletionTokens,
	}, nil
}

// Chat calls the Chat Completions API.
func (p *Provider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	var raw *http.Response
	resp, err := p.client.Chat.Completions.New(ctx, p.params(req), option.WithResponseInto(&raw))
	if err != nil {
		return domain.ChatResponse{}, p.failure(err, raw)
	}
	if len(resp.Choices) == 0 {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the completion has no choices"))
	}
	choice := resp.Choices[0]
	out := domain.ChatResponse{
		ID:           resp.ID,
		Model:        orDefault(resp.Model, req.Model),
		Content:      choice.Message.Content,
		FinishReason: choice.FinishReason,
		Created:      created(resp.Created),
	}
	if resp.JSON.Usage.Valid() {
		out.Usage, err = p.usage(resp.Usage)
	} else {
		// Some OpenAI-compatible servers report no usage; an estimate keeps the call costed.
		out.Usage = llm.EstimateUsage(req, out.Content)
	}
	return out, err
}

// ChatStream calls the Chat Completions API with stream set, asking for the
// usage in a last chunk (stream_options.include_usage) so that streamed
// calls are costed like others.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	params := p.params(req)
	params.StreamOptions.IncludeUsage = openai.Bool(true)
	var raw *http.Response
	stream := p.client.Chat.Completions.NewStreaming(ctx, params, option.WithResponseInto(&raw))
	defer stream.Close()

	var out domain.ChatResponse
	var usage *domain.Usage
	text := llm.NewStream(emit)
	for stream.Next() {
		chunk := stream.Current()
		if out.ID == "" {
			out.ID, out.Model, out.Created = chunk.ID, chunk.Model, created(chunk.Created)
		}
		if chunk.JSON.Usage.Valid() {
			u, err := p.usage(chunk.Usage)
			if err != nil {
				return domain.ChatResponse{}, err
			}
			usage = &u
		}
		for _, choice := range chunk.Choices {
			if choice.Index != 0 {
				continue // tidygate asks for one choice
			}
			if err := text.Text(choice.Delta.Content); err != nil {
				return domain.ChatResponse{}, err
			}
			if choice.FinishReason != "" {
				out.FinishReason = choice.FinishReason
			}
		}
	}
	if err := stream.Err(); err != nil {
		return domain.ChatResponse{}, p.failure(err, raw)
	}
	if out.FinishReason == "" {
		return domain.ChatResponse{}, p.classify.Malformed(errors.New("the stream ended without a finish reason"))
	}
	out.Model = orDefault(out.Model, req.Model)
	if usage != nil {
		out.Usage = *usage
	} else {
		// The server ignored stream_options.include_usage (older Ollama and
		// vLLM versions do); an estimate keeps the call costed.
		out.Usage = llm.EstimateUsage(req, text.Content())
	}
	return text.Finish(out)
}

// Embed calls the Embeddings API for float vectors.
func (p *Provider) Embed(ctx context.Context, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	params := openai.EmbeddingNewParams{
		Model:          req.Model,
		Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: req.Inputs},
		EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
	}
	if req.Dimensions > 0 {
		params.Dimensions = openai.Int(int64(req.Dimensions))
	}
	var raw *http.Response
	resp, err := p.client.Embeddings.New(ctx, params, option.WithResponseInto(&raw))
	if err != nil {
		return domain.EmbedResponse{}, p.failure(err, raw)
	}
	if len(resp.Data) != len(req.Inputs) {
		return domain.EmbedResponse{}, p.classify.Malformed(fmt.Errorf("%d embeddings for %d inputs", len(resp.Data), len(req.Inputs)))
	}
	vectors := make([][]float32, len(req.Inputs))
	for _, e := range resp.Data {
		if e.Index < 0 || e.Index >= int64(len(vectors)) || vectors[e.Index] != nil || len(e.Embedding) == 0 {
			return domain.EmbedResponse{}, p.classify.Malformed(fmt.Errorf("embedding index %d is out of range, repeated or empty", e.Index))
		}
		v := make([]float32, len(e.Embedding))
		for i, x := range e.Embedding {
			v[i] = float32(x)
		}
		vectors[e.Index] = v
	}
	out := domain.EmbedResponse{Model: orDefault(resp.Model, req.Model), Vectors: vectors}
	if resp.JSON.Usage.Valid() && resp.Usage.PromptTokens >= 0 {
		out.Usage.PromptTokens = int(resp.Usage.PromptTokens)
	} else {
		// No usage reported: estimate, so that the call is costed.
		for _, in := range req.Inputs {
			out.Usage.PromptTokens += llm.EstimateTokens(in)
		}
	}
	return out, nil
}

// params maps the request onto the API's: the model, the messages, the
// output cap, and temperature, top_p and stop only when set.
func (p *Provider) params(req domain.ChatRequest) openai.ChatCompletionNewParams {
	params := openai.ChatCompletionNewParams{Model: req.Model, Messages: messages(req.Messages)}
	if p.maxCompletionTokens {
		params.MaxCompletionTokens = openai.Int(int64(req.MaxTokens))
	} else {
		params.MaxTokens = openai.Int(int64(req.MaxTokens))
	}
	if req.Temperature != nil {
		params.Temperature = openai.Float(*req.Temperature)
	}
	if req.TopP != nil {
		params.TopP = openai.Float(*req.TopP)
	}
	if len(req.Stop) > 0 {
		params.Stop.OfStringArray = req.Stop
	}
	return params
}

func messages(msgs []domain.Message) []openai.ChatCompletionMessageParamUnion {
	out := make([]openai.ChatCompletionMessageParamUnion, len(msgs))
	for i, m := range msgs {
		var name param.Opt[string]
		if m.Name != "" {
			name = openai.String(m.Name)
		}
		switch m.Role {
		case domain.RoleSystem, domain.RoleDeveloper:
			out[i] = openai.SystemMessage(m.Content)
			out[i].OfSystem.Name = name
		case domain.RoleAssistant:
			out[i] = openai.AssistantMessage(m.Content)
			out[i].OfAssistant.Name = name
		default: // user, and tool (see the package documentation)
			out[i] = openai.UserMessage(m.Content)
			out[i].OfUser.Name = name
		}
	}
	return out
}

func (p *Provider) usage(u openai.CompletionUsage) (domain.Usage, error) {
	if u.PromptTokens < 0 || u.CompletionTokens < 0 {
		return domain.Usage{}, p.classify.Malformed(fmt.Errorf("negative token counts %d and %d", u.PromptTokens, u.CompletionTokens))
	}
	return domain.Usage{PromptTokens: int(u.PromptTokens), CompletionTokens: int(u.CompletionTokens)}, nil
}

// maxErrorBody bounds how much of an error answer that is not in OpenAI's
// format is read for its message.
const maxErrorBody = 4096

// failure classifies a failed call. raw is the HTTP response, when the call
// got one: it still gives the status when the error body is not in OpenAI's
// format, which the SDK does not turn into an *openai.Error.
func (p *Provider) failure(err error, raw *http.Response) error {
	var apiErr *openai.Error
	var streamErr *ssestream.StreamError
	switch {
	case errors.As(err, &apiErr):
		var header http.Header
		if apiErr.Response != nil {
			header = apiErr.Response.Header
		}
		return p.classify.HTTP(apiErr.StatusCode, header, apiErr.Message)
	case errors.As(err, &streamErr):
		return p.classify.Reported(streamErr.Message)
	case raw != nil && raw.StatusCode >= http.StatusBadRequest && ctxErr(err) == nil:
		body, _ := io.ReadAll(io.LimitReader(raw.Body, maxErrorBody))
		return p.classify.HTTP(raw.StatusCode, raw.Header, string(body))
	}
	return p.classify.Failure(err)
}

func ctxErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func created(unix int64) time.Time {
	if unix <= 0 {
		return time.Now()
	}
	return time.Unix(unix, 0)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
