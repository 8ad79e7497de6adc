package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// The operations of an OpenAI-compatible API, as OpenAIWire.URL receives them.
const (
	OpChatCompletions = "chat/completions"
	OpEmbeddings      = "embeddings"
)

// OpenAIWire describes one API that speaks OpenAI's Chat Completions and
// Embeddings wire format: where its operations are and how a request is
// authorized. OpenAI itself, Ollama, vLLM, LM Studio and Azure OpenAI differ
// only in these.
type OpenAIWire struct {
	// Provider names the provider in error messages.
	Provider string
	// Endpoint carries the calls and bounds each one; see Endpoint.Resolve.
	Endpoint Endpoint
	// URL returns the absolute URL of operation (OpChatCompletions or
	// OpEmbeddings) for the upstream model.
	URL func(operation, model string) string
	// Header is sent with every request: the credentials and any fixed
	// headers the API wants.
	Header http.Header
	// Authorize, when set, adds credentials that change (a bearer token
	// from Tokens) to each request, after Header.
	Authorize func(ctx context.Context, h http.Header) error
	// Secret (the API key, possibly empty) never appears in an error message.
	Secret string
	// UseMaxCompletionTokens sends the output cap as max_completion_tokens,
	// which OpenAI's reasoning models require, instead of max_tokens, which
	// Ollama, vLLM, LM Studio and OpenAI's other models understand.
	UseMaxCompletionTokens bool
	// PassThrough lists the dialects the API takes as clients send them
	// (domain.DialectOpenAIChat, domain.DialectOpenAIResponses, whose
	// operation is OpResponses); see OpenAIClient.Native.
	PassThrough []domain.Dialect
}

// OpenAIClient calls one API in OpenAI's wire format, with encoding/json and
// net/http. It makes one attempt per call (the gateway retries) and is safe
// for concurrent use. It implements the gateway's provider port, so an
// adapter of an OpenAI-compatible API is a constructor that describes its
// OpenAIWire.
//
// Messages are sent as the API takes them (text and image parts, tool calls,
// tool results as tool messages; see oaiMessages), with two exceptions: a
// developer message is sent as a system message (OpenAI treats them alike
// for its newer models; self-hosted servers often know only system), and a
// tool message of plain text, which names no tool call, is sent as a user
// message, since the API refuses a tool message without a tool call id.
// Tools, tool choice, response format and reasoning (as reasoning_effort,
// see oaiEffort) are translated; reasoning blocks in the history are not
// sent, as the API has no place for them; top_k is refused by name.
type OpenAIClient struct {
	wire     OpenAIWire
	classify Classifier
	post     JSONPost
}

// NewOpenAIClient returns a client for the API w describes.
func NewOpenAIClient(w OpenAIWire) *OpenAIClient {
	c := &OpenAIClient{wire: w, classify: NewClassifier(w.Provider, w.Secret)}
	static := StaticHeader(w.Header)
	authorize := static
	if w.Authorize != nil {
		authorize = func(ctx context.Context, h http.Header) error {
			_ = static(ctx, h)
			return w.Authorize(ctx, h)
		}
	}
	c.post = JSONPost{Client: w.Endpoint.HTTPClient, Classify: c.classify, Authorize: authorize, ErrorDetail: oaiErrorDetail, ErrorFields: oaiErrorFields}
	return c
}

// oaiErrorDetail reads OpenAI's error format: {"error": {"message": …}}.
func oaiErrorDetail(raw []byte, h http.Header) (string, http.Header) {
	var e struct {
		Error *oaiError `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != nil && e.Error.Message != "" {
		return e.Error.Message, h
	}
	return string(raw), h
}

// oaiErrorFields reads the parameter and the code of OpenAI's error
// format, each when it is a string: vLLM sends its HTTP status as the code.
func oaiErrorFields(raw []byte) (param, code string) {
	var e struct {
		Error *oaiError `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error == nil {
		return "", ""
	}
	_ = json.Unmarshal(e.Error.Param, &param)
	_ = json.Unmarshal(e.Error.Code, &code)
	return param, code
}

// The wire format: only the fields tidygate sends or reads.
type (
	oaiChatRequest struct {
		Model               string            `json:"model"`
		Messages            []oaiMessage      `json:"messages"`
		MaxTokens           int               `json:"max_tokens,omitempty"`
		MaxCompletionTokens int               `json:"max_completion_tokens,omitempty"`
		Temperature         *float64          `json:"temperature,omitempty"`
		TopP                *float64          `json:"top_p,omitempty"`
		Seed                *int64            `json:"seed,omitempty"`
		PresencePenalty     *float64          `json:"presence_penalty,omitempty"`
		FrequencyPenalty    *float64          `json:"frequency_penalty,omitempty"`
		Stop                []string          `json:"stop,omitempty"`
		Stream              bool              `json:"stream,omitempty"`
		StreamOptions       *oaiStreamOptions `json:"stream_options,omitempty"`
		Tools               []oaiTool         `json:"tools,omitempty"`
		ToolChoice          any               `json:"tool_choice,omitempty"`
		ParallelToolCalls   *bool             `json:"parallel_tool_calls,omitempty"`
		ResponseFormat      *oaiFormat        `json:"response_format,omitempty"`
		ReasoningEffort     string            `json:"reasoning_effort,omitempty"`
	}
	oaiMessage struct {
		Role       string        `json:"role"`
		Content    any           `json:"content"` // a string, parts, or null beside tool calls
		Name       string        `json:"name,omitempty"`
		ToolCalls  []oaiToolCall `json:"tool_calls,omitempty"`
		ToolCallID string        `json:"tool_call_id,omitempty"`
	}
	oaiStreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	}
	// completion is a chat completion, or one chunk of a streamed one.
	oaiCompletion struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Created int64  `json:"created"`
		Choices []struct {
			Index        int      `json:"index"`
			Message      oaiDelta `json:"message"` // a completion's
			Delta        oaiDelta `json:"delta"`   // a chunk's
			FinishReason string   `json:"finish_reason"`
		} `json:"choices"`
		Usage *oaiUsage `json:"usage"`
		Error *oaiError `json:"error"` // an error event in a stream
	}
	oaiDelta struct {
		Content   string        `json:"content"`
		ToolCalls []oaiToolCall `json:"tool_calls"`
	}
	oaiUsage struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		PromptTokensDetails struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails struct {
			ReasoningTokens int64 `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	}
	oaiEmbedRequest struct {
		Model          string `json:"model"`
		Input          any    `json:"input"` // []string, or [][]int of token ids
		EncodingFormat string `json:"encoding_format"`
		Dimensions     int    `json:"dimensions,omitempty"`
	}
	oaiEmbeddings struct {
		Model string `json:"model"`
		Data  []struct {
			Index     int64     `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
		Usage *oaiUsage `json:"usage"`
	}
	oaiError struct {
		Message string          `json:"message"`
		Param   json.RawMessage `json:"param"` // a string or null
		Code    json.RawMessage `json:"code"`  // a string, null, or (vLLM) a number
	}
)

// Chat calls the Chat Completions API.
func (p *OpenAIClient) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	if err := p.translatable(req); err != nil {
		return domain.ChatResponse{}, err
	}
	ctx, cancel := p.wire.Endpoint.Bound(ctx)
	defer cancel()
	resp := completions.Get().(*oaiCompletion)
	defer completions.Put(resp)
	resp.reset()
	if err := p.post.Call(ctx, p.wire.URL(OpChatCompletions, req.Model), p.chatRequest(req), resp); err != nil {
		return domain.ChatResponse{}, err
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
		Created:      createdAt(resp.Created),
	}
	if len(choice.Message.ToolCalls) > 0 {
		out.Blocks = oaiBlocks(choice.Message)
		out.FinishReason = callsFinish(out.FinishReason)
	}
	if resp.Usage == nil {
		// Some OpenAI-compatible servers report no usage; an estimate keeps the call costed.
		out.Usage = EstimateUsage(req, out.Content)
		return out, nil
	}
	var err error
	out.Usage, err = p.usage(*resp.Usage)
	return out, err
}

// completions holds the structs Chat decodes completions into: what Chat
// returns is copied out of one (strings, blocks) before it goes back.
var completions = sync.Pool{New: func() any { return new(oaiCompletion) }}

// reset empties c for the next answer and keeps its choices' backing array,
// zeroed: encoding/json decodes into a slice's elements as it finds them.
func (c *oaiCompletion) reset() {
	choices := c.Choices[:cap(c.Choices)]
	clear(choices)
	*c = oaiCompletion{Choices: choices[:0]}
}

// ChatStream calls the Chat Completions API with stream set, asking for the
// usage in a last chunk (stream_options.include_usage) so that streamed
// calls are costed like others.
func (p *OpenAIClient) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	if err := p.translatable(req); err != nil {
		return domain.ChatResponse{}, err
	}
	ctx, cancel := p.wire.Endpoint.Bound(ctx)
	defer cancel()
	body := p.chatRequest(req)
	body.Stream, body.StreamOptions = true, &oaiStreamOptions{IncludeUsage: true}
	resp, err := p.post.Send(ctx, p.wire.URL(OpChatCompletions, req.Model), body, "text/event-stream")
	if err != nil {
		return domain.ChatResponse{}, err
	}
	defer resp.Body.Close()
	defer drain(resp.Body) // before Close

	var out domain.ChatResponse
	var usage *domain.Usage
	text := NewStream(emit)
	calls := &oaiToolStream{emit: emit}
	events := NewEvents(resp.Body)
	for {
		data, err := events.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return domain.ChatResponse{}, p.classify.Failure(err)
		}
		if string(data) == "[DONE]" {
			break
		}
		var chunk oaiCompletion
		if err := json.Unmarshal(data, &chunk); err != nil {
			return domain.ChatResponse{}, p.classify.Malformed(fmt.Errorf("a stream event: %w", err))
		}
		if chunk.Error != nil {
			return domain.ChatResponse{}, p.classify.Reported(chunk.Error.Message)
		}
		if out.ID == "" {
			out.ID, out.Model, out.Created = chunk.ID, chunk.Model, createdAt(chunk.Created)
		}
		if chunk.Usage != nil {
			u, err := p.usage(*chunk.Usage)
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
			if err := calls.add(choice.Delta.ToolCalls); err != nil {
				return domain.ChatResponse{}, err
			}
			if choice.FinishReason != "" {
				out.FinishReason = choice.FinishReason
			}
		}
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
		out.Usage = EstimateUsage(req, text.Content())
	}
	if len(calls.calls) > 0 {
		out.Blocks = calls.blocks(text.Content())
		out.FinishReason = callsFinish(out.FinishReason)
	}
	return text.Finish(out)
}

// Embed calls the Embeddings API for float vectors, sending the input as
// text or as the arrays of token ids the client sent, which the API takes
// as they are.
func (p *OpenAIClient) Embed(ctx context.Context, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	ctx, cancel := p.wire.Endpoint.Bound(ctx)
	defer cancel()
	body := oaiEmbedRequest{Model: req.Model, Input: req.Inputs, EncodingFormat: "float", Dimensions: req.Dimensions}
	if len(req.Tokens) > 0 {
		body.Input = req.Tokens
	}
	var resp oaiEmbeddings
	if err := p.post.Call(ctx, p.wire.URL(OpEmbeddings, req.Model), body, &resp); err != nil {
		return domain.EmbedResponse{}, err
	}
	if len(resp.Data) != req.Len() {
		return domain.EmbedResponse{}, p.classify.Malformed(fmt.Errorf("%d embeddings for %d inputs", len(resp.Data), req.Len()))
	}
	vectors := make([][]float32, req.Len())
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
	if resp.Usage != nil && resp.Usage.PromptTokens >= 0 {
		out.Usage.PromptTokens = int(resp.Usage.PromptTokens)
	} else {
		// No usage reported: estimate, so that the call is costed.
		out.Usage.PromptTokens = EstimateEmbedTokens(req)
	}
	return out, nil
}

// chatRequest maps the request onto the API's: the model, the messages, the
// output cap, temperature, top_p, seed, the presence and frequency
// penalties and stop only when set, the tools, tool choice and response
// format, and the reasoning effort.
func (p *OpenAIClient) chatRequest(req domain.ChatRequest) oaiChatRequest {
	out := oaiChatRequest{Model: req.Model, Messages: oaiMessages(req.Messages), Temperature: req.Temperature, TopP: req.TopP,
		Seed: req.Seed, PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty, Stop: req.Stop,
		ReasoningEffort: oaiEffort(req.Thinking)}
	addTools(&out, req)
	if p.wire.UseMaxCompletionTokens {
		out.MaxCompletionTokens = req.MaxTokens
	} else {
		out.MaxTokens = req.MaxTokens
	}
	return out
}

// usage converts OpenAI's count by class: the prompt includes its cached
// tokens, the completion its reasoning tokens (see UsageIncludingCache).
func (p *OpenAIClient) usage(u oaiUsage) (domain.Usage, error) {
	out, err := UsageIncludingCache(u.PromptTokens, u.PromptTokensDetails.CachedTokens, u.CompletionTokens, u.CompletionTokensDetails.ReasoningTokens)
	if err != nil {
		return domain.Usage{}, p.classify.Malformed(err)
	}
	return out, nil
}

func createdAt(unix int64) time.Time {
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

// callsFinish returns the finish reason of an answer that calls a tool.
// OpenAI says "stop" when tool_choice named the function, where the model
// stopped to have its tool called all the same; the domain, like every
// other provider, says "tool_calls" then, which the Messages dialect
// answers as stop_reason "tool_use", the sign its clients' tool loops wait
// for. A passed-through answer keeps OpenAI's word.
func callsFinish(reason string) string {
	if reason == domain.FinishStop {
		return domain.FinishToolCalls
	}
	return reason
}
