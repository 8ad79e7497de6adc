package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// A Responses request that tidygate stores passes through like any other
// when its model's provider takes the Responses API as it is: the provider
// answers (and stores its own copy when the request asks it to), and
// tidygate keeps its copy of the answer under the provider's response id,
// read from the provider's Response object, so that GET, DELETE and
// previous_response_id find it among the caller's own. A request that
// continues a stored response is translated (see responses).

// passedResponseJSON is what tidygate reads of a provider's Response object.
type passedResponseJSON struct {
	ID                string          `json:"id"`
	Status            string          `json:"status"`
	IncompleteDetails *respIncomplete `json:"incomplete_details"`
	Output            json.RawMessage `json:"output"`
}

// storePassed keeps a passed-through answer for the caller, from resp, the
// provider's Response object; the answer is already written, so a failure
// is only logged.
func (h *handler) storePassed(r *http.Request, in responsesInput, res gateway.ChatResult, resp []byte, created time.Time) {
	sr, err := passedResponse(resp)
	if err == nil {
		sr.CreatedAt, sr.Model, sr.Input = created, res.ModelName(in.req.Model), sentInput(in)
		sr.Usage, sr.ParallelToolCalls, sr.Settings = res.Native.Usage, !in.req.ToolChoice.NoParallel, in.echo.settings()
		h.storeResponse(r, sr)
		return
	}
	ex := exchangeOf(r)
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "a passed-through response could not be read, so it is not stored",
		append(logAttrs(r, ex, http.StatusOK), slog.String("err", err.Error()))...)
}

// passedResponse reads the id, the outcome and the output of a provider's
// Response object. Output items of types tidygate does not know (hosted
// tools' calls) are left out of the stored copy.
func passedResponse(body []byte) (domain.StoredResponse, error) {
	var w passedResponseJSON
	if err := json.Unmarshal(body, &w); err != nil {
		return domain.StoredResponse{}, err
	}
	if w.ID == "" {
		return domain.StoredResponse{}, errors.New("the response has no id")
	}
	sr := domain.StoredResponse{ID: w.ID, FinishReason: domain.FinishStop}
	if firstByte(w.Output) == '[' && !bytes.Equal(bytes.TrimSpace(w.Output), []byte("[]")) {
		d := respDecoder{verbatim: true}
		msgs, err := d.input(w.Output)
		if err != nil {
			return domain.StoredResponse{}, err
		}
		for _, m := range msgs {
			sr.Output = append(sr.Output, m.Parts()...)
		}
	}
	switch {
	case w.Status == "incomplete" && w.IncompleteDetails != nil && w.IncompleteDetails.Reason == "max_output_tokens":
		sr.FinishReason = domain.FinishLength
	case w.Status == "incomplete" && w.IncompleteDetails != nil && w.IncompleteDetails.Reason == "content_filter":
		sr.FinishReason = domain.FinishContentFilter
	case hasToolCall(sr.Output):
		sr.FinishReason = domain.FinishToolCalls
	}
	return sr, nil
}

// sentInput is the input of in, a passed-through request, as the client
// sent it. It is in's own input unless that holds something the domain
// request could not (a function call's arguments that are not a JSON
// object): then the input is read again, verbatim.
func sentInput(in responsesInput) []domain.Message {
	if in.untranslatable == nil {
		return in.input
	}
	var w struct {
		Input json.RawMessage `json:"input"`
	}
	d := respDecoder{verbatim: true}
	if json.Unmarshal(in.body, &w) != nil {
		return in.input
	}
	msgs, err := d.input(w.Input)
	if err != nil {
		return in.input
	}
	return msgs
}

func hasToolCall(blocks []domain.Block) bool {
	for _, b := range blocks {
		if b.Type == domain.BlockToolCall {
			return true
		}
	}
	return false
}

// finalResponse returns the Response object of a passed-through stream's
// last event (response.completed or response.incomplete), if ev is that
// event.
func finalResponse(ev []byte) ([]byte, bool) {
	if !bytes.Contains(ev, []byte(`"response.completed"`)) && !bytes.Contains(ev, []byte(`"response.incomplete"`)) {
		return nil, false // cheap: most events are deltas
	}
	_, data, ok := bytes.Cut(ev, []byte("data:"))
	if !ok {
		return nil, false
	}
	var w struct {
		Type     string          `json:"type"`
		Response json.RawMessage `json:"response"`
	}
	if json.Unmarshal(bytes.TrimSpace(data), &w) != nil || (w.Type != "response.completed" && w.Type != "response.incomplete") {
		return nil, false
	}
	return w.Response, len(w.Response) > 0
}
