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

// The caller's shares bound how many calls one key and one team may have
// in flight at once, so that one caller cannot starve the rest. The counts
// live in the rate limiter (per process, or shared by the replicas); the
// shares themselves are decided here.

// shareSlots are the slots a call of c occupies: its key's (the key's own
// MaxConcurrent, else the per-key share) and, when it has a team, its
// team's.
func (s *Service) shareSlots(c domain.Caller) []ports.Slot {
	slots := []ports.Slot{{Name: "key:" + c.KeyID, Limit: cmp.Or(c.MaxConcurrent, s.opts.MaxConcurrentPerKey)}}
	if c.Team != "" {
		slots = append(slots, ports.Slot{Name: "team:" + c.Team, Limit: s.opts.MaxConcurrentPerTeam})
	}
	return slots
}

// takeShares occupies the call's key and team shares, or refuses the call
// when either is full.
func (k *call) takeShares(ctx context.Context) error {
	c := k.in.Caller
	lease, err := k.s.deps.Limiter.Occupy(ctx, k.in.RequestID, k.s.shareSlots(c))
	var full *ports.SlotFullError
	switch {
	case errors.As(err, &full) && full.Slot.Name == "key:"+c.KeyID:
		return atShare("key_concurrency_limit", fmt.Sprintf("this API key already has %d calls in flight, its limit (its own max_concurrent, else MAX_CONCURRENT_PER_KEY); retry when one ends", full.Slot.Limit))
	case errors.As(err, &full):
		return atShare("team_concurrency_limit", fmt.Sprintf("team %q already has %d calls in flight, its limit (MAX_CONCURRENT_PER_TEAM); retry when one ends", c.Team, full.Slot.Limit))
	case err != nil:
		return err
	}
	k.lease = lease
	return nil
}

// giveShares gives back the places takeShares took. It runs after the call
// has ended, so it may not use the client's context; a failure is logged
// (a shared limiter's places expire on their own).
func (k *call) giveShares(ctx context.Context) {
	if len(k.lease.Slots) == 0 {
		return
	}
	bctx, cancel := k.s.bookkeeping(ctx)
	defer cancel()
	if err := k.s.deps.Limiter.Vacate(bctx, k.lease); err != nil {
		k.s.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "giving back the call's concurrency shares failed; they expire on their own",
			slog.String("request_id", k.in.RequestID), slog.String("error", err.Error()))
	}
	k.lease = ports.Lease{}
}

func atShare(code, msg string) error {
	return &domain.Error{Kind: domain.KindRateLimited, Code: code, Message: msg, RetryAfter: time.Second}
}
