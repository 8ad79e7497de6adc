package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/httpin"
	"github.com/tidygate/tidygate/internal/usagewire"
)

// The OpenAI Responses dialect: POST /v1/responses, answered as OpenAI's
// Response object or its event stream, with OpenAI's error shape, through
// the same governed call as chat completions. A response is stored for the
// caller's user when the request asks ("store", or RESPONSES_STORE_DEFAULT
// when it does not say), and a later request may continue from it
// (previous_response_id); the owner alone may read or delete it.

// responseJSON is OpenAI's Response object.
type responseJSON struct {
	ID                string               `json:"id"`
	Object            string               `json:"object"`
	CreatedAt         int64                `json:"created_at"`
	Status            string               `json:"status"` // in_progress, completed, incomplete, failed
	Model             string               `json:"model"`
	Output            []respOutJSON        `json:"output"`
	Usage             *usagewire.Responses `json:"usage"`
	Error             *respErrorJSON       `json:"error"`
	IncompleteDetails *respIncomplete      `json:"incomplete_details"`
	ParallelToolCalls bool                 `json:"parallel_tool_calls"`
	Store             bool                 `json:"store"`
	*respEcho                              // nil for a response stored without its settings
}

// respEcho is what a Response object repeats of its request, as OpenAI's
// does: the settings as the request gave them, OpenAI's defaults for tools,
// tool_choice and metadata, and null for the others when not given.
type respEcho struct {
	Instructions       *string           `json:"instructions"`
	Tools              []json.RawMessage `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Metadata           json.RawMessage   `json:"metadata"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	PreviousResponseID *string           `json:"previous_response_id"`
}

// settings is e as a stored response keeps it (domain.StoredResponse.Settings).
func (e *respEcho) settings() []byte {
	b, err := json.Marshal(e)
	if err != nil { // cannot happen: every value came from valid JSON
		return nil
	}
	return b
}

// storedEcho is the echo a stored response kept (settings), or nil when it
// was stored without one.
func storedEcho(settings []byte) *respEcho {
	var e respEcho
	if json.Unmarshal(settings, &e) != nil {
		return nil
	}
	return &e
}

// respOutJSON is an output item: a message, a function call or reasoning.
type respOutJSON struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Status string `json:"status,omitempty"`
	// message
	Role    string            `json:"role,omitempty"`
	Content []respOutPartJSON `json:"content,omitempty"`
	// function_call
	CallID    string  `json:"call_id,omitempty"`
	Name      string  `json:"name,omitempty"`
	Arguments *string `json:"arguments,omitempty"`
	// reasoning
	Summary          []respOutPartJSON `json:"summary,omitempty"`
	EncryptedContent string            `json:"encrypted_content,omitempty"`
}

// MarshalJSON writes a message's content and a reasoning item's summary
// even when empty, as clients parse items by those required fields (Codex
// drops an output_item.added without content, and every delta after it).
func (o respOutJSON) MarshalJSON() ([]byte, error) {
	type plain respOutJSON
	switch o.Type {
	case "message":
		return json.Marshal(struct {
			plain
			Content []respOutPartJSON `json:"content"`
		}{plain(o), nonNil(o.Content)})
	case "reasoning":
		return json.Marshal(struct {
			plain
			Summary []respOutPartJSON `json:"summary"`
		}{plain(o), nonNil(o.Summary)})
	}
	return json.Marshal(plain(o))
}

func nonNil(parts []respOutPartJSON) []respOutPartJSON {
	if parts == nil {
		return []respOutPartJSON{}
	}
	return parts
}

// respOutPartJSON is a content part of an output item. Annotations is
// written when not nil, even when empty: an output_text part always has it,
// as OpenAI's does, and the other parts never do.
type respOutPartJSON struct {
	Type        string `json:"type"` // output_text, reasoning_text, summary_text
	Text        string `json:"text"`
	Annotations []any  `json:"annotations,omitzero"`
}

type respErrorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type respIncomplete struct {
	Reason string `json:"reason"` // max_output_tokens, content_filter
}

func toRespUsage(u domain.Usage) *usagewire.Responses {
	out := usagewire.ResponsesOf(u)
	return &out
}

// respStatus is the Response's status and, when incomplete, why.
func respStatus(finish string) (string, *respIncomplete) {
	switch finish {
	case domain.FinishLength:
		return "incomplete", &respIncomplete{Reason: "max_output_tokens"}
	case domain.FinishContentFilter:
		return "incomplete", &respIncomplete{Reason: "content_filter"}
	}
	return "completed", nil
}

// itemStatus is the status of the last output item of a Response whose
// status is status: an answer cut short (incomplete) was cut short in its
// last item, as OpenAI reports it; the items before it are completed.
func itemStatus(status string) string {
	if status == "incomplete" {
		return "incomplete"
	}
	return "completed"
}

// respItemID is the id of an item of a response, tidygate's own: the
// prefix of the item's type, the response's request id, and pos, where the
// item is in the response: an output item's index (outputPos) or an input
// item's (inputPos). The last part, which holds no "_", tells the two
// apart, so that no two items of any responses have the same id.
func respItemID(prefix, requestID, pos string) string {
	return prefix + "_" + requestID + "_" + pos
}

// outputPos is the pos of the output item at index n.
func outputPos(n int) string { return strconv.Itoa(n) }

// inputPos is the pos of the input item at index n (input_items).
func inputPos(n int) string { return "in" + strconv.Itoa(n) }

// toRespItem is the output item for a block of an answer (and, listing a
// response's input items, for an assistant's block of its input), the
// item at pos (respItemID).
func toRespItem(b domain.Block, requestID, pos string) respOutJSON {
	switch b.Type {
	case domain.BlockToolCall:
		args := domain.ToolArguments(b.ToolCall.Arguments)
		return respOutJSON{Type: "function_call", ID: respItemID("fc", requestID, pos), Status: "completed",
			CallID: b.ToolCall.ID, Name: b.ToolCall.Name, Arguments: &args}
	case domain.BlockReasoning:
		item := respOutJSON{Type: "reasoning", ID: respItemID("rs", requestID, pos), Summary: []respOutPartJSON{},
			EncryptedContent: encryptedContent(b.Reasoning)}
		if b.Text != "" {
			item.Summary = append(item.Summary, respOutPartJSON{Type: "summary_text", Text: b.Text})
		}
		return item
	}
	return respOutJSON{Type: "message", ID: respItemID("msg", requestID, pos), Status: "completed", Role: "assistant",
		Content: []respOutPartJSON{{Type: "output_text", Text: b.Text, Annotations: []any{}}}}
}

// signaturePrefix marks a reasoning item's encrypted_content that holds a
// thinking block's signature (Anthropic's, on Anthropic or Bedrock) rather
// than OpenAI's encrypted reasoning. The Responses API has no field for a
// signature; a client that sends the item back, as Codex does, returns it
// unread, and the model that wrote the thinking gets it with its text (the
// item's summary) again.
const signaturePrefix = "tidygate-signature:"

// encryptedContent is the encrypted_content of a reasoning item.
func encryptedContent(r domain.Reasoning) string {
	if r.Signature != "" {
		return signaturePrefix + r.Signature
	}
	return r.Encrypted
}

// reasoningOf reads a reasoning item's encrypted_content back.
func reasoningOf(encrypted string) domain.Reasoning {
	if sig, ok := strings.CutPrefix(encrypted, signaturePrefix); ok {
		return domain.Reasoning{Signature: sig}
	}
	return domain.Reasoning{Encrypted: encrypted}
}

// responseID is the id of the response served for a request.
func responseID(requestID string) string { return "resp_" + requestID }

// responses serves POST /v1/responses. A request with previous_response_id
// continues from the caller's stored response: its input and output come
// before the request's input (its instructions do not carry over), so the
// call's worst case, and its reservation, include that history.
func (h *handler) responses(w http.ResponseWriter, r *http.Request) {
	in, ok := decodeRequest(h, w, r, decodeResponses)
	if !ok {
		return
	}
	ex := exchangeOf(r)
	if in.previous != "" {
		prev, err := h.gw.PreviousResponse(r.Context(), ex.caller, in.previous)
		if err != nil {
			h.writeError(w, r, h.gw.Refuse(r.Context(), h.call(r), endpointOf(r), in.req.Model, err))
			return
		}
		in.continueFrom(prev)
	}
	ex.restate = in.at.restate // bound now, once req's messages are final
	store := h.gw.StoresResponse(in.store)
	created := h.now()
	// A response that continues a stored one is translated: tidygate keeps
	// the conversation in its own form, so that any model can continue it,
	// and the provider need not know the stored response. Any other may pass
	// through; one tidygate stores is stored from the provider's answer
	// (responses_native.go).
	n := gateway.Native{Untranslatable: in.untranslatable}
	var only *domain.Error
	if in.previous == "" {
		n.Request = nativeRequest(r, domain.DialectOpenAIResponses, in.body, in.req.Stream)
	} else if errors.As(n.Untranslatable, &only) {
		stored := *only
		stored.Message += `; a request that continues a stored response (previous_response_id) is always translated: send the whole conversation in input instead`
		n.Untranslatable = &stored
	}
	if in.req.Stream {
		h.responsesStream(w, r, in, n, store, created)
		return
	}
	res, ok := h.runChat(w, r, in.req, n)
	if res.Native != nil && store {
		h.storePassed(r, in, res, res.Native.Body, created)
	}
	if !ok {
		return
	}
	resp := res.Response
	sr := domain.StoredResponse{ID: responseID(ex.id), CreatedAt: created, Model: res.ModelName(in.req.Model),
		FinishReason: resp.FinishReason, Usage: resp.Usage, ParallelToolCalls: !in.req.ToolChoice.NoParallel,
		Input: in.input, Output: resp.Parts()}
	stored := false
	if store {
		sr.Settings = in.echo.settings()
		stored = h.storeResponse(r, sr)
	}
	h.writeJSON(w, http.StatusOK, renderResponse(sr, stored, &in.echo))
}

// storeResponse keeps sr for the caller and reports whether it could. A
// response that cannot be stored is still answered, its "store" false, so
// that the client that paid for it gets it and knows it cannot build on it.
func (h *handler) storeResponse(r *http.Request, sr domain.StoredResponse) bool {
	ex := exchangeOf(r)
	err := h.gw.StoreResponse(context.WithoutCancel(r.Context()), ex.caller, sr)
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "storing a response failed; it is answered with store false",
			append(logAttrs(r, ex, http.StatusOK), slog.String("response_id", sr.ID), slog.String("err", err.Error()))...)
	}
	return err == nil
}

// renderResponse is the Response object of an answer, repeating echo of
// its request (nil: nothing): the one a call answers with, and the one GET
// /v1/responses/{id} serves for it.
func renderResponse(sr domain.StoredResponse, stored bool, echo *respEcho) responseJSON {
	requestID := strings.TrimPrefix(sr.ID, "resp_")
	out := responseJSON{ID: sr.ID, Object: "response", CreatedAt: sr.CreatedAt.Unix(), Model: sr.Model,
		Output: []respOutJSON{}, ParallelToolCalls: sr.ParallelToolCalls, Store: stored, Usage: toRespUsage(sr.Usage),
		respEcho: echo}
	out.Status, out.IncompleteDetails = respStatus(sr.FinishReason)
	for i, b := range sr.Output {
		out.Output = append(out.Output, toRespItem(b, requestID, outputPos(i)))
	}
	if n := len(out.Output); n > 0 && out.Output[n-1].Status != "" {
		out.Output[n-1].Status = itemStatus(out.Status)
	}
	return out
}

// getResponse serves GET /v1/responses/{id}: the caller's stored response,
// as its call answered it (without its output when the content policy kept
// none). Another user's response is not found, as an unknown one is.
func (h *handler) getResponse(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("stream"); v != "" && v != "false" {
		h.writeError(w, r, domain.InvalidParam("stream", "stream: retrieving a stored response as a stream is not supported; omit stream"))
		return
	}
	sr, err := h.gw.StoredResponse(r.Context(), exchangeOf(r).caller, httpin.PathValue(r, chi.URLParam(r, "id")))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, renderResponse(sr, true, storedEcho(sr.Settings)))
}

// deleteResponse serves DELETE /v1/responses/{id}, for the owner only.
func (h *handler) deleteResponse(w http.ResponseWriter, r *http.Request) {
	id := httpin.PathValue(r, chi.URLParam(r, "id"))
	if err := h.gw.DeleteStoredResponse(r.Context(), exchangeOf(r).caller, id); err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "response.deleted", "deleted": true})
}

func newResponse(requestID string, created int64, in *responsesInput) responseJSON {
	return responseJSON{ID: responseID(requestID), Object: "response", CreatedAt: created, Status: "in_progress",
		Model: in.req.Model, Output: []respOutJSON{}, ParallelToolCalls: !in.req.ToolChoice.NoParallel, respEcho: &in.echo}
}

// respStream writes one response as OpenAI's Responses events, numbered by
// sequence_number. Each block of the answer is an output item, opened when
// its first chunk arrives and closed when the next one opens or the answer ends.
type respStream struct {
	sse
	resp    responseJSON
	reqID   string
	seq     int
	started bool
	open    *respOutJSON // the open output item, nil when none is open
	last    int          // the domain index of the open item
}

// responsesStream runs a streaming call. Until the first chunk arrives, a
// failure is an ordinary error response; after it, the failure is sent as
// response.failed and the stream ends there.
// A response to be stored is stored before response.completed, whose
// "store" says whether it was. A response neither stored nor continuing
// one may pass through (n), its events the provider's.
func (h *handler) responsesStream(w http.ResponseWriter, r *http.Request, in responsesInput, n gateway.Native, store bool, created time.Time) {
	ex := exchangeOf(r)
	req := in.req
	s := &respStream{sse: sse{h: h, w: w, rc: http.NewResponseController(w), ex: ex},
		resp: newResponse(ex.id, created.Unix(), &in), reqID: ex.id}
	s.resp.Store = store
	passed := &nativeStream{sse: s.sse}
	n.Emit = passed.event
	var final []byte // the passed-through stream's Response object, to store
	if store {
		n.Emit = func(ev domain.NativeEvent) error {
			if resp, ok := finalResponse(ev.Raw); ok {
				final = resp
			}
			return passed.event(ev)
		}
	}
	res, err := h.gw.ChatNative(r.Context(), h.call(r), req, n, s.chunk)
	ex.waited(res.Result)
	if err == nil && res.Native != nil && final != nil {
		h.storePassed(r, in, res, final, created)
	}
	if err != nil && !s.started && !passed.started {
		h.writeError(w, r, err)
		return
	}
	if err == nil && res.Native == nil {
		if !s.started { // no chunk named the model answering
			s.resp.Model = res.ModelName(in.req.Model)
		}
		if store {
			resp := res.Response
			s.resp.Store = h.storeResponse(r, domain.StoredResponse{ID: s.resp.ID, CreatedAt: created, Model: s.resp.Model,
				FinishReason: resp.FinishReason, Usage: resp.Usage, ParallelToolCalls: s.resp.ParallelToolCalls,
				Input: in.input, Output: resp.Parts(), Settings: in.echo.settings()})
		}
		if werr := s.finish(res.Response.FinishReason, res.Response.Usage); werr != nil {
			h.log.LogAttrs(r.Context(), slog.LevelInfo, "stream ended before the client read it all",
				append(logAttrs(r, ex, http.StatusOK), slog.String("err", werr.Error()))...)
		}
	} else if err != nil {
		p := problemOf(err, ex.id)
		h.logFailure(r, p, err, slog.Bool("after_stream_start", true))
		s.resp.Status = "failed"
		code := p.code
		if code == "" {
			code = p.typ
		}
		s.resp.Error = &respErrorJSON{Code: code, Message: p.message}
		_ = s.emit("response.failed", map[string]any{"response": s.resp})
	}
	s.end(res.Result)
}

// emit sends one event of type typ with fields, numbered.
func (s *respStream) emit(typ string, fields map[string]any) error {
	fields["type"] = typ
	fields["sequence_number"] = s.seq
	s.seq++
	return s.event(typ, fields)
}

// start sends the headers, response.created and response.in_progress, once.
func (s *respStream) start() error {
	if s.started {
		return nil
	}
	s.started = true
	s.begin()
	if err := s.emit("response.created", map[string]any{"response": s.resp}); err != nil {
		return err
	}
	return s.emit("response.in_progress", map[string]any{"response": s.resp})
}

// chunk translates one piece of the answer into output item events.
func (s *respStream) chunk(c domain.ChatChunk) error {
	if c.Model != "" && !s.started {
		s.resp.Model = c.Model // response.created, sent with the first chunk, names the model answering
	}
	if err := s.start(); err != nil {
		return err
	}
	if opensBlock(c, s.open != nil, s.last) {
		start := domain.TextBlock("")
		if c.Start != nil {
			start = *c.Start
		}
		if c.ReasoningDelta != "" && c.Start == nil {
			start = domain.Block{Type: domain.BlockReasoning}
		}
		if err := s.openItem(c.Index, start); err != nil {
			return err
		}
	}
	item, n := s.open, len(s.resp.Output)
	if item == nil {
		return nil
	}
	switch item.Type {
	case "message":
		if c.Delta == "" {
			return nil
		}
		item.Content[0].Text += c.Delta
		return s.emit("response.output_text.delta", map[string]any{"item_id": item.ID, "output_index": n,
			"content_index": 0, "delta": c.Delta, "logprobs": []any{}})
	case "function_call":
		if c.ArgumentsDelta == "" {
			return nil
		}
		*item.Arguments += c.ArgumentsDelta
		return s.emit("response.function_call_arguments.delta", map[string]any{"item_id": item.ID, "output_index": n,
			"delta": c.ArgumentsDelta})
	case "reasoning":
		if c.Signature != "" {
			item.EncryptedContent = encryptedContent(domain.Reasoning{Signature: c.Signature})
		}
		if c.ReasoningDelta == "" {
			return nil
		}
		item.Summary[0].Text += c.ReasoningDelta
		return s.emit("response.reasoning_summary_text.delta", map[string]any{"item_id": item.ID, "output_index": n,
			"summary_index": 0, "delta": c.ReasoningDelta})
	}
	return nil
}

// openItem closes the open item and opens the next one, empty.
func (s *respStream) openItem(index int, b domain.Block) error {
	if err := s.closeItem("completed"); err != nil {
		return err
	}
	n := len(s.resp.Output)
	item := toRespItem(b, s.reqID, outputPos(n))
	item.Status = "in_progress"
	switch item.Type {
	case "message":
		item.Content = []respOutPartJSON{{Type: "output_text", Text: "", Annotations: []any{}}}
	case "function_call":
		empty := ""
		item.Arguments = &empty
	case "reasoning":
		item.Status = ""
		item.Summary = []respOutPartJSON{}
	}
	s.open, s.last = &item, index
	added := item
	if added.Type == "message" {
		added.Content = []respOutPartJSON{}
	}
	if err := s.emit("response.output_item.added", map[string]any{"output_index": n, "item": added}); err != nil {
		return err
	}
	switch item.Type {
	case "message":
		return s.emit("response.content_part.added", map[string]any{"item_id": item.ID, "output_index": n,
			"content_index": 0, "part": item.Content[0]})
	case "reasoning":
		item.Summary = []respOutPartJSON{{Type: "summary_text"}}
		return s.emit("response.reasoning_summary_part.added", map[string]any{"item_id": item.ID, "output_index": n,
			"summary_index": 0, "part": item.Summary[0]})
	}
	return nil
}

// closeItem sends the done events of the open item, with status (a
// message's or a function call's: completed, or incomplete when the answer
// was cut short in it), and adds it to the output.
func (s *respStream) closeItem(status string) error {
	item := s.open
	if item == nil {
		return nil
	}
	s.open = nil
	n := len(s.resp.Output)
	switch item.Type {
	case "message":
		part := item.Content[0]
		if err := s.emit("response.output_text.done", map[string]any{"item_id": item.ID, "output_index": n,
			"content_index": 0, "text": part.Text, "logprobs": []any{}}); err != nil {
			return err
		}
		if err := s.emit("response.content_part.done", map[string]any{"item_id": item.ID, "output_index": n,
			"content_index": 0, "part": part}); err != nil {
			return err
		}
		item.Status = status
	case "function_call":
		*item.Arguments = domain.ToolArguments(*item.Arguments)
		if err := s.emit("response.function_call_arguments.done", map[string]any{"item_id": item.ID, "output_index": n,
			"name": item.Name, "arguments": *item.Arguments}); err != nil {
			return err
		}
		item.Status = status
	case "reasoning":
		part := item.Summary[0]
		if err := s.emit("response.reasoning_summary_text.done", map[string]any{"item_id": item.ID, "output_index": n,
			"summary_index": 0, "text": part.Text}); err != nil {
			return err
		}
		if err := s.emit("response.reasoning_summary_part.done", map[string]any{"item_id": item.ID, "output_index": n,
			"summary_index": 0, "part": part}); err != nil {
			return err
		}
	}
	s.resp.Output = append(s.resp.Output, *item)
	return s.emit("response.output_item.done", map[string]any{"output_index": n, "item": *item})
}

// finish closes the open item and sends response.completed, or
// response.incomplete when the answer was cut short, with the usage.
func (s *respStream) finish(finish string, u domain.Usage) error {
	if err := s.start(); err != nil {
		return err
	}
	status, incomplete := respStatus(finish)
	if err := s.closeItem(itemStatus(status)); err != nil {
		return err
	}
	s.resp.Status, s.resp.IncompleteDetails = status, incomplete
	s.resp.Usage = toRespUsage(u)
	return s.emit("response."+s.resp.Status, map[string]any{"response": s.resp})
}
