package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// Pass-through: a Messages request from a client that speaks the Messages
// API goes upstream as it was sent, not decoded and encoded again (which
// would lose what tidygate does not know). Only the model is replaced, the
// key is the adapter's own, and the client's anthropic-version (when it
// sent one) and anthropic-beta headers go with it. A count_tokens request
// goes to Anthropic's token counting endpoint the same way.

var (
	_ ports.PassThrough  = (*Provider)(nil)
	_ ports.TokenCounter = (*Provider)(nil)
)

// passedHeaders are the client's headers a passed-through request carries.
var passedHeaders = []string{"Anthropic-Version", "Anthropic-Beta"}

// PassesThrough reports whether d is the Messages API.
func (p *Provider) PassesThrough(d domain.Dialect) bool { return d == domain.DialectAnthropicMessages }

// Native sends a Messages request as the client wrote it and returns
// Anthropic's answer with the model renamed, or forwards its event stream.
func (p *Provider) Native(ctx context.Context, req domain.NativeRequest, emit func(domain.NativeEvent) error) (domain.NativeResponse, error) {
	if !p.PassesThrough(req.Dialect) {
		return domain.NativeResponse{}, p.classify.Invalid("cannot take a %s request as it is", req.Dialect)
	}
	ctx, cancel := p.endpoint.Bound(ctx)
	defer cancel()
	accept := "application/json"
	if req.Stream {
		accept = "text/event-stream"
	}
	resp, err := p.sendNative(ctx, p.url, req, accept, "max_tokens")
	if err != nil {
		return domain.NativeResponse{}, err
	}
	if !req.Stream {
		return p.nativeMessage(resp, req.Answer)
	}
	defer resp.Body.Close()
	s := &nativeStream{p: p, answer: req.Answer}
	usage, text, err := llm.Forward(p.classify, resp.Body, s.step, emit)
	if err != nil {
		return domain.NativeResponse{}, err
	}
	if usage == nil {
		return domain.NativeResponse{}, p.classify.Malformed(errors.New("the stream carried no usage"))
	}
	return domain.NativeResponse{ContentType: resp.Header.Get("Content-Type"), Text: text, Usage: *usage, Counted: true}, nil
}

// sendNative posts a request as the client wrote it to url, accepting the
// media type accept: its body as llm.UpstreamBody makes it (the model
// replaced, the output cap added as one of capFields when it sets none),
// with the client's version and beta headers.
func (p *Provider) sendNative(ctx context.Context, url string, req domain.NativeRequest, accept string, capFields ...string) (*http.Response, error) {
	body, err := llm.UpstreamBody(p.classify, req, capFields...)
	if err != nil {
		return nil, err
	}
	return p.post.SendRaw(ctx, url, body, llm.PassHeaders(req, passedHeaders...), accept)
}

// CountsTokens reports whether d is the Messages API, whose count_tokens
// requests Anthropic counts.
func (p *Provider) CountsTokens(d domain.Dialect) bool { return d == domain.DialectAnthropicMessages }

// CountTokens sends a count_tokens request as the client wrote it, as a
// passed-through Messages request goes (the model replaced, the client's
// version and beta headers), to the Messages API's token counting endpoint
// (POST /v1/messages/count_tokens) and returns Anthropic's input_tokens.
func (p *Provider) CountTokens(ctx context.Context, req domain.NativeRequest) (int, error) {
	if !p.CountsTokens(req.Dialect) {
		return 0, p.classify.Invalid("cannot count the tokens of a %s request", req.Dialect)
	}
	ctx, cancel := p.endpoint.Bound(ctx)
	defer cancel()
	resp, err := p.sendNative(ctx, p.countURL, req, "application/json")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close() // ReadAnswer closes it; closing it again does nothing
	body, err := p.post.ReadAnswer(resp)
	if err != nil {
		return 0, err
	}
	var count struct {
		InputTokens *int `json:"input_tokens"`
	}
	if err := json.Unmarshal(body, &count); err != nil {
		return 0, p.classify.Malformed(err)
	}
	if count.InputTokens == nil || *count.InputTokens < 0 {
		return 0, p.classify.Malformed(errors.New("the count has no input_tokens, or a negative one"))
	}
	return *count.InputTokens, nil
}

// add folds a later count, valid, into u: output tokens and, when reported, the
// input counts are cumulative, so the later values replace the earlier.
func (n usage) add(u domain.Usage) domain.Usage {
	if n.InputTokens != nil && (*n.InputTokens > 0 || u.PromptTokens == 0) {
		// valid has ruled out the negative counts UsageExcludingCache refuses.
		full, _ := llm.UsageExcludingCache(*n.InputTokens, n.CacheReadInputTokens, n.CacheCreationInputTokens, n.OutputTokens)
		return full
	}
	u.CompletionTokens = int(n.OutputTokens)
	return u
}

func (n usage) valid() bool {
	return (n.InputTokens == nil || *n.InputTokens >= 0) && n.OutputTokens >= 0 &&
		n.CacheCreationInputTokens >= 0 && n.CacheReadInputTokens >= 0
}

// nativeMessage reads a Message: its usage and its text, and renames its model.
func (p *Provider) nativeMessage(resp *http.Response, answer string) (domain.NativeResponse, error) {
	body, err := p.post.ReadAnswer(resp)
	if err != nil {
		return domain.NativeResponse{}, err
	}
	var msg struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		Usage *usage `json:"usage"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return domain.NativeResponse{}, p.classify.Malformed(err)
	}
	if msg.Usage == nil || msg.Usage.InputTokens == nil || !msg.Usage.valid() {
		return domain.NativeResponse{}, p.classify.Malformed(errors.New("the message has no usage, or a negative count"))
	}
	var text strings.Builder
	for _, b := range msg.Content {
		if b.Type == "text" {
			text.WriteString(b.Text)
		}
	}
	return domain.NativeResponse{ContentType: resp.Header.Get("Content-Type"), Body: llm.SetString(body, answer, "model"),
		Text: text.String(), Usage: msg.Usage.add(domain.Usage{}), Counted: true}, nil
}

// nativeStream reads the events of a passed-through Messages stream.
type nativeStream struct {
	p      *Provider
	answer string
	usage  domain.Usage
	seen   bool // an event carried usage
}

// nativeEvent is what tidygate reads of a stream event.
type nativeEvent struct {
	Type    string `json:"type"`
	Message *struct {
		Usage *usage `json:"usage"`
	} `json:"message"`
	Usage *usage `json:"usage"`
	Delta *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		Thinking    string `json:"thinking"`
	} `json:"delta"`
	Error *apiError `json:"error"`
}

// step reads one event: message_start and ping are the prelude; usage comes
// from message_start and message_delta; message_stop ends the stream; an
// error event is the provider's failure, classified as Chat's are.
func (s *nativeStream) step(ev llm.RawEvent) llm.Step {
	var e nativeEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return llm.Step{Err: s.p.classify.Malformed(err)}
	}
	var step llm.Step
	switch e.Type {
	case "message_start":
		step.Hold = true
		step.Data = llm.SetString(ev.Data, s.answer, "message", "model")
		if e.Message != nil && e.Message.Usage != nil {
			if step.Err = s.count(*e.Message.Usage); step.Err == nil {
				step.Event.Usage = &s.usage
			}
		}
	case "ping":
		step.Hold = true
	case "message_delta":
		if e.Usage != nil {
			if step.Err = s.count(*e.Usage); step.Err == nil {
				step.Event.Usage = &s.usage
			}
		}
	case "content_block_delta":
		if d := e.Delta; d != nil {
			if d.Type == "text_delta" {
				step.Event.Text = d.Text
			}
			step.Event.Output = len(d.Text) + len(d.PartialJSON) + len(d.Thinking)
		}
	case "message_stop":
		step.Last = true
		if !s.seen {
			step.Err = s.p.classify.Malformed(errors.New("the stream ended without usage"))
		}
	case "error":
		step.Err = s.p.eventFailure(e.Error, nil)
	}
	return step
}

// count folds an event's usage into the stream's.
func (s *nativeStream) count(n usage) error {
	if !n.valid() {
		return s.p.classify.Malformed(errors.New("a negative token count"))
	}
	s.usage = n.add(s.usage)
	s.seen = true
	return nil
}
