package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/tidygate/tidygate/internal/gateway"
)

// recoverRetry is the wait between two tries at recovering the calls an
// earlier run left unfinished, while the ledger or the call log cannot
// take them.
const recoverRetry = 5 * time.Second

// recoverUnfinished settles the calls an earlier run of this replica left
// undone (gateway.Service.Recover): those it answered, at their recorded
// cost, and those it was making, at their reservations, recorded as
// interrupted by a crash. It tries again until it succeeds, and then
// closes recovered, or until stop is closed; it closes done when it
// returns.
func recoverUnfinished(log *slog.Logger, svc *gateway.Service, stop <-chan struct{}, done, recovered chan<- struct{}) {
	defer close(done)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := svc.Recover(ctx)
		cancel()
		if err == nil {
			if n > 0 {
				log.Warn("settled the calls an earlier run left undone: answered calls at their recorded cost, interrupted ones at their reservations",
					"calls", n)
			}
			close(recovered)
			return
		}
		log.Warn("recovering the calls an earlier run left unfinished failed; trying again", "error", err, "retry_in", recoverRetry)
		select {
		case <-stop:
			return
		case <-time.After(recoverRetry):
		}
	}
}
