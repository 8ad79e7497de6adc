package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/tidygate/tidygate/internal/infra"
)

// staleAfter is how old a budget reservation must be before the sweep
// releases it: far longer than any call can take (every attempt of a model
// and of its fallbacks, or a whole stream), so that only reservations of
// crashed processes go.
func staleAfter(cfg infra.Config) time.Duration {
	return max(15*time.Minute, 4*time.Duration(cfg.ProviderAttempts)*cfg.ProviderTimeout, 2*cfg.StreamTimeout)
}

// expirer releases reservations older than a given age and returns their
// ids.
type expirer interface {
	ExpireStale(ctx context.Context, olderThan time.Duration) ([]string, error)
}

// responseExpirer deletes stored responses whose retention has passed.
type responseExpirer interface {
	DeleteExpiredResponses(ctx context.Context, now time.Time, limit int) (int, error)
}

// Each minute the sweep deletes at most responseSweepBatches batches of
// responseSweepBatch expired responses: bounded work, which catches up over
// the following minutes when more expire at once. Expired responses are
// never served meanwhile.
const (
	responseSweepBatch   = 500
	responseSweepBatches = 10
)

// staleSweep periodically releases the budget reservations that a process
// killed mid-call left behind, so that they do not hold budget forever, and
// deletes the stored responses whose retention (RESPONSES_RETENTION) has
// passed.
//
// It releases nothing before this replica has settled what its own
// journal holds (recovered), so that it never releases a hold this
// replica can settle. A hold it releases is logged with its reservation
// (the call's request id) for reconciliation: it belongs to a process that
// stopped before it settled, and the journal of a replica that never
// restarts may still hold the call's cost. A later settlement of a
// released hold still counts the cost (the ledger's expired state), so a
// replica restarted on its journal even after the sweep makes the budget
// exact again.
type staleSweep struct {
	logger    *slog.Logger
	ledger    expirer
	responses responseExpirer // nil: no responses to sweep
	after     time.Duration
	recovered <-chan struct{}
	loop      *schemaLoop
}

func newStaleSweep(logger *slog.Logger, ledger expirer, after time.Duration, schema *schemaGate, recovered <-chan struct{}) *staleSweep {
	s := &staleSweep{logger: logger, ledger: ledger, after: after, recovered: recovered}
	s.loop = newSchemaLoop(schema, time.Minute, s.sweep)
	return s
}

func (s *staleSweep) sweep(ctx context.Context) {
	select {
	case <-s.recovered:
		s.expire(ctx)
	default: // this replica's own undone calls are not settled yet
	}
	s.sweepResponses(ctx)
}

// expire releases the stale holds and logs each one.
func (s *staleSweep) expire(ctx context.Context) {
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	ids, err := s.ledger.ExpireStale(sctx, s.after)
	scancel()
	for _, id := range ids {
		s.logger.Warn("released a stale budget reservation left by a stopped process; if its call was answered, reconcile with its record",
			"request_id", id, "older_than", s.after)
	}
	if err != nil {
		s.logger.Warn("releasing stale budget reservations failed; will retry", "err", err)
	}
}

// sweepResponses deletes expired stored responses, at most
// responseSweepBatches batches in one go.
func (s *staleSweep) sweepResponses(ctx context.Context) {
	if s.responses == nil {
		return
	}
	total := 0
	for range responseSweepBatches {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := s.responses.DeleteExpiredResponses(sctx, time.Now(), responseSweepBatch)
		cancel()
		total += n
		if err != nil {
			s.logger.Warn("deleting expired stored responses failed; will retry", "err", err)
			break
		}
		if n < responseSweepBatch {
			break
		}
	}
	if total > 0 {
		s.logger.Info("deleted expired stored responses", "count", total)
	}
}

func (s *staleSweep) start(parent context.Context) { s.loop.start(parent) }

func (s *staleSweep) stop() { s.loop.stop() }

// schemaLoop runs a task every interval in the background, once the
// gateway's schema is in place, until stopped.
type schemaLoop struct {
	schema *schemaGate
	every  time.Duration
	task   func(ctx context.Context)
	cancel context.CancelFunc
	done   chan struct{}
}

func newSchemaLoop(schema *schemaGate, every time.Duration, task func(ctx context.Context)) *schemaLoop {
	return &schemaLoop{schema: schema, every: every, task: task, done: make(chan struct{})}
}

func (l *schemaLoop) start(parent context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	l.cancel = cancel
	go func() {
		defer close(l.done)
		tick := time.NewTicker(l.every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if l.schema.err() == nil {
				l.task(ctx)
			}
		}
	}()
}

func (l *schemaLoop) stop() {
	if l.cancel != nil {
		l.cancel()
		<-l.done
	}
}

// lastUsedEvery is how often the keys' last-used times are written: they
// are as fresh as this, at the cost of one statement per interval.
const lastUsedEvery = time.Minute

// flusher writes the keys' last-used times it has noted.
type flusher interface {
	FlushLastUsed(ctx context.Context) error
}

// newLastUsedFlush returns the loop that writes the keys' last-used times
// in one statement per interval, and the flush itself, for the last one at
// shutdown.
func newLastUsedFlush(logger *slog.Logger, keys flusher, schema *schemaGate) (*schemaLoop, func(context.Context)) {
	flush := func(ctx context.Context) {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := keys.FlushLastUsed(fctx); err != nil {
			logger.Warn("writing the keys' last-used times failed; will retry", "err", err)
		}
	}
	return newSchemaLoop(schema, lastUsedEvery, flush), flush
}
