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

// recoverUnfinished settles and records the calls an earlier run of this
// replica left unfinished (gateway.Service.Recover), trying again until it
// succeeds or stop is closed; it closes done when it returns.
func recoverUnfinished(log *slog.Logger, svc *gateway.Service, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := svc.Recover(ctx)
		cancel()
		if err == nil {
			if n > 0 {
				log.Warn("calls an earlier run left unfinished were charged their reservations and recorded as interrupted by a crash",
					"calls", n, "interrupted", "crash")
			}
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
