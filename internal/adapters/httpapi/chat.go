package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/usagewire"
)

// Headers that say who answered a call and what it cost. Streams send them
// as trailers, since they are known only once the stream has ended.
const (
	modelHeader      = "X-Tidygate-Model"
	providerHeader   = "X-Tidygate-Provider"
	deploymentHeader = "X-Tidygate-Deployment"
	attemptsHeader   = "X-Tidygate-Attempts"
	costHeader       = "X-Tidygate-Cost-Usd"
)

// streamTrailers announces the trailers of a stream.
const streamTrailers = modelHeader + ", " + providerHeader + ", " + deploymentHeader + ", " + attemptsHeader + ", " + costHeader + ", " + overheadHeader

// runChat runs a non-streamed chat call for any dialect's handler, n being
// the request as the client sent it; when it fails, the error is written in
// the request's dialect and ok is false. A passed-through answer is
// written here too (ok is false: nothing is left to write); a translated
// one is left to the dialect's handler, its headers set.
func (h *handler) runChat(w http.ResponseWriter, r *http.Request, req domain.ChatRequest, n gateway.Native) (res gateway.ChatResult, ok bool) {
	res, err := h.gw.ChatNative(r.Context(), h.call(r), req, n, nil)
	exchangeOf(r).waited(res.Result)
	switch {
	case err != nil:
		h.writeError(w, r, err)
		return res, false
	case res.Native != nil:
		h.writeNative(w, res)
		return res, false
	}
	setResultHeaders(w, res.Result, modeTranslated)
	return res, true
}

// setResultHeaders sets the headers that say who answered and what it
// cost, and, unless mode is empty, how the answer was obtained.
func setResultHeaders(w http.ResponseWriter, res gateway.Result, mode string) {
	pairs := [...]string{modelHeader, res.Model.Name, providerHeader, res.Model.Provider,
		deploymentHeader, res.Deployment().Name(), attemptsHeader, strconv.Itoa(res.Attempts), costHeader, usd(res.Cost),
		modeHeader, mode}
	if mode == "" {
		setHeaders(w, pairs[:len(pairs)-2]...)
		return
	}
	setHeaders(w, pairs[:]...)
}

// chatCompletionJSON is the OpenAI chat.completion object.
type chatCompletionJSON struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices [1]chatChoiceJSON `json:"choices"` // encoded as an array, as a slice would be
	Usage   usagewire.Chat    `json:"usage"`
}

type chatChoiceJSON struct {
	Index        int                  `json:"index"`
	Message      assistantMessageJSON `json:"message"`
	Logprobs     *struct{}            `json:"logprobs"` // always null
	FinishReason string               `json:"finish_reason"`
}

type assistantMessageJSON struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"` // null when the answer is tool calls only
	Refusal   *string        `json:"refusal"` // always null
	ToolCalls []toolCallJSON `json:"tool_calls,omitempty"`
}

// assistantMessage writes an answer: its text, and its tool calls.
func assistantMessage(resp domain.ChatResponse) assistantMessageJSON {
	out := assistantMessageJSON{Role: string(domain.RoleAssistant)}
	text := resp.Content
	for _, b := range resp.Parts() {
		if b.Type == domain.BlockToolCall {
			out.ToolCalls = append(out.ToolCalls, toolCallJSON{ID: b.ToolCall.ID, Type: "function",
				Function: toolCallFuncJSON{Name: b.ToolCall.Name, Arguments: b.ToolCall.Arguments}})
		}
	}
	if text != "" || len(out.ToolCalls) == 0 {
		out.Content = &text
	}
	return out
}

// completionID is the id of the completion served for a request.
func completionID(requestID string) string { return "chatcmpl-" + requestID }

func finishReason(reason string) string {
	if reason == "" {
		return "stop"
	}
	return reason
}

// chat serves POST /v1/chat/completions.
func (h *handler) chat(w http.ResponseWriter, r *http.Request) {
	in, ok := decodeRequest(h, w, r, decodeChat)
	if !ok {
		return
	}
	n := gateway.Native{Request: nativeRequest(r, domain.DialectOpenAIChat, in.body, in.req.Stream), Untranslatable: in.untranslatable}
	if in.req.Stream {
		h.chatStream(w, r, in, n)
		return
	}
	ex := exchangeOf(r)
	res, ok := h.runChat(w, r, in.req, n)
	if !ok {
		return
	}
	c := completions.Get().(*chatCompletionJSON)
	*c = chatCompletionJSON{
		ID: completionID(ex.id), Object: "chat.completion", Created: unixOrNow(res.Response.Created, h.now), Model: res.ModelName(in.req.Model),
		Choices: [1]chatChoiceJSON{{
			Message:      assistantMessage(res.Response),
			FinishReason: finishReason(res.Response.FinishReason),
		}},
		Usage: usagewire.ChatOf(res.Response.Usage),
	}
	h.writeJSON(w, http.StatusOK, c)
	*c = chatCompletionJSON{} // refers to nothing of the call while pooled
	completions.Put(c)
}

// completions hold the chat completions being encoded, which writeJSON
// does not keep.
var completions = sync.Pool{New: func() any { return new(chatCompletionJSON) }}

// chunkJSON is the OpenAI chat.completion.chunk object.
type chunkJSON struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []chunkChoiceJSON `json:"choices"`
	Usage   chunkUsage        `json:"usage,omitzero"`
}

type chunkChoiceJSON struct {
	Index        int       `json:"index"`
	Delta        deltaJSON `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"` // always null
	FinishReason *string   `json:"finish_reason"`
}

type deltaJSON struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	ToolCalls []toolDeltaJSON `json:"tool_calls,omitempty"`
}

// toolDeltaJSON is a piece of a streamed tool call: the first piece of call
// Index carries its id, type and name, the next ones fragments of its arguments.
type toolDeltaJSON struct {
	Index    int               `json:"index"`
	ID       string            `json:"id,omitempty"`
	Type     string            `json:"type,omitempty"`
	Function toolDeltaFuncJSON `json:"function"`
}

type toolDeltaFuncJSON struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// chunkUsage is a chunk's usage field: absent unless the client asked for
// usage, then null on every chunk but the last.
type chunkUsage struct {
	included bool
	usage    *usagewire.Chat
}

// IsZero makes omitzero leave the field out when usage was not asked for.
func (u chunkUsage) IsZero() bool { return !u.included }

// MarshalJSON writes the usage, or null.
func (u chunkUsage) MarshalJSON() ([]byte, error) { return json.Marshal(u.usage) }

// stream writes one chat completion as server-sent events.
type stream struct {
	sse
	model        string // the model answering, once a chunk names it (until then, as asked for)
	created      int64
	includeUsage bool
	started      bool
	toolCalls    map[int]int // content block index → tool call index
	argued       []bool      // by tool call index: whether arguments were sent
}

// chatStream runs a streaming call, passed through or translated. Until the
// first event is sent, a failure is an ordinary error response; after it,
// the failure is sent as an error event and the stream ends without [DONE].
func (h *handler) chatStream(w http.ResponseWriter, r *http.Request, in chatInput, n gateway.Native) {
	ex := exchangeOf(r)
	s := &stream{sse: sse{h: h, w: w, rc: http.NewResponseController(w), ex: ex}, model: in.req.Model,
		created: h.now().Unix(), includeUsage: in.includeUsage}
	passed := &nativeStream{sse: s.sse}
	n.Emit = passed.event
	lastFinish := ""
	res, err := h.gw.ChatNative(r.Context(), h.call(r), in.req, n, func(c domain.ChatChunk) error {
		if c.Model != "" {
			s.model = c.Model // every chunk names the model answering
		}
		if err := s.start(); err != nil {
			return err
		}
		if c.FinishReason != "" {
			lastFinish = c.FinishReason
		}
		return s.piece(c)
	})
	ex.waited(res.Result)
	if err != nil && !s.started && !passed.started {
		h.writeError(w, r, err)
		return
	}
	if err == nil && res.Native == nil {
		if !s.started { // no chunk named the model answering
			s.model = res.ModelName(in.req.Model)
		}
		reason := res.Response.FinishReason
		if reason == "" {
			reason = lastFinish
		}
		if werr := s.finish(finishReason(reason), res.Response.Usage); werr != nil {
			h.log.LogAttrs(r.Context(), slog.LevelInfo, "stream ended before the client read it all",
				append(logAttrs(r, ex, http.StatusOK), slog.String("err", werr.Error()))...)
		}
	} else if err != nil {
		p := problemOf(err, ex.id)
		h.logFailure(r, p, err, slog.Bool("after_stream_start", true))
		_ = s.send(p.body())
	}
	s.end(res.Result)
}

// start sends the status line, the headers and the role chunk, once.
func (s *stream) start() error {
	if s.started {
		return nil
	}
	s.started = true
	s.begin()
	empty := ""
	return s.send(s.chunk(deltaJSON{Role: string(domain.RoleAssistant), Content: &empty}, nil))
}

// piece sends a chunk's text or tool call piece, if it has one.
func (s *stream) piece(c domain.ChatChunk) error {
	if c.Start != nil && c.Start.Type == domain.BlockToolCall {
		if s.toolCalls == nil {
			s.toolCalls = map[int]int{}
		}
		k := len(s.toolCalls)
		s.toolCalls[c.Index] = k
		s.argued = append(s.argued, false)
		return s.send(s.chunk(deltaJSON{ToolCalls: []toolDeltaJSON{{Index: k, ID: c.Start.ToolCall.ID, Type: "function",
			Function: toolDeltaFuncJSON{Name: c.Start.ToolCall.Name}}}}, nil))
	}
	if k, ok := s.toolCalls[c.Index]; ok && c.ArgumentsDelta != "" {
		return s.arguments(k, c.ArgumentsDelta)
	}
	if c.Delta == "" {
		return nil
	}
	return s.send(s.chunk(deltaJSON{Content: &c.Delta}, nil))
}

// arguments sends a piece of tool call k's arguments.
func (s *stream) arguments(k int, piece string) error {
	s.argued[k] = true
	return s.send(s.chunk(deltaJSON{ToolCalls: []toolDeltaJSON{{Index: k, Function: toolDeltaFuncJSON{Arguments: piece}}}}, nil))
}

// finish sends the arguments of the tool calls that got none (a JSON
// object, as OpenAI always sends: "{}"), the finish_reason chunk, the usage
// chunk if asked for, and [DONE].
func (s *stream) finish(reason string, u domain.Usage) error {
	if err := s.start(); err != nil {
		return err
	}
	for k, argued := range s.argued {
		if !argued {
			if err := s.arguments(k, domain.ToolArguments("")); err != nil {
				return err
			}
		}
	}
	if err := s.send(s.chunk(deltaJSON{}, &reason)); err != nil {
		return err
	}
	if s.includeUsage {
		final := s.chunk(deltaJSON{}, nil)
		final.Choices = []chunkChoiceJSON{}
		usage := usagewire.ChatOf(u)
		final.Usage.usage = &usage
		if err := s.send(final); err != nil {
			return err
		}
	}
	return s.write([]byte("data: [DONE]\n\n"))
}

func (s *stream) chunk(delta deltaJSON, finish *string) chunkJSON {
	return chunkJSON{ID: completionID(s.ex.id), Object: "chat.completion.chunk", Created: s.created, Model: s.model,
		Choices: []chunkChoiceJSON{{Delta: delta, FinishReason: finish}},
		Usage:   chunkUsage{included: s.includeUsage}}
}

// usd formats micro-dollars as a decimal number of dollars, e.g. "0.001250".
func usd(m domain.Micros) string {
	var b [24]byte // the sign, 13 digits of dollars, the point and 6 of micro-dollars
	out := b[:0]
	if m < 0 {
		out, m = append(out, '-'), -m
	}
	out = strconv.AppendInt(out, int64(m/domain.MicrosPerUSD), 10)
	frac := int64(m % domain.MicrosPerUSD)
	out = append(out, '.')
	for div := int64(domain.MicrosPerUSD / 10); div > 0; div /= 10 {
		out = append(out, byte('0'+frac/div%10))
	}
	return string(out)
}

// unixOrNow returns t as Unix seconds, or now when t is unset.
func unixOrNow(t time.Time, now func() time.Time) int64 {
	if t.IsZero() {
		return now().Unix()
	}
	return t.Unix()
}
