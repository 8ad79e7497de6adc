// Package openai calls the OpenAI Chat Completions and Embeddings APIs, and
// every server that speaks them: Ollama (base URL http://host:11434/v1, no
// key), vLLM, LM Studio.
//
// It speaks the wire format itself, with encoding/json and net/http, rather
// than through the official SDK: a gateway uses a handful of fields of two
// endpoints, and the SDK cost each call about 90 µs and 29 KB of
// allocations, and the process about 9 MiB of resident code (measured on
// the bench machine; see docs/BENCHMARKS.md). It makes one attempt per call:
// the gateway retries.
//
// Messages are sent as the API takes them, with two exceptions: a developer
// message is sent as a system message (OpenAI treats them alike for its
// newer models; self-hosted servers often know only system), and a tool
// message is sent as a user message, since tidygate carries no tool call
// ids and the API refuses a tool message without one.
//
// The adapter reads no environment variable: the base URL and the API key
// are always the options' own, so that a key meant for OpenAI never reaches
// another server.
package openai

import (
	"bufio"
	"bytes"
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
	// UseMaxCompletionTokens sends the output cap as max_completion_tokens,
	// which OpenAI's reasoning models require, instead of max_tokens, which
	// Ollama, vLLM, LM Studio and OpenAI's other models understand.
	UseMaxCompletionTokens bool
}

// Provider calls one OpenAI-compatible API; it is safe for concurrent use.
type Provider struct {
	ep                  llm.Endpoint
	apiKey              string
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
	ep.BaseURL = strings.TrimRight(ep.BaseURL, "/")
	return &Provider{
		ep:                  ep,
		apiKey:              opts.APIKey,
		classify:            llm.NewClassifier("openai", opts.APIKey),
		maxCompletionTokens: opts.UseMaxCompletionTokens,
	}, nil
}

// The wire format: only the fields tidygate sends or reads.
type (
	chatRequest struct {
		Model               string         `json:"model"`
		Messages            []message      `json:"messages"`
		MaxTokens           int            `json:"max_tokens,omitempty"`
		MaxCompletionTokens int            `json:"max_completion_tokens,omitempty"`
		Temperature         *float64       `json:"temperature,omitempty"`
		TopP                *float64       `json:"top_p,omitempty"`
		Stop                []string       `json:"stop,omitempty"`
		Stream              bool           `json:"stream,omitempty"`
		StreamOptions       *streamOptions `json:"stream_options,omitempty"`
	}
	message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
		Name    string `json:"name,omitempty"`
	}
	streamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	}
	// completion is a chat completion, or one chunk of a streamed one.
	completion struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Created int64  `json:"created"`
		Choices []struct {
			Index        int    `json:"index"`
			Message      delta  `json:"message"` // a completion's
			Delta        delta  `json:"delta"`   // a chunk's
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *usage    `json:"usage"`
		Error *apiError `json:"error"` // an error event in a stream
	}
	delta struct {
		Content string `json:"content"`
	}
	usage struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	}
	embedRequest struct {
		Model          string   `json:"model"`
		Input          []string `json:"input"`
		EncodingFormat string   `json:"encoding_format"`
		Dimensions     int      `json:"dimensions,omitempty"`
	}
	embeddings struct {
		Model string `json:"model"`
		Data  []struct {
			Index     int64     `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
		Usage *usage `json:"usage"`
	}
	apiError struct {
		Message string `json:"message"`
	}
)

// Chat calls the Chat Completions API.
func (p *Provider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	if err := p.classify.TextOnly(req); err != nil {
		return domain.ChatResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.ep.Timeout)
	defer cancel()
	var resp completion
	if err := p.call(ctx, "/chat/completions", p.chatRequest(req), &resp); err != nil {
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
		Created:      created(resp.Created),
	}
	if resp.Usage == nil {
		// Some OpenAI-compatible servers report no usage; an estimate keeps the call costed.
		out.Usage = llm.EstimateUsage(req, out.Content)
		return out, nil
	}
	var err error
	out.Usage, err = p.usage(*resp.Usage)
	return out, err
}

// ChatStream calls the Chat Completions API with stream set, asking for the
// usage in a last chunk (stream_options.include_usage) so that streamed
// calls are costed like others.
func (p *Provider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	if err := p.classify.TextOnly(req); err != nil {
		return domain.ChatResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.ep.Timeout)
	defer cancel()
	body := p.chatRequest(req)
	body.Stream, body.StreamOptions = true, &streamOptions{IncludeUsage: true}
	resp, err := p.send(ctx, "/chat/completions", body, "text/event-stream")
	if err != nil {
		return domain.ChatResponse{}, err
	}
	defer resp.Body.Close()
	defer drain(resp.Body) // before Close

	var out domain.ChatResponse
	var usage *domain.Usage
	text := llm.NewStream(emit)
	events := newEvents(resp.Body)
	for {
		data, err := events.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return domain.ChatResponse{}, p.classify.Failure(err)
		}
		if string(data) == "[DONE]" {
			break
		}
		var chunk completion
		if err := json.Unmarshal(data, &chunk); err != nil {
			return domain.ChatResponse{}, p.classify.Malformed(fmt.Errorf("a stream event: %w", err))
		}
		if chunk.Error != nil {
			return domain.ChatResponse{}, p.classify.Reported(chunk.Error.Message)
		}
		if out.ID == "" {
			out.ID, out.Model, out.Created = chunk.ID, chunk.Model, created(chunk.Created)
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
		out.Usage = llm.EstimateUsage(req, text.Content())
	}
	return text.Finish(out)
}

// Embed calls the Embeddings API for float vectors.
func (p *Provider) Embed(ctx context.Context, req domain.EmbedRequest) (domain.EmbedResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, p.ep.Timeout)
	defer cancel()
	var resp embeddings
	err := p.call(ctx, "/embeddings", embedRequest{Model: req.Model, Input: req.Inputs, EncodingFormat: "float", Dimensions: req.Dimensions}, &resp)
	if err != nil {
		return domain.EmbedResponse{}, err
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
	if resp.Usage != nil && resp.Usage.PromptTokens >= 0 {
		out.Usage.PromptTokens = int(resp.Usage.PromptTokens)
	} else {
		// No usage reported: estimate, so that the call is costed.
		for _, in := range req.Inputs {
			out.Usage.PromptTokens += llm.EstimateTokens(in)
		}
	}
	return out, nil
}

// chatRequest maps the request onto the API's: the model, the messages, the
// output cap, and temperature, top_p and stop only when set.
func (p *Provider) chatRequest(req domain.ChatRequest) chatRequest {
	out := chatRequest{Model: req.Model, Messages: messages(req.Messages), Temperature: req.Temperature, TopP: req.TopP, Stop: req.Stop}
	if p.maxCompletionTokens {
		out.MaxCompletionTokens = req.MaxTokens
	} else {
		out.MaxTokens = req.MaxTokens
	}
	return out
}

func messages(msgs []domain.Message) []message {
	out := make([]message, len(msgs))
	for i, m := range msgs {
		role := "user" // user, and tool (see the package documentation)
		switch m.Role {
		case domain.RoleSystem, domain.RoleDeveloper:
			role = "system"
		case domain.RoleAssistant:
			role = "assistant"
		}
		out[i] = message{Role: role, Content: m.Content, Name: m.Name}
	}
	return out
}

func (p *Provider) usage(u usage) (domain.Usage, error) {
	if u.PromptTokens < 0 || u.CompletionTokens < 0 {
		return domain.Usage{}, p.classify.Malformed(fmt.Errorf("negative token counts %d and %d", u.PromptTokens, u.CompletionTokens))
	}
	return domain.Usage{PromptTokens: int(u.PromptTokens), CompletionTokens: int(u.CompletionTokens)}, nil
}

// maxResponseBody bounds a non-streamed answer; maxErrorBody bounds how much
// of an error answer is read for its message.
const (
	maxResponseBody = 64 << 20
	maxErrorBody    = 4096
)

// call POSTs body as JSON to path and decodes the JSON answer into out.
func (p *Provider) call(ctx context.Context, path string, body, out any) error {
	resp, err := p.send(ctx, path, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	defer drain(resp.Body) // before Close
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody)).Decode(out); err != nil {
		return p.classify.Failure(err)
	}
	return nil
}

// send POSTs body as JSON to path, accepting the media type accept, and
// returns the answer when its status is 2xx; any other answer, or none, is
// a classified error.
func (p *Provider) send(ctx context.Context, path string, body any, accept string) (*http.Response, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, p.classify.Invalid("cannot encode the request: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.ep.BaseURL+path, bytes.NewReader(payload))
	if err != nil {
		return nil, p.classify.Failure(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "tidygate")
	if p.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.apiKey)
	}
	resp, err := p.ep.HTTPClient.Do(req)
	if err != nil {
		return nil, p.classify.Failure(err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil && ctx.Err() != nil {
		return nil, p.classify.Failure(ctx.Err())
	}
	detail := string(raw)
	var e struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != nil && e.Error.Message != "" {
		detail = e.Error.Message
	}
	return nil, p.classify.HTTP(resp.StatusCode, resp.Header, detail)
}

// drain reads what is left of a small answer (the newline after the JSON,
// say) before it is closed: a body closed before its end costs the
// connection its keep-alive.
func drain(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
}

// maxEventBytes bounds one server-sent event.
const maxEventBytes = 1 << 20

// events reads the data of server-sent events (the text/event-stream
// format): the data lines of an event, joined by newlines; comments and the
// other fields are skipped.
type events struct {
	r *bufio.Reader
}

func newEvents(body io.Reader) *events {
	return &events{r: bufio.NewReaderSize(body, 16<<10)}
}

// next returns the data of the next event with data, or io.EOF at the end
// of the body. An event cut off by the end of the body is returned as it
// is, so that a broken stream shows as an unreadable event.
func (e *events) next() ([]byte, error) {
	var data []byte
	have := false
	for {
		line, err := e.line()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		eof := err != nil
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0 && have && !eof:
			return data, nil // a blank line ends the event
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if have {
				data = append(data, '\n')
			}
			if len(data)+len(v) > maxEventBytes {
				return nil, fmt.Errorf("a stream event exceeds %d bytes", maxEventBytes)
			}
			data, have = append(data, v...), true
		}
		if eof {
			if have {
				return data, nil
			}
			return nil, io.EOF
		}
	}
}

// line returns the next line, or what is left before the end of the body
// with io.EOF; a line longer than maxEventBytes is an error.
func (e *events) line() ([]byte, error) {
	line, err := e.r.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	long := append([]byte(nil), line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		if len(long) > maxEventBytes {
			return nil, fmt.Errorf("a stream event exceeds %d bytes", maxEventBytes)
		}
		line, err = e.r.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
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
