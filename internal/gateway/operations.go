package gateway

import (
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// chatOp is a chat completion, streamed when emit is set.
type chatOp struct {
	req  domain.ChatRequest
	emit func(domain.ChatChunk) error // nil: not streamed

	resp      domain.ChatResponse // the answer, once a provider gave one
	done      bool                // a provider answered in full
	attempt   *attempt            // the attempt in progress
	started   bool                // the client has seen part of an answer
	clientErr error               // what emit returned when the client stopped reading
	text      strings.Builder     // the answer's text received so far
	output    int                 // bytes of output received so far: text, tool-call arguments, reasoning
	reported  *domain.Usage       // the provider's count, if a chunk carried it
}

func (o *chatOp) endpoint() domain.Endpoint   { return domain.EndpointChat }
func (o *chatOp) modelType() domain.ModelType { return domain.ModelChat }
func (o *chatOp) validate() error             { return o.req.Validate() }
func (o *chatOp) retryable() bool             { return !o.started }
func (o *chatOp) clientError() error          { return o.clientErr }
func (o *chatOp) streams() bool               { return o.emit != nil }

// answer records the answer's text, or the part of it received before the
// call was cut short.
func (o *chatOp) answer(rec *domain.CallRecord) {
	if o.done {
		rec.Output = o.resp.Content
		rec.OutputBlocks = o.resp.Blocks
		return
	}
	rec.Output = o.text.String()
}

// consumed is the provider's count of a complete answer; for a stream cut
// short, the count if a chunk carried it, else ConsumedChat's estimate of
// the prompt and the output received; nothing when no answer began.
func (o *chatOp) consumed(m domain.Model) (domain.Usage, bool) {
	switch {
	case o.done:
		return o.resp.Usage, true
	case o.reported != nil:
		return *o.reported, true
	case o.started:
		return domain.ConsumedChat(o.req, domain.OutputCap(o.req, m), o.output), true
	}
	return domain.Usage{}, false
}

func (o *chatOp) describe(rec *domain.CallRecord) {
	rec.RequestedModel = o.req.Model
	rec.ClientUser = o.req.User
	rec.Messages = o.req.Messages
	rec.Tools = o.req.Tools
	rec.Stream = o.req.Stream
	rec.Temperature = o.req.Temperature
	rec.MaxTokens = o.req.MaxTokens
}

// worstCase refuses a max_tokens above the model's cap; otherwise the
// request's worst case on m is every prompt byte plus m's output cap.
func (o *chatOp) worstCase(m domain.Model) (domain.Usage, error) {
	if o.req.MaxTokens > m.MaxOutputTokens {
		return domain.Usage{}, domain.InvalidParam("max_tokens",
			"max_tokens %d exceeds the limit of model %q (%d)", o.req.MaxTokens, m.Name, m.MaxOutputTokens)
	}
	return domain.WorstCaseChat(o.req, domain.OutputCap(o.req, m)), nil
}

// call sends the request to m under its upstream name, with the output cap
// the reservation assumed.
func (o *chatOp) call(a *attempt, p ports.Provider, m domain.Model) error {
	up := o.req
	up.Model = m.Upstream
	up.MaxTokens = domain.OutputCap(o.req, m)
	o.attempt = a
	var err error
	if o.emit == nil {
		o.resp, err = p.Chat(a.ctx, up)
	} else {
		o.resp, err = p.ChatStream(a.ctx, up, o.forward)
	}
	o.done = err == nil
	return err
}

// forward passes one chunk on to the client, keeping what it carries for
// the record and the charge, and noting whether the client still reads.
func (o *chatOp) forward(c domain.ChatChunk) error {
	o.attempt.started()
	o.started = true
	c.Model = o.attempt.fallback
	o.text.WriteString(c.Delta)
	o.output += len(c.Delta) + len(c.ArgumentsDelta) + len(c.ReasoningDelta)
	if c.Usage != nil {
		u := *c.Usage
		o.reported = &u
	}
	o.clientErr = o.emit(c)
	return o.clientErr
}

// embedOp is an embeddings call.
type embedOp struct {
	req    domain.EmbedRequest
	limits domain.EmbedLimits // checked with the request, before any provider is asked
	resp   domain.EmbedResponse
	done   bool // the provider answered
}

func (o *embedOp) endpoint() domain.Endpoint   { return domain.EndpointEmbeddings }
func (o *embedOp) modelType() domain.ModelType { return domain.ModelEmbedding }
func (o *embedOp) validate() error {
	if err := o.req.Validate(); err != nil {
		return err
	}
	return o.limits.Check(o.req)
}
func (o *embedOp) retryable() bool    { return true }
func (o *embedOp) clientError() error { return nil }
func (o *embedOp) streams() bool      { return false }

// consumed is the provider's count, once it answered.
func (o *embedOp) consumed(domain.Model) (domain.Usage, bool) { return o.resp.Usage, o.done }

func (o *embedOp) describe(rec *domain.CallRecord) {
	rec.RequestedModel = o.req.Model
	rec.ClientUser = o.req.User
	rec.EmbedInputs = o.req.Inputs
}

func (o *embedOp) worstCase(domain.Model) (domain.Usage, error) {
	return domain.WorstCaseEmbed(o.req), nil
}

func (o *embedOp) call(a *attempt, p ports.Provider, m domain.Model) error {
	up := o.req
	up.Model = m.Upstream
	var err error
	o.resp, err = p.Embed(a.ctx, up)
	o.done = err == nil
	return err
}

func (o *embedOp) answer(rec *domain.CallRecord) {
	if len(o.resp.Vectors) > 0 {
		rec.Dimensions = len(o.resp.Vectors[0])
	}
}
