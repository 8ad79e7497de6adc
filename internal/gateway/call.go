package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// Chat runs a non-streaming chat completion.
func (s *Service) Chat(ctx context.Context, call Call, req domain.ChatRequest) (ChatResult, error) {
	return s.chat(ctx, call, req, nil)
}

// ChatStream runs a streaming chat completion, calling emit for each chunk.
// Once emit has been called, the call is no longer retried or redirected to
// a fallback: the client has seen part of one model's answer.
func (s *Service) ChatStream(ctx context.Context, call Call, req domain.ChatRequest, emit func(domain.ChatChunk) error) (ChatResult, error) {
	return s.chat(ctx, call, req, emit)
}

func (s *Service) chat(ctx context.Context, call Call, req domain.ChatRequest, emit func(domain.ChatChunk) error) (ChatResult, error) {
	req.Stream = emit != nil
	rec := s.newRecord(call, domain.EndpointChat, req.Model)
	rec.Stream, rec.Temperature, rec.MaxTokens = req.Stream, req.Temperature, req.MaxTokens
	rec.ClientUser, rec.Messages = req.User, req.Messages

	var out ChatResult
	chain, reservation, err := s.admit(ctx, call, &rec, req.Model, domain.ModelChat, req.Validate(),
		func(m domain.Model) (domain.Usage, error) {
			if req.MaxTokens > m.MaxOutputTokens {
				return domain.Usage{}, domain.InvalidParam("max_tokens",
					"max_tokens %d exceeds the limit of model %q (%d)", req.MaxTokens, m.Name, m.MaxOutputTokens)
			}
			return domain.WorstCaseChat(req, domain.OutputCap(req, m)), nil
		})
	if err != nil {
		out.Result = s.reject(ctx, call, &rec, err)
		return out, err
	}
	defer s.release()

	emitted := false // once true, the client has seen part of an answer
	var clientErr error
	out.Result, err = s.invoke(ctx, &rec, chain, func(ctx context.Context, p ports.Provider, m domain.Model) error {
		up := req
		up.Model, up.MaxTokens = m.Upstream, domain.OutputCap(req, m)
		var resp domain.ChatResponse
		var err error
		if emit == nil {
			resp, err = p.Chat(ctx, up)
		} else {
			resp, err = p.ChatStream(ctx, up, func(c domain.ChatChunk) error {
				emitted = true
				clientErr = emit(c)
				return clientErr
			})
		}
		if err == nil {
			out.Response = resp
		}
		return err
	}, func() bool { return !emitted })
	if clientErr != nil {
		err = domain.Wrap(domain.KindUnavailable, clientErr, "the client stopped reading the stream")
	}

	rec.Output = out.Response.Content
	out.Result, err = s.finish(ctx, call, &rec, reservation, out.Result, out.Response.Usage, err)
	return out, err
}

// Embed runs an embeddings call.
func (s *Service) Embed(ctx context.Context, call Call, req domain.EmbedRequest) (EmbedResult, error) {
	rec := s.newRecord(call, domain.EndpointEmbeddings, req.Model)
	rec.ClientUser, rec.EmbedInputs = req.User, req.Inputs

	var out EmbedResult
	chain, reservation, err := s.admit(ctx, call, &rec, req.Model, domain.ModelEmbedding, req.Validate(),
		func(domain.Model) (domain.Usage, error) { return domain.WorstCaseEmbed(req), nil })
	if err != nil {
		out.Result = s.reject(ctx, call, &rec, err)
		return out, err
	}
	defer s.release()

	out.Result, err = s.invoke(ctx, &rec, chain, func(ctx context.Context, p ports.Provider, m domain.Model) error {
		up := req
		up.Model = m.Upstream
		resp, err := p.Embed(ctx, up)
		if err == nil {
			out.Response = resp
		}
		return err
	}, func() bool { return true })

	if len(out.Response.Vectors) > 0 {
		rec.Dimensions = len(out.Response.Vectors[0])
	}
	out.Result, err = s.finish(ctx, call, &rec, reservation, out.Result, out.Response.Usage, err)
	return out, err
}

func (s *Service) newRecord(call Call, ep domain.Endpoint, model string) domain.CallRecord {
	start := call.Start
	if start.IsZero() {
		start = s.opts.Now()
	}
	return domain.CallRecord{
		RequestID: call.RequestID, ClientRequestID: call.ClientRequestID, Endpoint: ep, Start: start,
		KeyID: call.Caller.KeyID, User: call.Caller.User, Team: call.Caller.Team,
		AuditReason: call.AuditReason, RequestedModel: model,
	}
}

// admit applies policy and reserves the worst-case cost. On success the
// caller holds a concurrency slot (give it back with s.release) and a
// reservation (settled or released by s.finish).
func (s *Service) admit(ctx context.Context, call Call, rec *domain.CallRecord, name string, typ domain.ModelType,
	invalid error, worstCase func(domain.Model) (domain.Usage, error)) ([]domain.Model, domain.Reservation, error) {
	if len(strings.TrimSpace(call.AuditReason)) < s.opts.MinAuditReasonLen {
		return nil, domain.Reservation{}, &domain.Error{Kind: domain.KindInvalid, Code: "audit_reason_required",
			Param: "audit_reason", Message: fmt.Sprintf("an audit reason of at least %d characters is required", s.opts.MinAuditReasonLen)}
	}
	if invalid != nil {
		return nil, domain.Reservation{}, invalid
	}
	m, err := s.deps.Catalogue.Resolve(name)
	if err != nil {
		return nil, domain.Reservation{}, err
	}
	rec.Model, rec.Provider, rec.UpstreamModel = m.Name, m.Provider, m.Upstream
	if m.Type != typ {
		return nil, domain.Reservation{}, domain.InvalidParam("model", "model %q is a %s model and cannot serve %s", name, m.Type, rec.Endpoint)
	}
	if !call.Caller.MayUse(m, name) {
		return nil, domain.Reservation{}, &domain.Error{Kind: domain.KindForbidden, Code: "model_not_allowed", Param: "model",
			Message: fmt.Sprintf("this API key may not use model %q", name)}
	}
	chain := s.deps.Catalogue.Chain(m)
	var worst domain.Micros
	for _, cm := range chain {
		u, err := worstCase(cm)
		if err != nil {
			if cm.Name == m.Name {
				return nil, domain.Reservation{}, err
			}
			continue // a fallback that cannot take this request is skipped, not an error
		}
		worst = max(worst, cm.Price.Cost(u))
	}
	now := s.opts.Now()
	if err := s.limiter.allow(call.Caller, now); err != nil {
		return nil, domain.Reservation{}, err
	}
	if err := s.deps.CallLog.Admit(); err != nil {
		return nil, domain.Reservation{}, err
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return nil, domain.Reservation{}, &domain.Error{Kind: domain.KindUnavailable, Code: "overloaded", RetryAfter: time.Second,
			Message: fmt.Sprintf("tidygate is at its limit of %d concurrent upstream calls; retry shortly", cap(s.slots))}
	}
	r := domain.Reservation{ID: call.RequestID, Budgets: call.Caller.Budgets, Amount: worst, At: now}
	if err := s.deps.Ledger.Reserve(ctx, r); err != nil {
		s.release()
		return nil, domain.Reservation{}, err
	}
	return chain, r, nil
}

func (s *Service) release() { <-s.slots }

// invoke tries each model of the chain, each up to MaxAttempts times, while
// the failure is retryable and again() allows it.
func (s *Service) invoke(ctx context.Context, rec *domain.CallRecord, chain []domain.Model,
	attempt func(context.Context, ports.Provider, domain.Model) error, again func() bool) (Result, error) {
	var res Result
	var last error
	for i, m := range chain {
		p := s.deps.Providers[m.Provider]
		res.Model, res.FallbackUsed = m, i > 0
		rec.Model, rec.Provider, rec.UpstreamModel, rec.FallbackUsed = m.Name, m.Provider, m.Upstream, i > 0
		backoff := s.opts.RetryBackoff
		for try := 1; try <= s.opts.MaxAttempts; try++ {
			actx, cancel := context.WithTimeout(ctx, s.opts.ProviderTimeout)
			began := time.Now()
			err := attempt(actx, p, m)
			res.ProviderTime += time.Since(began)
			cancel()
			res.Attempts++
			if err == nil {
				return res, nil
			}
			last = err
			if ctx.Err() != nil {
				return res, domain.Wrap(domain.KindUnavailable, ctx.Err(), "the client went away before the provider answered")
			}
			if !retryable(err) || !again() {
				return res, upstreamFailure(res, err)
			}
			if try < s.opts.MaxAttempts && !sleep(ctx, backoff) {
				return res, domain.Wrap(domain.KindUnavailable, ctx.Err(), "the client went away before the provider answered")
			}
			backoff *= 2
		}
	}
	return res, upstreamFailure(res, last)
}

func retryable(err error) bool {
	switch domain.KindOf(err) {
	case domain.KindUpstream, domain.KindRateLimited, domain.KindUnavailable:
		return true
	}
	return false
}

// upstreamFailure turns the last provider error into the call's error: a
// request the provider refused stays invalid (the client can fix it); every
// other failure is the upstream's.
func upstreamFailure(res Result, err error) error {
	if domain.KindOf(err) == domain.KindInvalid {
		return err
	}
	return &domain.Error{Kind: domain.KindUpstream, Code: "upstream_error", Err: err,
		Message: fmt.Sprintf("provider %q failed for model %q after %d attempts", res.Model.Provider, res.Model.Name, res.Attempts)}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// finish settles or releases the reservation, records the call and returns
// the call's final result and error.
func (s *Service) finish(ctx context.Context, call Call, rec *domain.CallRecord, r domain.Reservation,
	res Result, usage domain.Usage, callErr error) (Result, error) {
	// The provider has answered (or failed): bookkeeping must complete even
	// if the client has gone away.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RecordTimeout)
	defer cancel()

	rec.Attempts, rec.ProviderTime = res.Attempts, res.ProviderTime
	if callErr == nil {
		rec.Usage = usage
		rec.InputCost, rec.OutputCost = res.Model.Price.InputCost(usage), res.Model.Price.OutputCost(usage)
		res.Cost = rec.Cost()
		s.limiter.addTokens(call.Caller, usage.Total(), s.opts.Now())
		err := s.deps.Ledger.Settle(bctx, ports.Settlement{ReservationID: r.ID, Caller: call.Caller,
			Model: res.Model.Name, Usage: usage, Cost: res.Cost, At: s.opts.Now()})
		if err != nil {
			// The reservation stays held (an over-estimate) until the ledger's
			// expiry sweep; the call itself succeeded and is recorded.
			rec.ErrorMessage = "settling the spend failed: " + err.Error()
		}
		rec.Outcome = domain.OutcomeOK
	} else {
		if err := s.deps.Ledger.Release(bctx, r.ID); err != nil {
			rec.ErrorMessage = "releasing the reservation failed: " + err.Error()
		}
		rec.Outcome, rec.ErrorKind = domain.OutcomeError, domain.KindOf(callErr)
		rec.ErrorMessage = joinMessages(callErr.Error(), rec.ErrorMessage)
	}
	rec.End = s.opts.Now()
	if err := s.deps.CallLog.Record(bctx, *rec); err != nil {
		// Fail closed: a call that cannot be recorded is not answered.
		return res, recordFailure(err)
	}
	return res, callErr
}

// reject records a call refused before any provider was called.
func (s *Service) reject(ctx context.Context, call Call, rec *domain.CallRecord, callErr error) Result {
	rec.Outcome, rec.ErrorKind, rec.ErrorMessage = domain.OutcomeRejected, domain.KindOf(callErr), callErr.Error()
	rec.End = s.opts.Now()
	if domain.KindOf(callErr) == domain.KindUnavailable && s.deps.CallLog.Admit() != nil {
		return Result{} // the log itself is full: there is nowhere to record the refusal
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RecordTimeout)
	defer cancel()
	_ = s.deps.CallLog.Record(bctx, *rec) // the call is refused either way
	return Result{}
}

func recordFailure(err error) error {
	var de *domain.Error
	if errors.As(err, &de) && de.Kind == domain.KindUnavailable {
		return err
	}
	return domain.Wrap(domain.KindUnavailable, err, "the call could not be recorded in the audit trail")
}

func joinMessages(a, b string) string {
	if b == "" {
		return a
	}
	return a + "; " + b
}
