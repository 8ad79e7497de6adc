package gateway

import (
	"context"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// chatOp is a chat completion, streamed when emit is set.
type chatOp struct {
	req  domain.ChatRequest
	emit func(domain.ChatChunk) error // nil: not streamed

	resp      domain.ChatResponse // the answer, once a provider gave one
	started   bool                // the client has seen part of an answer
	clientErr error               // what emit returned when the client stopped reading
}

func (o *chatOp) endpoint() domain.Endpoint     { return domain.EndpointChat }
func (o *chatOp) modelType() domain.ModelType   { return domain.ModelChat }
func (o *chatOp) validate() error               { return o.req.Validate() }
func (o *chatOp) retryable() bool               { return !o.started }
func (o *chatOp) clientError() error            { return o.clientErr }
func (o *chatOp) usage() domain.Usage           { return o.resp.Usage }
func (o *chatOp) answer(rec *domain.CallRecord) { rec.Output = o.resp.Content }

func (o *chatOp) describe(rec *domain.CallRecord) {
	rec.RequestedModel = o.req.Model
	rec.ClientUser = o.req.User
	rec.Messages = o.req.Messages
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
func (o *chatOp) call(ctx context.Context, p ports.Provider, m domain.Model) error {
	up := o.req
	up.Model = m.Upstream
	up.MaxTokens = domain.OutputCap(o.req, m)
	var err error
	if o.emit == nil {
		o.resp, err = p.Chat(ctx, up)
	} else {
		o.resp, err = p.ChatStream(ctx, up, o.forward)
	}
	return err
}

// forward passes one chunk on to the client, noting that the stream has
// started and whether the client is still reading.
func (o *chatOp) forward(c domain.ChatChunk) error {
	o.started = true
	o.clientErr = o.emit(c)
	return o.clientErr
}

// embedOp is an embeddings call.
type embedOp struct {
	req  domain.EmbedRequest
	resp domain.EmbedResponse
}

func (o *embedOp) endpoint() domain.Endpoint   { return domain.EndpointEmbeddings }
func (o *embedOp) modelType() domain.ModelType { return domain.ModelEmbedding }
func (o *embedOp) validate() error             { return o.req.Validate() }
func (o *embedOp) retryable() bool             { return true }
func (o *embedOp) clientError() error          { return nil }
func (o *embedOp) usage() domain.Usage         { return o.resp.Usage }

func (o *embedOp) describe(rec *domain.CallRecord) {
	rec.RequestedModel = o.req.Model
	rec.ClientUser = o.req.User
	rec.EmbedInputs = o.req.Inputs
}

func (o *embedOp) worstCase(domain.Model) (domain.Usage, error) {
	return domain.WorstCaseEmbed(o.req), nil
}

func (o *embedOp) call(ctx context.Context, p ports.Provider, m domain.Model) error {
	up := o.req
	up.Model = m.Upstream
	var err error
	o.resp, err = p.Embed(ctx, up)
	return err
}

func (o *embedOp) answer(rec *domain.CallRecord) {
	if len(o.resp.Vectors) > 0 {
		rec.Dimensions = len(o.resp.Vectors[0])
	}
}
