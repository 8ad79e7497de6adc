package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/usagewire"
)

// The Anthropic Messages dialect: POST /v1/messages (also with ?beta=true,
// as Claude Code sends it) and POST /v1/messages/count_tokens, answered in
// Anthropic's JSON, event stream and error shapes, through the same governed
// call as chat completions.

// anthMessageResponseJSON is Anthropic's Message object.
type anthMessageResponseJSON struct {
	ID           string              `json:"id"`
	Type         string              `json:"type"`
	Role         string              `json:"role"`
	Model        string              `json:"model"`
	Content      []anthBlockJSON     `json:"content"`
	StopReason   *string             `json:"stop_reason"`
	StopSequence *string             `json:"stop_sequence"`
	Usage        usagewire.Anthropic `json:"usage"`
}

// anthStopReason is Anthropic's word for why the model stopped.
func anthStopReason(finish, stopSequence string) string {
	switch finish {
	case domain.FinishLength:
		return "max_tokens"
	case domain.FinishToolCalls:
		return "tool_use"
	case domain.FinishContentFilter:
		return "refusal"
	}
	if stopSequence != "" {
		return "stop_sequence"
	}
	return "end_turn"
}

// toAnthBlock is a response content block in Anthropic's shape.
func toAnthBlock(b domain.Block) anthBlockJSON {
	switch b.Type {
	case domain.BlockToolCall:
		input := json.RawMessage(b.ToolCall.Arguments)
		if !json.Valid(input) {
			input = json.RawMessage("{}")
		}
		return anthBlockJSON{Type: "tool_use", ID: b.ToolCall.ID, Name: b.ToolCall.Name, Input: input}
	case domain.BlockReasoning:
		if b.Text == "" && b.Reasoning.Encrypted != "" {
			return anthBlockJSON{Type: "redacted_thinking", Data: b.Reasoning.Encrypted}
		}
		text, sig := b.Text, b.Reasoning.Signature
		return anthBlockJSON{Type: "thinking", Thinking: &text, Signature: &sig}
	}
	text := b.Text
	return anthBlockJSON{Type: "text", Text: &text}
}

// messageID is the id of the message served for a request.
func messageID(requestID string) string { return "msg_" + requestID }

// messages serves POST /v1/messages.
func (h *handler) messages(w http.ResponseWriter, r *http.Request) {
	in, ok := decodeRequest(h, w, r, decodeMessages)
	if !ok {
		return
	}
	n := gateway.Native{Request: nativeRequest(r, domain.DialectAnthropicMessages, in.body, in.req.Stream), Untranslatable: in.untranslatable}
	if in.req.Stream {
		h.messagesStream(w, r, in.req, n)
		return
	}
	ex := exchangeOf(r)
	res, ok := h.runChat(w, r, in.req, n)
	if !ok {
		return
	}
	resp := res.Response
	out := anthMessageResponseJSON{ID: messageID(ex.id), Type: "message", Role: "assistant",
		Model: res.ModelName(in.req.Model), Content: []anthBlockJSON{}, Usage: usagewire.AnthropicOf(resp.Usage)}
	for _, b := range resp.Parts() {
		out.Content = append(out.Content, toAnthBlock(b))
	}
	reason := anthStopReason(resp.FinishReason, resp.StopSequence)
	out.StopReason = &reason
	if resp.StopSequence != "" {
		out.StopSequence = &resp.StopSequence
	}
	h.writeJSON(w, http.StatusOK, out)
}

// countTokensJSON is the answer of POST /v1/messages/count_tokens.
type countTokensJSON struct {
	InputTokens int `json:"input_tokens"`
}

// countTokens serves POST /v1/messages/count_tokens, for a model the caller
// may use, with an audit reason as a call needs: the count of the model's
// provider when it counts the request as the client sent it (Anthropic),
// recorded as a call is, else tidygate's estimate, the mode header saying
// which. It costs nothing.
func (h *handler) countTokens(w http.ResponseWriter, r *http.Request) {
	in, ok := decodeRequest(h, w, r, decodeCountTokens)
	if !ok {
		return
	}
	n, err := h.gw.CountTokens(r.Context(), h.call(r), in.req, nativeRequest(r, domain.DialectAnthropicMessages, in.body, false))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	mode := modeEstimated
	if n.ByProvider {
		mode = modePassThrough
	}
	w.Header().Set(modeHeader, mode)
	h.writeJSON(w, http.StatusOK, countTokensJSON{InputTokens: n.Tokens})
}

// anthStream writes one message as Anthropic's server-sent events.
type anthStream struct {
	sse
	id      string
	model   string
	started bool
	open    int // index of the open content block, -1 when none is open
	opened  int // content blocks started so far
	last    int // the domain index of the open block
}

// messagesStream runs a streaming call, passed through or translated. Until
// the first event is sent, a failure is an ordinary error response; after
// it, the failure is sent as an error event and the stream ends without
// message_stop.
func (h *handler) messagesStream(w http.ResponseWriter, r *http.Request, req domain.ChatRequest, n gateway.Native) {
	ex := exchangeOf(r)
	s := &anthStream{sse: sse{h: h, w: w, rc: http.NewResponseController(w), ex: ex},
		id: messageID(ex.id), model: req.Model, open: -1}
	passed := &nativeStream{sse: s.sse}
	n.Emit = passed.event
	res, err := h.gw.ChatNative(r.Context(), h.call(r), req, n, s.chunk)
	ex.waited(res.Result)
	if err != nil && !s.started && !passed.started {
		h.writeError(w, r, err)
		return
	}
	if err == nil && res.Native == nil {
		if !s.started { // no chunk named the model answering
			s.model = res.ModelName(req.Model)
		}
		resp := res.Response
		if werr := s.finish(resp.FinishReason, resp.StopSequence, resp.Usage); werr != nil {
			h.log.LogAttrs(r.Context(), slog.LevelInfo, "stream ended before the client read it all",
				append(logAttrs(r, ex, http.StatusOK), slog.String("err", werr.Error()))...)
		}
	} else if err != nil {
		p := anthropicProblemOf(err, ex.id)
		h.logFailure(r, p, err, slog.Bool("after_stream_start", true))
		_ = s.event("error", anthError(p, ex.id))
	}
	s.end(res.Result)
}

// start sends the headers, message_start and a ping, once.
func (s *anthStream) start() error {
	if s.started {
		return nil
	}
	s.started = true
	s.begin()
	msg := anthMessageResponseJSON{ID: s.id, Type: "message", Role: "assistant", Model: s.model, Content: []anthBlockJSON{}}
	if err := s.event("message_start", struct {
		Type    string                  `json:"type"`
		Message anthMessageResponseJSON `json:"message"`
	}{"message_start", msg}); err != nil {
		return err
	}
	return s.event("ping", struct {
		Type string `json:"type"`
	}{"ping"})
}

// chunk translates one piece of the answer into content block events.
// Every chunk names the model answering, and message_start, sent with the first
// chunk, names it, as the unstreamed answer does.
func (s *anthStream) chunk(c domain.ChatChunk) error {
	if c.Model != "" && !s.started {
		s.model = c.Model
	}
	if err := s.start(); err != nil {
		return err
	}
	if opensBlock(c, s.open >= 0, s.last) {
		start := domain.TextBlock("")
		if c.Start != nil {
			start = *c.Start
		}
		if err := s.startBlock(c.Index, start); err != nil {
			return err
		}
	}
	deltas := []struct {
		typ, field, value string
	}{
		{"thinking_delta", "thinking", c.ReasoningDelta},
		{"signature_delta", "signature", c.Signature},
		{"text_delta", "text", c.Delta},
		{"input_json_delta", "partial_json", c.ArgumentsDelta},
	}
	for _, d := range deltas {
		if d.value == "" {
			continue
		}
		if err := s.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.open,
			"delta": map[string]string{"type": d.typ, d.field: d.value}}); err != nil {
			return err
		}
	}
	return nil
}

// opensBlock reports whether chunk c begins a new block of the answer (a
// content block, or an output item): it says so (Start), or it carries
// content for another block than the open one, if one is open (the index
// of the last block begun is last). A chunk without content, such as the
// final one with the finish reason and usage, begins none, whatever its
// index.
func opensBlock(c domain.ChatChunk, open bool, last int) bool {
	return c.Start != nil || (hasContent(c) && (!open || c.Index != last))
}

func hasContent(c domain.ChatChunk) bool {
	return c.Delta != "" || c.ArgumentsDelta != "" || c.ReasoningDelta != "" || c.Signature != ""
}

// startBlock closes the open block and starts the next one, empty.
func (s *anthStream) startBlock(index int, b domain.Block) error {
	if err := s.stopBlock(); err != nil {
		return err
	}
	s.open, s.last = s.opened, index
	s.opened++
	block := toAnthBlock(b)
	switch block.Type {
	case "text":
		empty := ""
		block.Text = &empty
	case "tool_use":
		block.Input = json.RawMessage("{}")
	case "thinking":
		empty := ""
		block.Thinking, block.Signature = &empty, &empty
	}
	return s.event("content_block_start", struct {
		Type         string        `json:"type"`
		Index        int           `json:"index"`
		ContentBlock anthBlockJSON `json:"content_block"`
	}{"content_block_start", s.open, block})
}

func (s *anthStream) stopBlock() error {
	if s.open < 0 {
		return nil
	}
	index := s.open
	s.open = -1
	return s.event("content_block_stop", struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}{"content_block_stop", index})
}

// finish closes the open block and sends message_delta, with the stop
// reason and the whole usage, and message_stop.
func (s *anthStream) finish(finish, stopSequence string, u domain.Usage) error {
	if err := s.start(); err != nil {
		return err
	}
	if err := s.stopBlock(); err != nil {
		return err
	}
	var seq *string
	if stopSequence != "" {
		seq = &stopSequence
	}
	if err := s.event("message_delta", struct {
		Type  string `json:"type"`
		Delta struct {
			StopReason   string  `json:"stop_reason"`
			StopSequence *string `json:"stop_sequence"`
		} `json:"delta"`
		Usage usagewire.Anthropic `json:"usage"`
	}{Type: "message_delta", Delta: struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}{anthStopReason(finish, stopSequence), seq}, Usage: usagewire.AnthropicOf(u)}); err != nil {
		return err
	}
	return s.event("message_stop", struct {
		Type string `json:"type"`
	}{"message_stop"})
}
