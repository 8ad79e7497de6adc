package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// A call's admission: its audit reason, model and policy, its rate limits,
// concurrency shares and call log slot, and its reservation, made before
// its provider is called or, for a caller without budgets, while it works.

// admit applies policy and limits and reserves the worst-case cost, or
// starts reserving it when the call reserves alongside its provider. On
// success the call holds a concurrency slot (given back by k.leave), a slot
// in the call log for its record (given back by k.logSlot once end has
// recorded the call), its worst-case tokens against the tokens per minute
// of its key, user, team and model, and a reservation, or its reservation
// under way (both settled or released by end).
func (k *call) admit(ctx context.Context) error {
	if err := k.check(); err != nil {
		return err
	}
	worst, err := k.worstCost()
	if err != nil {
		return err
	}
	if err := k.enter(ctx); err != nil {
		return err
	}
	k.hold = domain.Reservation{ID: k.in.RequestID, Budgets: k.budgets(), Amount: worst, At: k.s.opts.Now(),
		Holder: k.s.opts.Holder, For: k.reservedCall()}
	if k.reservesAlongside() {
		k.reserveAlongside(ctx)
		return nil
	}
	mark := k.s.settler.applied()
	err = k.reserve(ctx, nil)
	if domain.KindOf(err) == domain.KindBudgetExceeded {
		err = k.reserveAfterSettling(ctx, mark, err)
	}
	if domain.KindOf(err) == domain.KindBudgetExceeded {
		err = k.reserveBudgetFallback(ctx, err)
	}
	if err != nil {
		k.leave(ctx)
		k.logSlot() // refuse takes a slot of its own for the refusal's record
		k.settleTokens(ctx, 0)
		return err
	}
	return nil
}

// check applies the policy every request that may reach a provider is
// under, a call or a token count: its audit reason, the request on its
// own, and its model (known, serving the endpoint, allowed to the caller),
// which sets the chain of models to try.
func (k *call) check() error {
	if err := domain.CheckAuditReason(k.in.AuditReason, k.s.opts.MinAuditReasonLen, k.s.opts.MaxAuditReasonLen); err != nil {
		return err
	}
	if err := k.op.validate(); err != nil {
		return err
	}
	return k.resolve()
}

// reserve holds k.hold in the ledger, and notes whether the ledger is
// failing: refusing for any reason but a budget's. When sent is not nil
// and the ledger can tell (ports.ReservationSender), it calls sent once
// the reservation has left the process for good. The reservation is made
// in a context the client's departure does not end: one cut off after it
// was sent may be held all the same, with nobody left to give it back.
func (k *call) reserve(ctx context.Context, sent func()) error {
	bctx, cancel := k.s.bookkeeping(ctx)
	defer cancel()
	err := timed(k.s.opts.Stages, StageReserve, func() error {
		if k.s.sender != nil && sent != nil {
			return k.s.sender.ReserveSending(bctx, k.hold, sent)
		}
		return k.s.deps.Ledger.Reserve(bctx, k.hold)
	})
	if failing := err != nil && domain.KindOf(err) != domain.KindBudgetExceeded; failing != k.s.ledgerFailing.Load() {
		k.s.ledgerFailing.Store(failing)
	}
	return err
}

// reservesAlongside reports whether the call reserves while its provider
// works rather than before: it does when no budget of its caller applies
// (its reservation then holds no room anyone else competes for, so only a
// failing ledger can refuse it), unless Options.ReserveFirst says
// otherwise or the ledger's last reservation failed. The call then waits
// for the ledger's answer only before the first byte of its answer, so
// its reservation's round trip overlaps the provider's work.
func (k *call) reservesAlongside() bool {
	return len(k.hold.Budgets) == 0 && !k.s.opts.ReserveFirst && !k.s.ledgerFailing.Load()
}

// reserveAlongside starts holding k.hold and returns when the provider may
// be called: once the reservation has left the process for good, when the
// ledger can tell (ports.ReservationSender), so that a process that stops
// after calling the provider leaves the reservation behind it; at once
// when it cannot.
func (k *call) reserveAlongside(ctx context.Context) {
	h := &holding{done: make(chan struct{}), sent: make(chan struct{})}
	k.holding = h
	go func() {
		h.err = k.reserve(ctx, func() { // called at most once (ports.ReservationSender)
			k.s.fault(FaultReservationSent)
			close(h.sent)
		})
		close(h.done)
	}()
	if k.s.sender != nil {
		began := time.Now()
		select {
		case <-h.sent:
		case <-h.done:
		}
		k.s.opts.Stages.ObserveStage(StageReserveSend, time.Since(began))
	}
}

// holding is a reservation being made while the provider works.
type holding struct {
	done chan struct{} // closed once the ledger has answered
	err  error         // the ledger's answer, once done is closed
	sent chan struct{} // closed when the ledger says the reservation left the process whole
}

// wasSent reports whether the ledger said the reservation left the
// process whole.
func (h *holding) wasSent() bool {
	select {
	case <-h.sent:
		return true
	default:
		return false
	}
}

// wait returns the reservation's outcome once the ledger has answered. A
// nil holding is a reservation held already.
func (h *holding) wait() error {
	if h == nil {
		return nil
	}
	<-h.done
	return h.err
}

// failed returns the ledger's refusal if it has answered with one, without
// waiting.
func (h *holding) failed() error {
	if h == nil {
		return nil
	}
	select {
	case <-h.done:
		return h.err
	default:
		return nil
	}
}

// reservedCall is whose call the reservation is for, and the model of the
// chain it is to be made on first.
func (k *call) reservedCall() domain.ReservedCall {
	m := k.chain[0]
	return domain.ReservedCall{KeyID: k.rec.KeyID, User: k.rec.User, Team: k.rec.Team, Endpoint: k.rec.Endpoint,
		Model: m.Name, Group: m.Group}
}

// budgets returns the caller's budgets that apply to a model of the chain:
// the call may end on any of them, and settling charges those of the model
// that answered and gives the others' holds back.
func (k *call) budgets() []domain.Budget {
	var out []domain.Budget
	for _, b := range k.in.Caller.Budgets {
		for _, m := range k.chain {
			if b.Applies(m) {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

// reserveAfterSettling answers a reservation that a budget refused
// (exceeded) while calls already answered held their worst case: when
// settlements are waiting, it waits for them, and when any was applied
// since mark (taken before the reservation), it tries once more. A refusal
// is then never caused by a settlement in flight.
func (k *call) reserveAfterSettling(ctx context.Context, mark uint64, exceeded error) error {
	if k.s.settler.pending() {
		if err := k.s.settler.wait(ctx); err != nil {
			return exceeded
		}
	}
	if k.s.settler.applied() == mark {
		return exceeded
	}
	return k.reserve(ctx, nil)
}

// reserveBudgetFallback answers a reservation that a budget refused
// (exceeded) with the model asked for's budget fallback: when the catalogue
// names one the caller may use and that can take the request, the call
// goes to it and its chain, with a reservation of its own that must fit.
// Otherwise, or when that does not fit either, the call stays refused.
func (k *call) reserveBudgetFallback(ctx context.Context, exceeded error) error {
	asked := k.chain[0]
	fb, ok := k.routes.catalogue.BudgetFallback(asked)
	if !ok || !k.in.Caller.MayUse(fb, fb.Name) {
		return exceeded
	}
	if _, err := k.op.worstCase(fb); err != nil {
		return exceeded
	}
	chain := k.chain
	k.chain = k.usableChain(fb)
	worst, err := k.worstCost()
	if err == nil {
		k.hold.Budgets, k.hold.Amount, k.hold.For = k.budgets(), worst, k.reservedCall()
		err = k.reserve(ctx, nil)
	}
	if err != nil {
		k.chain = chain
		if domain.KindOf(err) == domain.KindBudgetExceeded {
			return exceeded
		}
		return err
	}
	k.replaced = asked.Name
	k.rec.BudgetFallbackFrom = asked.Name
	k.recordModel(fb, true)
	return nil
}

// resolve finds the model asked for, checks that it serves this endpoint and
// that the caller may use it, and sets the chain of models to try.
func (k *call) resolve() error {
	asked := k.rec.RequestedModel
	m, err := k.routes.catalogue.Resolve(asked)
	if err != nil {
		return err
	}
	k.recordModel(m, false)
	if m.Type != k.op.modelType() {
		return domain.InvalidParam("model", "model %q is of type %s and cannot serve %s", asked, m.Type, k.rec.Endpoint)
	}
	if !k.in.Caller.MayUse(m, asked) {
		return &domain.Error{Kind: domain.KindForbidden, Code: "model_not_allowed", Param: "model",
			Message: fmt.Sprintf("this API key may not use model %q", asked)}
	}
	k.chain = k.usableChain(m)
	return nil
}

// usableChain is m followed by the fallbacks the caller may use: a fallback
// outside the caller's allow-list is skipped, never a way around it.
func (k *call) usableChain(m domain.Model) []domain.Model {
	chain := []domain.Model{m}
	for _, f := range k.routes.catalogue.Chain(m)[1:] {
		if k.in.Caller.MayUse(f, f.Name) {
			chain = append(chain, f)
		}
	}
	return chain
}

// worstCost is the most the call can cost on any model of the chain, every
// input token at the model's dearest input price (and sets k.tokens, the
// most tokens it can use on any of them). The model asked for must be able to take the request; a fallback that cannot
// is left out of the chain rather than failing the call.
func (k *call) worstCost() (domain.Micros, error) {
	var worst domain.Micros
	usable := k.chain[:0:0]
	for i, m := range k.chain {
		u, err := k.op.worstCase(m)
		if err != nil && i == 0 {
			return 0, err
		}
		if err != nil {
			continue
		}
		usable = append(usable, m)
		worst = max(worst, m.Price.MaxCost(u))
		k.tokens = max(k.tokens, u.Total())
	}
	k.chain = usable
	return worst, nil
}

// enter admits the call past the rate limits, holding its worst-case tokens
// (k.rate), then past the call log's capacity, taking a slot for its record
// (k.logSlot), then past the caller's concurrency shares and the concurrency
// bound; on success the caller holds a slot until k.leave. A call refused
// after its tokens or its call log slot were taken gives them back.
func (k *call) enter(ctx context.Context) error {
	s := k.s
	if s.stopping.Err() != nil {
		return shuttingDown()
	}
	rate, err := s.deps.Limiter.Admit(ctx, k.rateLimits(), k.tokens, s.opts.Now())
	if k.in.RateLimits != nil && rate.Limits.Known() {
		k.in.RateLimits(rate.Limits)
	}
	if err != nil {
		return err
	}
	k.rate = rate
	logSlot, err := s.deps.CallLog.Admit()
	if err != nil {
		k.settleTokens(ctx, 0)
		return err
	}
	if err := k.occupy(ctx); err != nil {
		logSlot()
		k.settleTokens(ctx, 0)
		return err
	}
	k.logSlot = logSlot
	return nil
}

// rateLimits are the per-window limits the call counts against: its key's,
// its user's, its team's and the model's asked for.
func (k *call) rateLimits() []domain.RateLimit {
	m := k.chain[0]
	return append(k.in.Caller.RateLimits(), domain.RateLimit{Scope: domain.LimitModel, ID: m.Name, RPM: m.Limits.RPM, TPM: m.Limits.TPM})
}

// occupy takes a concurrency slot for the call, within its key's, user's,
// team's and model's shares.
func (k *call) occupy(ctx context.Context) error {
	if err := k.takeShares(ctx); err != nil {
		return err
	}
	select {
	case k.s.slots <- struct{}{}:
		return nil
	default:
		k.giveShares(ctx)
		return &domain.Error{Kind: domain.KindUnavailable, Code: "overloaded", RetryAfter: time.Second,
			Message: fmt.Sprintf("tidygate is at its limit of %d concurrent upstream calls; retry shortly", cap(k.s.slots))}
	}
}

// leave gives back the concurrency slot the call took in occupy.
func (k *call) leave(ctx context.Context) {
	<-k.s.slots
	k.giveShares(ctx)
}

// settleTokens replaces the call's hold on its key's tokens per minute by
// the tokens it used, giving the rest back; used 0 gives it all back. It
// completes even if the client has gone.
func (k *call) settleTokens(ctx context.Context, used int) {
	bctx, cancel := k.s.bookkeeping(ctx)
	defer cancel()
	if err := k.s.deps.Limiter.Settle(bctx, k.rate, used); err != nil {
		k.rec.ErrorMessage = joinMessages("settling the tokens per minute failed: "+err.Error(), k.rec.ErrorMessage)
	}
}
