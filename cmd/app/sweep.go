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

// expirer releases reservations older than a given age.
type expirer interface {
	ExpireStale(ctx context.Context, olderThan time.Duration) (int, error)
}

// staleSweep periodically releases the budget reservations that a process
// killed mid-call left behind, so that they do not hold budget forever.
type staleSweep struct {
	logger *slog.Logger
	ledger expirer
	after  time.Duration
	schema *schemaGate
	cancel context.CancelFunc
	done   chan struct{}
}

func newStaleSweep(logger *slog.Logger, ledger expirer, after time.Duration, schema *schemaGate) *staleSweep {
	return &staleSweep{logger: logger, ledger: ledger, after: after, schema: schema, done: make(chan struct{})}
}

func (s *staleSweep) start(parent context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	s.cancel = cancel
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if s.schema.err() != nil {
				continue
			}
			sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
			n, err := s.ledger.ExpireStale(sctx, s.after)
			scancel()
			switch {
			case err != nil:
				s.logger.Warn("releasing stale budget reservations failed; will retry", "err", err)
			case n > 0:
				s.logger.Warn("released stale budget reservations left by a stopped process", "count", n, "older_than", s.after)
			}
		}
	}()
}

func (s *staleSweep) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}
