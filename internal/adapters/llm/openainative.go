package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/tidygate/tidygate/internal/domain"
)

// Pass-through for OpenAI's dialects: a chat completions or Responses
// request from a client that speaks it goes upstream as it was sent, the
// model replaced, the output cap added when the body sets none, and (for a
// streamed chat completion) stream_options.include_usage set, since the
// usage is what the call is charged by. A client that did not ask for the
// usage gets the stream it asked for: the usage chunk is read, not passed
// on, and the other chunks lose the "usage" member that asking adds. The
// client's OpenAI-Beta header goes with it; the credentials are the wire's
// own.

// OpResponses is the Responses API's operation, as OpenAIWire.URL receives it.
const OpResponses = "responses"

// openAIPassedHeaders are the client's headers a passed-through request carries.
var openAIPassedHeaders = []string{"Openai-Beta"}

// PassesThrough reports whether the wire takes requests of dialect d as
// they are (OpenAIWire.PassThrough).
func (p *OpenAIClient) PassesThrough(d domain.Dialect) bool {
	return slices.Contains(p.wire.PassThrough, d)
}

// Native sends a chat completions or Responses request as the client wrote
// it and returns the answer with the model renamed, or forwards its event
// stream.
func (p *OpenAIClient) Native(ctx context.Context, req domain.NativeRequest, emit func(domain.NativeEvent) error) (domain.NativeResponse, error) {
	if !p.PassesThrough(req.Dialect) {
		return domain.NativeResponse{}, p.classify.Invalid("cannot take a %s request as it is", req.Dialect)
	}
	op, caps := OpChatCompletions, []string{"max_tokens", "max_completion_tokens"}
	if p.wire.UseMaxCompletionTokens {
		caps[0], caps[1] = caps[1], caps[0]
	}
	if req.Dialect == domain.DialectOpenAIResponses {
		op, caps = OpResponses, []string{"max_output_tokens"}
	}
	body, err := UpstreamBody(p.classify, req, caps...)
	if err != nil {
		return domain.NativeResponse{}, err
	}
	if req.Stream && op == OpChatCompletions {
		body = includeUsage(body)
	}
	ctx, cancel := p.wire.Endpoint.Bound(ctx)
	defer cancel()
	header := PassHeaders(req, openAIPassedHeaders...)
	accept := "application/json"
	if req.Stream {
		accept = "text/event-stream"
	}
	resp, err := p.post.SendRaw(ctx, p.wire.URL(op, req.Model), body, header, accept)
	if err != nil {
		return domain.NativeResponse{}, err
	}
	if !req.Stream {
		return p.nativeAnswer(resp, req)
	}
	defer resp.Body.Close()
	s := &oaiNativeStream{p: p, answer: req.Answer, hideUsage: !asksUsage(req.Body)}
	parse := s.chunk
	if op == OpResponses {
		parse = s.responseEvent
	}
	usage, text, err := Forward(p.classify, resp.Body, parse, emit)
	if err != nil {
		return domain.NativeResponse{}, err
	}
	out := domain.NativeResponse{ContentType: resp.Header.Get("Content-Type"), Text: text}
	if usage != nil {
		out.Usage, out.Counted = *usage, true
	}
	return out, nil
}

// includeUsage sets stream_options.include_usage in a chat completions body.
func includeUsage(body []byte) []byte {
	v, _, _, ok := ValueAt(body, "stream_options")
	var opts map[string]json.RawMessage
	if !ok || json.Unmarshal(v, &opts) != nil || opts == nil {
		if ok {
			out, _ := Replace(body, []byte(`{"include_usage":true}`), "stream_options")
			return out
		}
		return Insert(body, "stream_options", []byte(`{"include_usage":true}`))
	}
	if string(opts["include_usage"]) == "true" {
		return body
	}
	opts["include_usage"] = json.RawMessage("true")
	raw, _ := json.Marshal(opts)
	out, _ := Replace(body, raw, "stream_options")
	return out
}

// asksUsage reports whether a chat completions body asks for the usage
// chunk itself (stream_options.include_usage).
func asksUsage(body []byte) bool {
	v, _, _, ok := ValueAt(body, "stream_options", "include_usage")
	return ok && string(v) == "true"
}

// oaiNativeUsage is the usage of either dialect: chat completions counts
// prompt and completion tokens, Responses input and output tokens.
type oaiNativeUsage struct {
	PromptTokens        *int64 `json:"prompt_tokens"`
	CompletionTokens    int64  `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	InputTokens        *int64 `json:"input_tokens"`
	OutputTokens       int64  `json:"output_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
}

// usage is the count in the domain's classes; ok is false when it holds
// no input count or a negative one.
func (n oaiNativeUsage) usage() (domain.Usage, bool) {
	in, out, cached, reasoning := n.PromptTokens, n.CompletionTokens, n.PromptTokensDetails.CachedTokens, n.CompletionTokensDetails.ReasoningTokens
	if in == nil {
		in, out, cached, reasoning = n.InputTokens, n.OutputTokens, n.InputTokensDetails.CachedTokens, n.OutputTokensDetails.ReasoningTokens
	}
	if in == nil || *in < 0 || out < 0 || cached < 0 || reasoning < 0 {
		return domain.Usage{}, false
	}
	return domain.Usage{PromptTokens: int(*in), CompletionTokens: int(out), CacheReadTokens: int(cached), ReasoningTokens: int(reasoning)}, true
}

// nativeAnswer reads a chat completion or a Response: its usage and text,
// and renames its model.
func (p *OpenAIClient) nativeAnswer(resp *http.Response, req domain.NativeRequest) (domain.NativeResponse, error) {
	body, err := p.post.ReadAnswer(resp)
	if err != nil {
		return domain.NativeResponse{}, err
	}
	var answer struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Output []struct {
			Type    string `json:"type"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		} `json:"output"`
		Usage *oaiNativeUsage `json:"usage"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return domain.NativeResponse{}, p.classify.Malformed(err)
	}
	out := domain.NativeResponse{ContentType: resp.Header.Get("Content-Type"), Body: SetString(body, req.Answer, "model")}
	if len(answer.Choices) > 0 && answer.Choices[0].Message.Content != nil {
		out.Text = *answer.Choices[0].Message.Content
	}
	for _, item := range answer.Output {
		for _, part := range item.Content {
			if item.Type == "message" && part.Type == "output_text" {
				out.Text += part.Text
			}
		}
	}
	if answer.Usage != nil {
		u, ok := answer.Usage.usage()
		if !ok {
			return domain.NativeResponse{}, p.classify.Malformed(errors.New("the answer's usage has no input count, or a negative count"))
		}
		out.Usage, out.Counted = u, true
	}
	return out, nil
}

// oaiNativeStream reads the events of a passed-through stream.
type oaiNativeStream struct {
	p      *OpenAIClient
	answer string
	usage  domain.Usage
	// hideUsage: the client did not ask for the usage of a chat
	// completion, which tidygate asked for (see chunk).
	hideUsage bool
}

// count returns the event's usage as the stream's count, or a malformed
// answer's error.
func (s *oaiNativeStream) count(n *oaiNativeUsage, step *Step) {
	u, ok := n.usage()
	if !ok {
		step.Err = s.p.classify.Malformed(errors.New("a stream event's usage has no input count, or a negative count"))
		return
	}
	s.usage = u
	step.Event.Usage = &s.usage
}

// chunk reads one chunk of a chat completion: its text, the length of its
// tool-call arguments, and the usage the last chunk carries; [DONE] ends
// the stream. When the usage is hidden, the chunk that carries it without
// choices is dropped and the others go without their "usage" member.
func (s *oaiNativeStream) chunk(ev RawEvent) Step {
	if string(ev.Data) == "[DONE]" {
		return Step{Last: true}
	}
	var c struct {
		Choices []struct {
			Delta struct {
				Content   string `json:"content"`
				ToolCalls []struct {
					Function struct {
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"delta"`
		} `json:"choices"`
		Usage *oaiNativeUsage `json:"usage"`
		Error *oaiError       `json:"error"`
	}
	if err := json.Unmarshal(ev.Data, &c); err != nil {
		return Step{Err: s.p.classify.Malformed(err)}
	}
	if c.Error != nil {
		return Step{Err: s.p.classify.Reported(c.Error.Message)}
	}
	step := Step{Data: SetString(ev.Data, s.answer, "model")}
	for _, choice := range c.Choices {
		step.Event.Text += choice.Delta.Content
		step.Event.Output += len(choice.Delta.Content)
		for _, call := range choice.Delta.ToolCalls {
			step.Event.Output += len(call.Function.Arguments)
		}
	}
	if c.Usage != nil {
		s.count(c.Usage, &step)
	}
	if s.hideUsage {
		step.Drop = c.Usage != nil && len(c.Choices) == 0
		step.Data = Remove(step.Data, "usage")
	}
	return step
}

// responseEvent reads one event of a Responses stream: response.created and
// response.in_progress are the prelude; deltas carry output;
// response.completed and response.incomplete end the stream with the usage,
// response.failed and error are the provider's failure.
func (s *oaiNativeStream) responseEvent(ev RawEvent) Step {
	var e struct {
		Type     string `json:"type"`
		Delta    string `json:"delta"`
		Message  string `json:"message"`
		Response *struct {
			Usage *oaiNativeUsage `json:"usage"`
			Error *oaiError       `json:"error"`
		} `json:"response"`
	}
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return Step{Err: s.p.classify.Malformed(err)}
	}
	var step Step
	if e.Response != nil {
		step.Data = SetString(ev.Data, s.answer, "response", "model")
		if e.Response.Usage != nil {
			s.count(e.Response.Usage, &step)
		}
	}
	switch e.Type {
	case "response.created", "response.in_progress", "response.queued":
		step.Hold = true
	case "response.output_text.delta":
		step.Event.Text, step.Event.Output = e.Delta, len(e.Delta)
	case "response.function_call_arguments.delta", "response.reasoning_text.delta", "response.reasoning_summary_text.delta",
		"response.refusal.delta", "response.custom_tool_call_input.delta":
		step.Event.Output = len(e.Delta)
	case "response.completed", "response.incomplete":
		step.Last = true
		if step.Err == nil && step.Event.Usage == nil {
			step.Err = s.p.classify.Malformed(errors.New("the stream ended without usage"))
		}
	case "response.failed":
		message := "the response failed"
		if e.Response != nil && e.Response.Error != nil {
			message = e.Response.Error.Message
		}
		step.Err = s.p.classify.Reported(message)
	case "error":
		step.Err = s.p.classify.Reported(e.Message)
	}
	return step
}
