package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// Chat runs a non-streaming chat completion.
func (s *Service) Chat(ctx context.Context, c Call, req domain.ChatRequest) (ChatResult, error) {
	req.Stream = false
	op := &chatOp{req: req}
	res, err := s.run(ctx, c, op)
	return ChatResult{Result: res, Response: op.resp}, err
}

// ChatStream runs a streaming chat completion, calling emit for each chunk.
// Once emit has been called, the call is no longer retried or redirected to
// a fallback: the client has seen part of one model's answer.
func (s *Service) ChatStream(ctx context.Context, c Call, req domain.ChatRequest, emit func(domain.ChatChunk) error) (ChatResult, error) {
	req.Stream = true
	op := &chatOp{req: req, emit: emit}
	res, err := s.run(ctx, c, op)
	return ChatResult{Result: res, Response: op.resp}, err
}

// Native is a chat request as its client sent it, in the dialect of the
// API the client speaks, beside its decoded form.
type Native struct {
	// Request is the body and the headers meant for the provider, and the
	// dialect they are in.
	Request domain.NativeRequest
	// Untranslatable, when set, says why the decoded request does not
	// carry all of it: only a model whose provider takes the dialect as it
	// is can serve it, and the other models of the chain are left out.
	Untranslatable error
	// Emit receives each event of a passed-through stream; a translated
	// stream's chunks go to ChatNative's emit.
	Emit func(domain.NativeEvent) error
}

// ChatNative runs a chat call whose request the edge has in its native
// dialect as well as decoded. A model whose provider takes the dialect as
// it is (ports.PassThrough) gets the request as the client sent it, and
// the result's Native holds the provider's answer; any other model of the
// chain gets it translated, as Chat and ChatStream do. req governs the call
// either way: its policy, limits, reservation and record. req.Stream says
// whether the answer is streamed; then emit receives a translated
// answer's chunks and n.Emit a passed-through answer's events.
func (s *Service) ChatNative(ctx context.Context, c Call, req domain.ChatRequest, n Native, emit func(domain.ChatChunk) error) (ChatResult, error) {
	routes := s.routes.Load()
	op := &chatOp{req: req, native: &n, provider: func(name string) ports.Provider { return routes.providers[name] }}
	if req.Stream {
		op.emit = emit
	}
	res, err := s.run(ctx, c, op)
	return ChatResult{Result: res, Response: op.resp, Native: op.passed}, err
}

// Embed runs an embeddings call.
func (s *Service) Embed(ctx context.Context, c Call, req domain.EmbedRequest) (EmbedResult, error) {
	op := &embedOp{req: req, limits: s.opts.EmbedLimits}
	res, err := s.run(ctx, c, op)
	return EmbedResult{Result: res, Response: op.resp}, err
}

// run takes one call through its steps: admit (policy, limits and the
// reservation, which a caller without budgets makes alongside the attempt),
// attempt (the provider, with retries and fallbacks), then end (settle or
// release, and record). A call refused at admission is recorded as a
// refusal and never reaches a provider.
func (s *Service) run(ctx context.Context, c Call, op operation) (Result, error) {
	k := s.newCall(c, op)
	if err := k.admit(ctx); err != nil {
		return Result{}, k.refuse(ctx, err)
	}
	defer k.leave(ctx)
	defer k.logSlot() // after end has recorded the call
	k.intend(ctx)
	err := timed(k.s.opts.Stages, StageUpstream, func() error { return k.attempt(ctx) })
	return k.res, k.end(ctx, err)
}

// operation is what differs between the endpoints: the request, how its
// worst case is bounded on a model, one provider attempt, and the answer.
type operation interface {
	// endpoint names the operation in the call record.
	endpoint() domain.Endpoint
	// modelType is the type of model the operation needs.
	modelType() domain.ModelType
	// describe fills the request's part of the call record.
	describe(rec *domain.CallRecord)
	// validate checks the request on its own, before any model is resolved.
	validate() error
	// worstCase returns the most the call can consume on m, or an error when
	// m cannot take the request.
	worstCase(m domain.Model) (domain.Usage, error)
	// call makes one provider attempt on m and keeps its answer.
	call(a *attempt, p ports.Provider, m domain.Model) error
	// retryable reports whether another attempt may follow a failed one.
	retryable() bool
	// clientError returns the error the client's side raised, if any,
	// which then explains the call's failure.
	clientError() error
	// streams reports whether the answer is streamed to the client.
	streams() bool
	// consumed returns what the call consumed on m, answered or cut short,
	// and false when it consumed nothing that can be charged.
	consumed(m domain.Model) (domain.Usage, bool)
	// answer fills the answer's part of the call record.
	answer(rec *domain.CallRecord)
}

// call is one call as it flows through the gateway: what the edge said, the
// operation, the record being built, and what admission and the attempts
// produced.
type call struct {
	s      *Service
	in     Call
	op     operation
	rec    domain.CallRecord
	routes *routes            // the catalogue and providers the call started with
	chain  []domain.Model     // the model asked for, then its fallbacks
	hold   domain.Reservation // the worst case held in the ledger
	// holding is the reservation of a call that reserves while its
	// provider works (nil when admit held it before): nothing of the
	// answer reaches the client, and nothing is settled or released,
	// before the ledger has answered.
	holding *holding
	tokens  int            // the most tokens the call can use on any model of the chain
	rate    ports.RateHold // those tokens, held against the tokens per minute of the key, user, team and model
	lease   ports.Lease    // the call's places in its key's, user's, team's and model's concurrency shares
	// account holds those tokens against the tokens per minute of the
	// provider instance of the attempt that answered, or of a stream that
	// began to, until settle or release (a failed attempt's hold is given
	// back by tryOnce).
	account *ports.RateHold
	res     Result // who answered, after how many attempts
	// replaced is the model asked for when a budget left no room for it
	// and its budget fallback (chain[0]) answers instead.
	replaced string
	cut      error // set when tidygate's side ended the call: the call's error
	why      domain.Interruption
	// logSlot gives back the call log's slot for this call's record,
	// taken at admission and held until end has recorded the call.
	logSlot func()
	// intent writes the call's intent once the call has run for
	// IntentDelay (nil when it was written at once); end stops it, or
	// waits for its outcome on intended before the record when it has begun.
	intent   *time.Timer
	intended chan error
}

// Refuse records a request that the edge refused before it became a call
// (its body could not be decoded), for the caller it authenticated, and
// returns why. It is the one way a refusal outside the gateway reaches the
// call log; model is the name the request gave, if any.
func (s *Service) Refuse(ctx context.Context, c Call, ep domain.Endpoint, model string, why error) error {
	k := &call{s: s, in: c, rec: s.newRecord(c, ep), routes: s.routes.Load()}
	k.rec.RequestedModel = model
	return k.refuse(ctx, why)
}

func (s *Service) newCall(c Call, op operation) *call {
	ep := op.endpoint()
	if c.Endpoint != "" {
		ep = c.Endpoint
	}
	k := &call{s: s, in: c, op: op, rec: s.newRecord(c, ep), routes: s.routes.Load()}
	op.describe(&k.rec)
	return k
}

// newRecord starts the record of a call: who asked, why, and when.
func (s *Service) newRecord(c Call, ep domain.Endpoint) domain.CallRecord {
	start := c.Start
	if start.IsZero() {
		start = s.opts.Now()
	}
	return domain.CallRecord{
		RequestID: c.RequestID, ClientRequestID: c.ClientRequestID, Endpoint: ep, Start: start,
		KeyID: c.Caller.KeyID, User: c.Caller.User, Team: c.Caller.Team, AuditReason: c.AuditReason,
	}
}

// recordModel notes the model that is answering, or is to answer, the call.
func (k *call) recordModel(m domain.Model, fallback bool) {
	k.res.Model = m
	k.res.FallbackUsed = fallback
	k.rec.Model = m.Name
	k.rec.Provider = m.Provider
	k.rec.UpstreamModel = m.Upstream
	k.rec.FallbackUsed = fallback
}

// attempt tries each model of the chain in order until one answers, the
// failure is not worth another attempt, or tidygate's side ended the call.
func (k *call) attempt(ctx context.Context) error {
	var last error
	for i, m := range k.chain {
		k.recordModel(m, i > 0 || k.replaced != "")
		done, err := k.tryModel(ctx, m)
		if done {
			return err
		}
		last = err
	}
	if k.res.Attempts == 0 && last != nil {
		return last // no provider was called: no deployment could take the call
	}
	return upstreamFailure(k.res, last)
}

// tryModel calls m up to MaxAttempts times, each time on a deployment the
// router picks: one not tried yet in this call while any is available, so
// that a retry moves to another deployment before the fallbacks are tried;
// a retry on a deployment tried already backs off first. done reports
// that the call ends here, answered or failed for good; when it is false,
// the next model of the chain may be tried.
func (k *call) tryModel(ctx context.Context, m domain.Model) (done bool, err error) {
	backoff := k.s.opts.RetryBackoff
	tried := map[string]bool{}
	for try := 1; try <= k.s.opts.MaxAttempts; try++ {
		if err := k.holding.failed(); err != nil {
			return true, err // the call cannot be answered: no other attempt
		}
		if ctx.Err() != nil { // a client gone before its provider is called costs nothing
			k.interrupt(domain.InterruptedByClient, clientGone(ctx))
			return true, k.cut
		}
		rt, ok := k.s.router.pick(m, tried, k.routes.caps)
		if !ok {
			if err == nil {
				err = noDeployment(m)
			}
			return false, err
		}
		if tried[rt.d.Name()] {
			if !k.pause(ctx, backoff) {
				k.s.router.release(rt)
				return true, k.cut
			}
			backoff *= 2
		}
		tried[rt.d.Name()] = true
		err = k.tryOnce(ctx, rt, m)
		switch {
		case k.cut != nil:
			return true, k.cut
		case err == nil:
			return true, nil
		case !retryable(err) || !k.op.retryable():
			return true, upstreamFailure(k.res, err)
		}
	}
	return false, err
}

// tryOnce makes one provider attempt on the deployment picked, counts it,
// adds it to the call record and reports its outcome to the router. When
// tidygate's side ended it (the client, the stream timeout, a shutdown),
// k.cut says why.
func (k *call) tryOnce(ctx context.Context, rt route, m domain.Model) error {
	m.Provider, m.Upstream = rt.d.Provider, rt.d.Upstream
	k.res.Model = m
	k.rec.Provider, k.rec.UpstreamModel = m.Provider, m.Upstream
	tried := domain.Attempt{Provider: m.Provider, Model: m.Name, UpstreamModel: m.Upstream, Deployment: rt.d.Name(), Start: k.s.opts.Now()}
	hold, err := k.holdAccount(ctx, m.Provider)
	var place ports.Lease
	if err == nil {
		if place, err = k.occupyAccount(ctx, m.Provider); err != nil && hold != nil {
			k.settleAccount(ctx, hold, 0)
		}
	}
	if err != nil {
		k.s.router.done(rt, outcome{err: err}, k.routes.breaker)
		k.recordAttempt(tried, err)
		return err
	}
	defer k.vacateAccount(ctx, place)
	a := k.s.newAttempt(ctx, k.op.streams())
	defer a.end()
	a.hold = k.holding
	a.answering = m.Name
	began := time.Now()
	err = k.op.call(a, k.routes.providers[m.Provider], m)
	k.res.ProviderTime += time.Since(began)
	k.res.Attempts++
	k.noteCut(ctx, a.cause())
	if err != nil && errors.Is(a.cause(), errNoFirstEvent) {
		err = domain.Wrap(domain.KindUpstream, err, fmt.Sprintf("provider %q sent nothing within %s", m.Provider, k.s.opts.ProviderTimeout))
	}
	k.recordAttempt(tried, err)
	last := k.rec.Attempts[len(k.rec.Attempts)-1]
	k.s.router.done(rt, outcome{err: err, counts: err != nil && k.cut == nil && retryable(err),
		retryAfter: retryAfterOf(err), latency: last.End.Sub(last.Start)}, k.routes.breaker)
	switch {
	case hold == nil:
	case err == nil, a.begun: // a stream that began to answer is charged what it consumed, with the call
		k.account = hold
	default:
		k.settleAccount(ctx, hold, 0)
	}
	return err
}

// holdAccount counts the attempt against its provider instance's requests
// per minute and holds the call's tokens against its tokens per minute,
// when the instance has such caps; nil means it has none. A cap with no
// room refuses the attempt with a rate-limited error, and the next attempt
// goes to another deployment.
func (k *call) holdAccount(ctx context.Context, provider string) (*ports.RateHold, error) {
	caps := k.routes.caps[provider]
	if caps.RPM <= 0 && caps.TPM <= 0 {
		return nil, nil
	}
	account := domain.RateLimit{Scope: domain.LimitProvider, ID: provider, RPM: caps.RPM, TPM: caps.TPM}
	h, err := k.s.deps.Limiter.Admit(ctx, []domain.RateLimit{account}, k.tokens, k.s.opts.Now())
	if err != nil {
		return nil, domain.Wrap(domain.KindRateLimited, err, fmt.Sprintf("provider %q is at its account's caps", provider))
	}
	return &h, nil
}

// occupyAccount takes the attempt's place among the calls in flight of its
// provider instance's account, when the instance has a max_concurrency:
// counted by the rate limiter, so that replicas sharing one (Redis) hold
// the cap together. A full account refuses the attempt with a
// rate-limited error, and the next attempt goes to another deployment.
func (k *call) occupyAccount(ctx context.Context, provider string) (ports.Lease, error) {
	n := k.routes.caps[provider].MaxConcurrency
	if n <= 0 {
		return ports.Lease{}, nil
	}
	id := fmt.Sprintf("%s/attempt-%d", k.in.RequestID, len(k.rec.Attempts)+1)
	lease, err := k.s.deps.Limiter.Occupy(ctx, id, []ports.Slot{{Name: slotOf(domain.LimitProvider, provider), Limit: n}})
	var full *ports.SlotFullError
	if errors.As(err, &full) {
		return lease, &domain.Error{Kind: domain.KindRateLimited, Code: "provider_concurrency_limit", RetryAfter: time.Second,
			Message: fmt.Sprintf("provider %q already has %d calls in flight, its account's max_concurrency", provider, n)}
	}
	return lease, err
}

// vacateAccount gives back the attempt's place in its provider account's
// calls in flight; a failure is logged (a shared limiter's places expire
// on their own).
func (k *call) vacateAccount(ctx context.Context, place ports.Lease) {
	if len(place.Slots) == 0 {
		return
	}
	bctx, cancel := k.s.bookkeeping(ctx)
	defer cancel()
	if err := k.s.deps.Limiter.Vacate(bctx, place); err != nil {
		k.s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "giving back the provider account's concurrency place failed; it expires on its own",
			slog.String("request_id", k.in.RequestID), slog.String("error", err.Error()))
	}
}

// settleAccount replaces a provider account's hold by the tokens used. It
// completes even if the client has gone.
func (k *call) settleAccount(ctx context.Context, h *ports.RateHold, used int) {
	bctx, cancel := k.s.bookkeeping(ctx)
	defer cancel()
	if err := k.s.deps.Limiter.Settle(bctx, *h, used); err != nil {
		k.rec.ErrorMessage = joinMessages("settling the provider's tokens per minute failed: "+err.Error(), k.rec.ErrorMessage)
	}
}

// retryAfterOf returns the wait a provider's failure asked for, if any.
func retryAfterOf(err error) time.Duration {
	var de *domain.Error
	if errors.As(err, &de) && (de.Kind == domain.KindRateLimited || de.Kind == domain.KindUnavailable) {
		return de.RetryAfter
	}
	return 0
}

// recordAttempt adds a finished attempt, and how it failed, to the call
// record, so that the call log shows every retry and fallback in order.
func (k *call) recordAttempt(a domain.Attempt, err error) {
	a.End = k.s.opts.Now()
	if err != nil {
		a.Failed, a.ErrorKind, a.ErrorMessage = true, domain.KindOf(err), err.Error()
	}
	k.rec.Attempts = append(k.rec.Attempts, a)
}

// noteCut sets k.cut when the client, the stream timeout, a shutdown or
// the ledger (a reservation made alongside that failed) ended the attempt;
// cause is the attempt context's cause, if it ended.
func (k *call) noteCut(ctx context.Context, cause error) {
	switch {
	case k.op.clientError() != nil:
		k.interrupt(domain.InterruptedByClient, domain.Wrap(domain.KindUnavailable, k.op.clientError(), "the client stopped reading the stream"))
	case ctx.Err() != nil:
		k.interrupt(domain.InterruptedByClient, clientGone(ctx))
	case errors.Is(cause, errStreamTimeout):
		k.interrupt(domain.InterruptedByStreamTimeout, &domain.Error{Kind: domain.KindUnavailable, Code: "stream_timeout", Err: cause,
			Message: fmt.Sprintf("the stream was ended after %s, tidygate's limit for one stream", k.s.opts.StreamTimeout)})
	case errors.Is(cause, errShuttingDown):
		k.interrupt(domain.InterruptedByShutdown, shuttingDown())
	case errors.Is(cause, errNotReserved):
		k.interrupt(domain.InterruptedByLedger, k.holding.wait())
	}
}

// interrupt notes that tidygate's side ended the call, and why.
func (k *call) interrupt(why domain.Interruption, err error) {
	k.cut = err
	k.why = why
}

// pause waits d before the next attempt, unless the client leaves or
// tidygate shuts down first; then it notes why and returns false.
func (k *call) pause(ctx context.Context, d time.Duration) bool {
	began := time.Now()
	defer func() { k.res.Backoff += time.Since(began) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		k.interrupt(domain.InterruptedByClient, clientGone(ctx))
	case <-k.s.stopping.Done():
		k.interrupt(domain.InterruptedByShutdown, shuttingDown())
	}
	return false
}

func clientGone(ctx context.Context) error {
	return domain.Wrap(domain.KindUnavailable, ctx.Err(), "the client went away before the call was complete")
}

func shuttingDown() error {
	return &domain.Error{Kind: domain.KindUnavailable, Code: "shutting_down", RetryAfter: time.Second,
		Message: "tidygate is shutting down; retry on another replica"}
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
// other failure is the upstream's. So is a refusal by a fallback tried
// after an earlier attempt failed (a fallback that cannot take token ids,
// say): the request was one the model asked for could take, and it is that
// model's failure the client must hear of, not a fix to make.
func upstreamFailure(res Result, err error) error {
	fallbackRefused := res.FallbackUsed && res.Attempts > 1
	if domain.KindOf(err) == domain.KindInvalid && !fallbackRefused {
		return err
	}
	return &domain.Error{Kind: domain.KindUpstream, Code: "upstream_error", Err: err,
		Message: fmt.Sprintf("provider %q failed for model %q after %d attempts", res.Model.Provider, res.Model.Name, res.Attempts)}
}

// end charges what the call consumed (the provider's count, or an
// estimate for a call cut short after it had begun to answer) or releases
// the reservation when nothing was consumed, records the call, and returns
// the call's error. The charge is applied to the ledger after the record
// is durable, off the response path: the settler settles it while the
// answer goes out, and the reservation holds the worst case until then.
// This bookkeeping completes even if the client has gone.
//
// A call that reserved while its provider worked first waits for the
// ledger's answer. When the ledger refused, the call is not answered: its
// error is the ledger's, and it is recorded with what it consumed, which
// the ledger, holding nothing for it, is not charged (see endUnconfirmed
// for a reservation the ledger may hold all the same).
func (k *call) end(ctx context.Context, callErr error) error {
	unheld := k.holding.wait()
	bctx, cancel := k.s.bookkeeping(ctx) // after the wait: the reservation's time is not the record's
	defer cancel()
	k.rec.ProviderTime = k.res.ProviderTime
	k.op.answer(&k.rec)
	consumed, charged := k.op.consumed(k.res.Model)
	var owed ports.Settlement
	switch {
	case charged:
		owed = k.charge(bctx, consumed)
	case unheld != nil:
		k.settleRates(bctx, 0) // the ledger holds nothing, or endUnconfirmed ends what it may hold
	default:
		k.release(bctx)
	}
	if unheld != nil {
		callErr, k.why = unheld, domain.InterruptedByLedger
		k.rec.ErrorMessage = joinMessages("the call's reservation, made while its provider worked, failed: its answer was withheld; "+
			k.endUnconfirmed(ctx, owed, charged), k.rec.ErrorMessage)
	}
	if callErr != nil {
		k.rec.Outcome = domain.OutcomeError
		k.rec.ErrorKind = domain.KindOf(callErr)
		k.rec.ErrorMessage = joinMessages(callErr.Error(), k.rec.ErrorMessage)
	} else {
		k.rec.Outcome = domain.OutcomeOK
	}
	if callErr != nil && (charged || unheld != nil) {
		k.rec.Interrupted = cmp.Or(k.why, domain.InterruptedByUpstream)
	}
	if k.intent == nil || !k.intent.Stop() { // the intent's write has begun: the journal holds it before the record
		if err := <-k.intended; err != nil {
			k.s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "the call's intent was not written; its record, written next, supersedes it",
				slog.String("request_id", k.in.RequestID), slog.String("error", err.Error()))
		}
	}
	var err error
	if charged && unheld == nil {
		err = k.recordOwing(bctx, owed)
		if err == nil {
			k.s.fault(FaultBeforeAnswer)
		}
		k.s.settle(bctx, owed)
	} else {
		err = k.record(bctx)
	}
	if err != nil {
		// Fail closed: a call that cannot be recorded is not answered. What
		// the provider consumed is settled all the same (the spend is
		// real), and the log keeps what the audit trail could not.
		k.s.opts.Logger.LogAttrs(ctx, slog.LevelError, "call settled but not recorded: the call log refused its record; answering 503",
			slog.String("request_id", k.in.RequestID), slog.String("key_id", k.in.Caller.KeyID),
			slog.String("model", k.res.Model.Name), slog.Bool("charged", charged),
			slog.Int64("cost_micros", int64(k.res.Cost)), slog.String("error", err.Error()))
		return recordFailure(err)
	}
	return callErr
}

// endUnconfirmed ends, in case the ledger holds it, the reservation of a
// call that reserved alongside its provider and whose reservation failed,
// and says so for the call's record. A reservation a
// ports.ReservationSender says never left the process is not held. Any
// other, its answer lost or late, may have been committed all the same:
// it is settled at what the call consumed, or released, in case it was.
// That is done in the background, off the answer's path (an unreachable
// ledger would make the client wait for it twice; Service.Settled waits
// for it), and logged; the ledger's not knowing it (KindNotFound) says it was not,
// or not yet. A failure to end it leaves it as a crash leaves one
// (docs/RELIABILITY.md).
func (k *call) endUnconfirmed(ctx context.Context, owed ports.Settlement, charged bool) string {
	if k.s.sender != nil && !k.holding.wasSent() {
		return "nothing was charged to the ledger"
	}
	s, id, log := k.s, k.hold.ID, k.s.opts.Logger
	ending := "released"
	if charged {
		ending = "settled at what the call consumed"
	}
	attrs := []slog.Attr{slog.String("request_id", k.in.RequestID), slog.String("key_id", k.in.Caller.KeyID), slog.String("ending", ending)}
	s.unconfirmed.Add(1)
	go func() {
		defer s.unconfirmed.Done()
		bctx, cancel := s.bookkeeping(ctx)
		defer cancel()
		var err error
		if charged {
			err = s.deps.Ledger.Settle(bctx, owed)
		} else {
			err = s.deps.Ledger.Release(bctx, id)
		}
		switch {
		case err == nil:
			log.LogAttrs(bctx, slog.LevelWarn, "a reservation whose ledger's answer was lost was held after all, and is ended", attrs...)
		case domain.KindOf(err) != domain.KindNotFound:
			log.LogAttrs(bctx, slog.LevelWarn, "a reservation whose ledger's answer was lost could not be ended; if the ledger took it, it stays held as a crash's would",
				append(attrs, slog.String("error", err.Error()))...)
		}
	}()
	return "in case the ledger took the reservation all the same, it is " + ending + " in the background (the log says if it had)"
}

// charge prices usage, bounded by what the call could consume on the model
// that answered (so never more than was reserved), into the record, gives
// back the tokens per minute it did not use, and returns the settlement
// the ledger owes the reservation. A claim beyond the bound is recorded in
// full and flagged.
func (k *call) charge(ctx context.Context, claimed domain.Usage) ports.Settlement {
	charged := claimed
	if bound, err := k.op.worstCase(k.res.Model); err == nil {
		charged = claimed.Within(bound)
	}
	if charged != claimed {
		k.flagClaim(ctx, claimed, charged)
	}
	price := k.res.Model.Price
	k.rec.Usage = claimed
	k.rec.InputCost = price.InputCost(charged)
	k.rec.OutputCost = price.OutputCost(charged)
	k.res.Cost = k.rec.Cost()
	k.settleRates(ctx, charged.Total())
	return ports.Settlement{ReservationID: k.hold.ID, Caller: k.in.Caller,
		Model: k.res.Model.Name, Group: k.res.Model.Group, Usage: charged, Cost: k.res.Cost, At: k.s.opts.Now()}
}

// flagClaim marks the record, counts the claim and warns that a provider
// claimed more than the call could consume.
func (k *call) flagClaim(ctx context.Context, claimed, charged domain.Usage) {
	k.rec.UsageExceedsReservation = true
	k.s.opts.ExcessClaims.CountExcessClaim(k.res.Model.Provider, k.res.Model.Name)
	k.s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "provider usage exceeds what the call could consume; charged the bound",
		slog.String("request_id", k.in.RequestID), slog.String("model", k.res.Model.Name),
		slog.String("provider", k.res.Model.Provider),
		slog.Int("claimed_prompt_tokens", claimed.PromptTokens), slog.Int("claimed_completion_tokens", claimed.CompletionTokens),
		slog.Int("charged_prompt_tokens", charged.PromptTokens), slog.Int("charged_completion_tokens", charged.CompletionTokens))
}

// release gives the reservation and the held tokens back: the call cost
// nothing.
func (k *call) release(ctx context.Context) {
	k.settleRates(ctx, 0)
	if err := k.s.deps.Ledger.Release(ctx, k.hold.ID); err != nil {
		k.rec.ErrorMessage = "releasing the reservation failed: " + err.Error()
	}
}

// settleRates replaces the tokens the call held against the tokens per
// minute of its key, user, team and model, and of the provider account
// that answered, by the tokens it used.
func (k *call) settleRates(ctx context.Context, used int) {
	k.settleTokens(ctx, used)
	if k.account != nil {
		k.settleAccount(ctx, k.account, used)
		k.account = nil
	}
}

// intend writes the call's intent to the call log once the call has run
// for IntentDelay, while the provider works: who asked, why, for which
// model, when, and the reservation, so that a process stopping before the
// call's record leaves the call charged at its reservation rather than
// lost. A call that ends sooner writes no intent: its record, which
// supersedes the intent, is then the call's one durable write, and the
// answer waits for one fdatasync instead of two in a row.
func (k *call) intend(ctx context.Context) {
	m := k.chain[0]
	worst, _ := k.op.worstCase(m)
	i := domain.CallIntent{
		RequestID: k.rec.RequestID, Endpoint: k.rec.Endpoint, Start: k.rec.Start,
		KeyID: k.rec.KeyID, User: k.rec.User, Team: k.rec.Team, AuditReason: k.rec.AuditReason,
		RequestedModel: k.rec.RequestedModel, Model: m.Name, Group: m.Group, Provider: m.Provider,
		Stream: k.op.streams(), Reserved: k.hold.Amount, Worst: worst,
	}
	k.intended = make(chan error, 1)
	write := func() {
		_ = k.holding.wait() // the intent follows the reservation it names; a failed one is not the intent's to report
		k.s.fault(FaultBeforeIntent)
		bctx, cancel := k.s.bookkeeping(ctx)
		defer cancel()
		k.intended <- k.s.deps.CallLog.Intend(bctx, i)
	}
	if k.s.opts.IntentDelay < 0 {
		go write()
		return
	}
	k.intent = time.AfterFunc(k.s.opts.IntentDelay, write)
}

// fault calls the test build's fault point, if any, at point.
func (s *Service) fault(point string) {
	if s.opts.FaultPoint != nil {
		s.opts.FaultPoint(point)
	}
}

// record hands the finished record to the call log.
func (k *call) record(ctx context.Context) error {
	k.rec.End = k.s.opts.Now()
	return timed(k.s.opts.Stages, StageRecord, func() error { return k.s.deps.CallLog.Record(ctx, k.rec) })
}

// recordOwing hands the finished record to the call log with the
// settlement the ledger owes it, which the call log keeps until the
// settler acknowledges it.
func (k *call) recordOwing(ctx context.Context, owed ports.Settlement) error {
	k.rec.End = k.s.opts.Now()
	return timed(k.s.opts.Stages, StageRecord, func() error { return k.s.deps.CallLog.RecordOwing(ctx, k.rec, owed) })
}

// refuse records a call refused before any provider was called and returns
// the refusal. A refusal is recorded on a best-effort basis: the call is
// refused either way, and a call log that is full or cannot write has
// nowhere to put it. Its record takes a slot in the call log like a call's,
// so that refusals cannot overrun the log's limit either.
func (k *call) refuse(ctx context.Context, why error) error {
	if k.rec.Model == "" {
		// Refused before its model was resolved (no audit reason, an
		// invalid request): still filed under the model asked for, when
		// the catalogue knows it.
		if m, err := k.routes.catalogue.Resolve(k.rec.RequestedModel); err == nil {
			k.recordModel(m, false)
		}
	}
	k.rec.Outcome = domain.OutcomeRejected
	k.rec.ErrorKind = domain.KindOf(why)
	k.rec.ErrorMessage = why.Error()
	logSlot, err := k.s.deps.CallLog.Admit()
	if err != nil {
		return why
	}
	defer logSlot()
	bctx, cancel := k.s.bookkeeping(ctx)
	defer cancel()
	_ = k.record(bctx)
	return why
}

// bookkeeping returns a context for the ledger and the call log that
// survives the client's departure, bounded by RecordTimeout.
func (s *Service) bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.opts.RecordTimeout)
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
