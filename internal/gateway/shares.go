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

// The caller's shares bound how many calls one key, one user and one team
// may have in flight at once, so that one caller cannot starve the rest,
// and a model's bounds the calls asked of it. The counts live in the rate
// limiter (per process, or shared by the replicas); the shares themselves
// are decided here.

// shareSlots are the slots a call of c asking for model m occupies: its
// key's (the key's own MaxConcurrent, else the per-key share), its
// user's (when the user has a limit), its team's (the team's own limit,
// else the per-team share) and m's (when it has a limit).
func (s *Service) shareSlots(c domain.Caller, m domain.Model) []ports.Slot {
	slots := []ports.Slot{{Name: slotOf(domain.LimitKey, c.KeyID), Limit: cmp.Or(c.MaxConcurrent, s.opts.MaxConcurrentPerKey)}}
	if c.User != "" && c.UserLimits.MaxConcurrent > 0 {
		slots = append(slots, ports.Slot{Name: slotOf(domain.LimitUser, c.User), Limit: c.UserLimits.MaxConcurrent})
	}
	if c.Team != "" {
		slots = append(slots, ports.Slot{Name: slotOf(domain.LimitTeam, c.Team), Limit: cmp.Or(c.TeamLimits.MaxConcurrent, s.opts.MaxConcurrentPerTeam)})
	}
	if m.Limits.MaxConcurrent > 0 {
		slots = append(slots, ports.Slot{Name: slotOf(domain.LimitModel, m.Name), Limit: m.Limits.MaxConcurrent})
	}
	return slots
}

// slotOf names the slot of one owner's calls in flight.
func slotOf(scope domain.LimitScope, id string) string {
	return domain.RateLimit{Scope: scope, ID: id}.Slot()
}

// takeShares occupies the call's shares, or refuses the call, naming the
// share, when one is full.
func (k *call) takeShares(ctx context.Context) error {
	c, m := k.in.Caller, k.chain[0]
	lease, err := k.s.deps.Limiter.Occupy(ctx, k.in.RequestID, k.s.shareSlots(c, m))
	var full *ports.SlotFullError
	if !errors.As(err, &full) {
		if err != nil {
			return err
		}
		k.lease = lease
		return nil
	}
	n := full.Slot.Limit
	switch full.Slot.Name {
	case slotOf(domain.LimitKey, c.KeyID):
		return atShare("key_concurrency_limit", fmt.Sprintf("this API key already has %d calls in flight, its limit (its own max_concurrent, else MAX_CONCURRENT_PER_KEY); retry when one ends", n))
	case slotOf(domain.LimitUser, c.User):
		return atShare("user_concurrency_limit", fmt.Sprintf("user %q already has %d calls in flight, their limit (max_concurrent of the user, all their keys together); retry when one ends", c.User, n))
	case slotOf(domain.LimitTeam, c.Team):
		return atShare("team_concurrency_limit", fmt.Sprintf("team %q already has %d calls in flight, its limit (the team's max_concurrent, else MAX_CONCURRENT_PER_TEAM); retry when one ends", c.Team, n))
	}
	return atShare("model_concurrency_limit", fmt.Sprintf("model %q already has %d calls in flight, its limit (max_concurrency in the catalogue); retry when one ends", m.Name, n))
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
