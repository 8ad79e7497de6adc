package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// The settler's bounds.
const (
	// settleQueue is the most settlements waiting for the settler; a call
	// that finds the queue full settles its own before it answers.
	settleQueue = 4096
	// settleBatch is the most settlements one SettleAll applies.
	settleBatch = 256
)

// settler applies the settlements of calls that have been recorded, off
// their response path: a call queues its settlement and answers, while its
// reservation keeps holding the worst case, so that budgets stay exact.
//
// One worker at a time takes every settlement waiting (up to settleBatch)
// and applies them with one SettleAll, while the next ones queue up for the
// next batch, as a journal's group commit does; it stops when the queue is
// empty, so that nothing runs between calls. Before each batch it waits up
// to delay for more settlements to join it, unless the batch is full or
// someone waits for the settlements (a reservation a budget refused, a
// usage report, a shutdown): a few calls at a time then share one batch
// instead of each paying for one beside the next call's reservation, and a
// reservation holds its worst case at most delay longer.
//
// A batch the ledger refuses is applied one settlement at a time, so that
// one bad settlement cannot hold back the others; a settlement that still
// fails leaves its reservation held (an over-estimate, as when the ledger
// fails today) and is logged.
//
// Each settlement the ledger has applied (or refuses for good) is
// acknowledged to the call log, which keeps it with the call's record until
// then: a settlement the process dies before applying, or that failed, is
// applied by Recover at the next start.
type settler struct {
	ledger  ports.SpendLedger
	ack     func(reservationIDs []string) // the call log's Acknowledge
	log     *slog.Logger
	timeout time.Duration // bounds each pass of a batch's ledger work: the SettleAll, then the settlements one by one
	delay   time.Duration // the longest a batch waits for more settlements; 0 for none
	stages  StageMetrics  // told how long each batch took

	mu      sync.Mutex
	queue   []ports.Settlement
	running bool          // a worker is applying batches
	queued  uint64        // settlements queued so far
	done    uint64        // settlements applied (or given up) so far, in queue order
	changed chan struct{} // closed and replaced whenever done advances
	waiters int           // calls of wait not yet returned
	hurry   chan struct{} // while the worker waits for a batch to fill: closed to end the wait
}

func newSettler(ledger ports.SpendLedger, ack func([]string), log *slog.Logger, timeout, delay time.Duration, stages StageMetrics) *settler {
	return &settler{ledger: ledger, ack: ack, log: log, timeout: timeout, delay: max(delay, 0), stages: stages, changed: make(chan struct{})}
}

// add queues s for the worker, starting one if none runs. It reports false
// when the queue is full: the caller settles s itself.
func (t *settler) add(s ports.Settlement) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) >= settleQueue {
		return false
	}
	t.queue = append(t.queue, s)
	t.queued++
	if len(t.queue) >= settleBatch {
		t.rush()
	}
	if !t.running {
		t.running = true
		go t.work()
	}
	return true
}

// rush ends the worker's wait for a batch to fill, if it is waiting; t.mu
// is held.
func (t *settler) rush() {
	if t.hurry != nil {
		close(t.hurry)
		t.hurry = nil
	}
}

// idle reports whether the queue is empty, and then stops the worker.
func (t *settler) idle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.queue) == 0 {
		t.running = false
		return true
	}
	return false
}

// gather waits up to t.delay for the next batch to fill, unless it is full
// already or someone waits for the settlements.
func (t *settler) gather() {
	if t.delay == 0 {
		return
	}
	t.mu.Lock()
	if t.waiters > 0 || len(t.queue) >= settleBatch {
		t.mu.Unlock()
		return
	}
	hurry := make(chan struct{})
	t.hurry = hurry
	t.mu.Unlock()
	timer := time.NewTimer(t.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		t.mu.Lock()
		if t.hurry == hurry {
			t.hurry = nil
		}
		t.mu.Unlock()
	case <-hurry:
	}
}

// work applies batches until the queue is empty.
func (t *settler) work() {
	for {
		if t.idle() {
			return
		}
		t.gather()
		t.mu.Lock()
		n := min(len(t.queue), settleBatch)
		batch := make([]ports.Settlement, n)
		copy(batch, t.queue)
		t.queue = append(t.queue[:0], t.queue[n:]...)
		t.mu.Unlock()

		t.apply(batch)

		t.mu.Lock()
		t.done += uint64(n)
		close(t.changed)
		t.changed = make(chan struct{})
		t.mu.Unlock()
	}
}

// apply settles batch in one SettleAll or, when the ledger refuses it,
// one settlement at a time, and acknowledges what the ledger took. Each
// pass has the settler's timeout of its own: a SettleAll that ran out of
// time leaves the settlements one by one all of theirs.
func (t *settler) apply(batch []ports.Settlement) {
	ids := make([]string, 0, len(batch))
	if err := timed(t.stages, StageSettle, func() error { return t.settleAll(batch) }); err == nil {
		for _, s := range batch {
			ids = append(ids, s.ReservationID)
		}
		t.ack(ids)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	for _, s := range batch {
		if t.one(ctx, s) {
			ids = append(ids, s.ReservationID)
		}
	}
	t.ack(ids)
}

// settleAll applies batch in one SettleAll, within the settler's timeout.
func (t *settler) settleAll(batch []ports.Settlement) error {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	return t.ledger.SettleAll(ctx, batch)
}

// one settles s alone, logs a failure, and reports whether the call log
// may forget s: the ledger applied it, or never will (the reservation is
// unknown, or the settlement invalid). After any other failure (the
// ledger unreachable, a lock it waited too long for) the reservation
// stays held, an over-estimate, and the call log keeps s with the call's
// record, which holds its cost, so that the next start applies it.
func (t *settler) one(ctx context.Context, s ports.Settlement) bool {
	err := t.ledger.Settle(ctx, s)
	if err == nil {
		return true
	}
	kind := domain.KindOf(err)
	t.log.LogAttrs(ctx, slog.LevelError, "settling a call's spend failed after its record was written; its reservation stays held",
		slog.String("request_id", s.ReservationID), slog.String("key_id", s.Caller.KeyID), slog.String("model", s.Model),
		slog.Int64("cost_micros", int64(s.Cost)), slog.String("error", err.Error()))
	return kind == domain.KindNotFound || kind == domain.KindInvalid
}

// wait blocks until every settlement queued before it was called has been
// applied, or ctx ends; it returns ctx's error then.
func (t *settler) wait(ctx context.Context) error {
	t.mu.Lock()
	target := t.queued
	t.waiters++
	t.rush()
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.waiters--
		t.mu.Unlock()
	}()
	for {
		t.mu.Lock()
		done, changed := t.done, t.changed
		t.mu.Unlock()
		if done >= target {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// applied returns how many settlements have been applied so far: a mark
// that tells whether any were applied between two moments.
func (t *settler) applied() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// pending reports whether settlements are waiting or being applied.
func (t *settler) pending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done < t.queued
}

// settle hands s to the settler, or applies it at once when the settler's
// queue is full, so that a backlog slows calls down rather than grow.
func (s *Service) settle(ctx context.Context, owed ports.Settlement) {
	if !s.settler.add(owed) && s.settler.one(ctx, owed) {
		s.settler.ack([]string{owed.ReservationID})
	}
}

// Settled blocks until every settlement queued before it was called has
// been applied to the ledger, and every reservation being ended in case
// the ledger holds it has been, or ctx ends (it returns ctx's error then).
// A call's settlement follows its answer; Settled is how a shutdown makes
// sure none is left behind, and how a usage report reads the calls that
// came before it.
func (s *Service) Settled(ctx context.Context) error {
	if err := s.settler.wait(ctx); err != nil {
		return err
	}
	ended := make(chan struct{})
	go func() {
		s.unconfirmed.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Recover finishes what an earlier process left undone. First the calls
// it answered (or was answering) whose settlement the ledger may not have
// applied: the call log kept each settlement with the call's record until
// the ledger took it, and each is settled now at the cost recorded. Then
// the calls it left unfinished: those whose intent the call log holds
// without a record. Each is charged its whole reservation (the provider may
// have done all the work, and the spend must never be released as free),
// recorded as interrupted by a crash (domain.InterruptedByCrash) and
// logged, so that an operator can reconcile it with the provider's bill.
// Settling twice changes nothing, so a Recover that fails midway can run
// again. It returns how many calls it settled or recorded.
func (s *Service) Recover(ctx context.Context) (int, error) {
	settled, err := s.settleOwed(ctx)
	if err != nil {
		return settled, err
	}
	intents, err := s.deps.CallLog.Unfinished(ctx)
	if err != nil {
		return settled, err
	}
	for n, i := range intents {
		caller := domain.Caller{KeyID: i.KeyID, User: i.User, Team: i.Team}
		err := s.deps.Ledger.Settle(ctx, ports.Settlement{ReservationID: i.RequestID, Caller: caller,
			Model: i.Model, Group: i.Group, Usage: i.Worst, Cost: i.Reserved, At: s.opts.Now()})
		if err != nil && domain.KindOf(err) != domain.KindNotFound {
			return settled + n, err
		}
		if err := s.deps.CallLog.Record(ctx, i.Interrupted(s.opts.Now())); err != nil {
			return settled + n, err
		}
		s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "call interrupted by a crash: charged its whole reservation; reconcile it with the provider's bill",
			slog.String("request_id", i.RequestID), slog.String("key_id", i.KeyID), slog.String("model", i.Model),
			slog.Int64("charged_micros", int64(i.Reserved)), slog.Bool("reservation_found", err == nil), slog.String("interrupted", string(domain.InterruptedByCrash)))
	}
	settled += len(intents)
	orphans, err := s.chargeOrphans(ctx)
	return settled + orphans, err
}

// chargeOrphans charges the holds an earlier run on this process's call
// log took and left with neither an intent nor a record in the log
// (Options.Holder; run after the owed settlements and the intents, which
// settle theirs): that run stopped after the call's reservation and before
// its intent was durable, the provider perhaps already at work. All that
// is known of such a call is whose it was, its model and its reservation,
// so each is charged its whole reservation (never released as free, also
// when the ledger gave it back for its age), recorded as interrupted by a
// crash and logged for reconciliation. The record is written before the
// settlement: a recovery stopped between the two finds the hold again and
// writes the same record, which the call log keeps once.
func (s *Service) chargeOrphans(ctx context.Context) (int, error) {
	orphans, err := s.deps.Ledger.Orphans(ctx, s.opts.Holder)
	if err != nil {
		return 0, err
	}
	for n, r := range orphans {
		f := r.For
		i := domain.CallIntent{RequestID: r.ID, Endpoint: f.Endpoint, Start: r.At, KeyID: f.KeyID, User: f.User, Team: f.Team,
			RequestedModel: f.Model, Model: f.Model, Group: f.Group, Reserved: r.Amount}
		rec := i.Interrupted(s.opts.Now())
		rec.ErrorMessage = "tidygate stopped after the call's reservation, before its intent was written; the call is charged its whole reservation, to be reconciled with the provider's bill"
		if err := s.deps.CallLog.Record(ctx, rec); err != nil {
			return n, err
		}
		err := s.deps.Ledger.Settle(ctx, ports.Settlement{ReservationID: r.ID, Caller: domain.Caller{KeyID: f.KeyID, User: f.User, Team: f.Team},
			Model: f.Model, Group: f.Group, Cost: r.Amount, At: s.opts.Now()})
		if err != nil {
			return n, err
		}
		s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "call interrupted by a crash before its intent was written: charged its whole reservation; reconcile it with the provider's bill",
			slog.String("request_id", r.ID), slog.String("key_id", f.KeyID), slog.String("model", f.Model),
			slog.Int64("charged_micros", int64(r.Amount)), slog.String("interrupted", string(domain.InterruptedByCrash)))
	}
	return len(orphans), nil
}

// settleOwed applies the settlements the call log kept for an earlier
// process, each at the cost its call's record holds, and acknowledges
// them. A reservation the ledger no longer knows has nothing to settle.
func (s *Service) settleOwed(ctx context.Context) (int, error) {
	owed, err := s.deps.CallLog.Owed(ctx)
	if err != nil {
		return 0, err
	}
	for n, o := range owed {
		err := s.deps.Ledger.Settle(ctx, o)
		if err != nil && domain.KindOf(err) != domain.KindNotFound {
			return n, err
		}
		s.settler.ack([]string{o.ReservationID})
		s.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "settled a call an earlier run answered before its settlement was applied",
			slog.String("request_id", o.ReservationID), slog.String("key_id", o.Caller.KeyID), slog.String("model", o.Model),
			slog.Int64("cost_micros", int64(o.Cost)), slog.Bool("reservation_found", err == nil))
	}
	return len(owed), nil
}
