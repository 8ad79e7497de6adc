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
	oneCall   domain.OneToolCall  // holds a stream to one tool call when the request forbids parallel ones

	native   *Native                          // the request as the client sent it; nil: translated only
	provider func(name string) ports.Provider // a provider instance by name, to know which pass through
	passed   *domain.NativeResponse           // the answer, when it passed through
	passing  bool                             // the attempt in progress passes the request through
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
	case o.done && o.passed != nil && !o.passed.Counted:
		// The provider counted nothing: every prompt byte and every
		// byte of the answer is charged as a token.
		return domain.ConsumedChat(o.req, domain.OutputCap(o.req, m), max(o.output, len(o.passed.Text))), true
	case o.done:
		return o.resp.Usage, true
	case o.reported != nil && o.passing:
		// A passed-through stream's count may be partial (Anthropic's
		// message_start counts the input only): the output received
		// counts too.
		u := *o.reported
		u.CompletionTokens = max(u.CompletionTokens, min(o.output, domain.OutputCap(o.req, m)))
		return u, true
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
	rec.Seed, rec.PresencePenalty, rec.FrequencyPenalty = o.req.Seed, o.req.PresencePenalty, o.req.FrequencyPenalty
}

// worstCase refuses a max_tokens above the model's cap, and a request that
// can only pass through for a model whose provider does not take it as it
// is; otherwise the request's worst case on m is every prompt byte plus m's
// output cap.
func (o *chatOp) worstCase(m domain.Model) (domain.Usage, error) {
	if o.native != nil && o.native.Untranslatable != nil && !o.passesEverywhere(m) {
		return domain.Usage{}, o.native.Untranslatable
	}
	if o.req.MaxTokens > m.MaxOutputTokens {
		return domain.Usage{}, domain.InvalidParam("max_tokens",
			"max_tokens %d exceeds the limit of model %q (%d)", o.req.MaxTokens, m.Name, m.MaxOutputTokens)
	}
	return domain.WorstCaseChat(o.req, domain.OutputCap(o.req, m)), nil
}

// call sends the request to m under its upstream name, with the output cap
// the reservation assumed.
func (o *chatOp) call(a *attempt, p ports.Provider, m domain.Model) error {
	o.attempt = a
	o.passed, o.passing = nil, false
	if pt := o.passThrough(p); pt != nil {
		return o.callNative(a, pt, m)
	}
	if o.native != nil && o.native.Untranslatable != nil {
		return o.native.Untranslatable
	}
	up := o.req
	up.Model = m.Upstream
	up.MaxTokens = domain.OutputCap(o.req, m)
	var err error
	if o.emit == nil {
		o.resp, err = p.Chat(a.ctx, up)
	} else {
		o.oneCall = domain.OneToolCall{}
		o.resp, err = p.ChatStream(a.ctx, up, o.forward)
	}
	if o.req.ToolChoice.NoParallel {
		o.resp.Blocks = domain.FirstToolCallOnly(o.resp.Blocks)
	}
	o.done = err == nil
	return err
}

// passThrough returns p when the request passes through to it: the edge
// has the request in a dialect the provider takes as it is.
func (o *chatOp) passThrough(p ports.Provider) ports.PassThrough {
	if o.native == nil {
		return nil
	}
	pt, ok := p.(ports.PassThrough)
	if !ok || !pt.PassesThrough(o.native.Request.Dialect) {
		return nil
	}
	return pt
}

// passesEverywhere reports whether every deployment of m passes the
// request through, so that m can serve a request that cannot be translated.
func (o *chatOp) passesEverywhere(m domain.Model) bool {
	if len(m.Deployments) == 0 {
		return o.passThrough(o.provider(m.Provider)) != nil
	}
	for _, d := range m.Deployments {
		if o.passThrough(o.provider(d.Provider)) == nil {
			return false
		}
	}
	return true
}

// callNative passes the request through to m under its upstream name, with
// the output cap the reservation assumed when the body sets none, and
// names the answer after m.
func (o *chatOp) callNative(a *attempt, pt ports.PassThrough, m domain.Model) error {
	o.passing = true
	req := o.native.Request
	req.Model, req.Answer, req.MaxTokens = m.Upstream, m.Name, domain.OutputCap(o.req, m)
	req.Stream = o.emit != nil
	var emit func(domain.NativeEvent) error
	if req.Stream {
		emit = o.forwardNative
	}
	resp, err := pt.Native(a.ctx, req, emit)
	o.done = err == nil
	if o.done {
		o.passed = &resp
		o.resp = domain.ChatResponse{Model: m.Upstream, Content: resp.Text, Usage: resp.Usage}
	}
	return err
}

// forwardNative passes one event of a passed-through stream on to the
// client, keeping what it carries for the record and the charge.
func (o *chatOp) forwardNative(ev domain.NativeEvent) error {
	if err := o.attempt.begin(); err != nil {
		return err
	}
	o.started = true
	o.text.WriteString(ev.Text)
	o.output += ev.Output
	if ev.Usage != nil {
		u := *ev.Usage
		o.reported = &u
	}
	o.clientErr = o.native.Emit(ev)
	return o.clientErr
}

// forward passes one chunk on to the client, keeping what it carries for
// the record and the charge, and noting whether the client still reads.
func (o *chatOp) forward(c domain.ChatChunk) error {
	if err := o.attempt.begin(); err != nil {
		return err
	}
	o.started = true
	c.Model = o.attempt.answering
	o.text.WriteString(c.Delta)
	o.output += len(c.Delta) + len(c.ArgumentsDelta) + len(c.ReasoningDelta)
	if c.Usage != nil {
		u := *c.Usage
		o.reported = &u
	}
	if o.req.ToolChoice.NoParallel {
		var keep bool
		if c, keep = o.oneCall.Keep(c); !keep {
			return nil
		}
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
	rec.EmbedTokens = o.req.Tokens
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
