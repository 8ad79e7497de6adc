package contract

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// TestRateLimiter checks that a rate limiter holds each key's tokens per
// minute like a budget (never more admitted than the limit, even under
// concurrency, the unused part given back on settlement), counts requests
// per minute exactly, refuses a call that no minute could take, and starts
// afresh each minute; that it reports each key's state for the answer's
// headers; and that it bounds the calls in flight in each slot, all slots
// or none, exactly under concurrency. newLimiter returns a limiter with
// one-minute windows and nothing counted.
func TestRateLimiter(t *testing.T, newLimiter func(t *testing.T) ports.RateLimiter) {
	ctx := context.Background()
	minute := day0.Truncate(time.Minute)

	t.Run("TokensNeverOvershootUnderConcurrency", func(t *testing.T) {
		l := newLimiter(t)
		c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-tpm", TPM: 100}}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if h, err := l.Admit(ctx, c, 30, minute.Add(time.Second)); err == nil {
					admitted.Add(int64(h.Tokens))
				} else if domain.KindOf(err) != domain.KindRateLimited {
					t.Errorf("Admit: %v, want a rate-limited error", err)
				}
			})
		}
		wg.Wait()
		if got := admitted.Load(); got != 90 {
			t.Fatalf("admitted %d tokens in the minute with tpm 100 and calls of 30, want 90", got)
		}
	})

	t.Run("SettleRefundsTheUnusedPart", func(t *testing.T) {
		l := newLimiter(t)
		c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-refund", TPM: 100}}
		h := mustAdmit(t, l, c, 80, minute)
		checkRateLimited(t, l, c, 30, minute)
		if err := l.Settle(ctx, h, 20); err != nil {
			t.Fatal(err)
		}
		mustAdmit(t, l, c, 80, minute) // 20 used + 80 held = 100
		checkRateLimited(t, l, c, 1, minute)
	})

	t.Run("SettleZeroGivesTheWholeHoldBack", func(t *testing.T) {
		l := newLimiter(t)
		c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-release", TPM: 100}}
		h := mustAdmit(t, l, c, 100, minute)
		if err := l.Settle(ctx, h, 0); err != nil {
			t.Fatal(err)
		}
		mustAdmit(t, l, c, 100, minute)
	})

	t.Run("UsageBeyondTheHoldIsNotCounted", func(t *testing.T) {
		l := newLimiter(t)
		c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-over", TPM: 100}}
		h := mustAdmit(t, l, c, 40, minute)
		if err := l.Settle(ctx, h, 1000); err != nil {
			t.Fatal(err)
		}
		mustAdmit(t, l, c, 60, minute)
	})

	t.Run("ACallNoMinuteCanTakeIsInvalid", func(t *testing.T) {
		l := newLimiter(t)
		c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-big", TPM: 100}}
		_, err := l.Admit(ctx, c, 101, minute)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "max_tokens" {
			t.Fatalf("Admit(101 tokens, tpm 100) = %v, want an invalid-request error on max_tokens", err)
		}
		mustAdmit(t, l, c, 100, minute) // the refusal held nothing
	})

	t.Run("RequestsPerMinuteAreExact", func(t *testing.T) {
		l := newLimiter(t)
		c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-rpm", RPM: 3}}
		for range 3 {
			mustAdmit(t, l, c, 10, minute)
		}
		checkRateLimited(t, l, c, 10, minute.Add(59*time.Second))
	})

	t.Run("EachMinuteStartsAfresh", func(t *testing.T) {
		l := newLimiter(t)
		c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-window", RPM: 1, TPM: 100}}
		old := mustAdmit(t, l, c, 100, minute)
		checkRateLimited(t, l, c, 1, minute.Add(30*time.Second))
		mustAdmit(t, l, c, 100, minute.Add(time.Minute))
		if err := l.Settle(ctx, old, 0); err != nil { // a refund to a past minute
			t.Fatal(err)
		}
		checkRateLimited(t, l, c, 1, minute.Add(time.Minute))
	})

	t.Run("KeysAreIndependentAndZeroIsUnlimited", func(t *testing.T) {
		l := newLimiter(t)
		mustAdmit(t, l, []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-a", TPM: 10}}, 10, minute)
		mustAdmit(t, l, []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-b", TPM: 10}}, 10, minute)
		free := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-free"}}
		for range 100 {
			mustAdmit(t, l, free, 1_000_000, minute)
		}
	})

	// A client address's failed authentications on the model endpoints
	// and on the admin side are two counts.
	t.Run("AddressScopesCountApart", func(t *testing.T) {
		l := newLimiter(t)
		for _, scope := range []domain.LimitScope{domain.LimitAddress, domain.LimitAdminAddress} {
			c := []domain.RateLimit{{Scope: scope, ID: "192.0.2.66", RPM: 1}}
			mustAdmit(t, l, c, 0, minute)
			checkRateLimited(t, l, c, 0, minute)
		}
	})

	testRateLimits(t, newLimiter)
	testSeveralLimits(t, newLimiter)
}

// testSeveralLimits checks a call counted against several limits at once
// (a key's, a user's, a team's, a model's): all of them or none, the
// refusal naming the limit without room, and the headers' state the
// tightest of them.
func testSeveralLimits(t *testing.T, newLimiter func(t *testing.T) ports.RateLimiter) {
	ctx := context.Background()
	minute := day0.Truncate(time.Minute)
	key := func(id string) domain.RateLimit {
		return domain.RateLimit{Scope: domain.LimitKey, ID: id, RPM: 10, TPM: 1000}
	}
	user := domain.RateLimit{Scope: domain.LimitUser, ID: "alice", RPM: 3}
	team := domain.RateLimit{Scope: domain.LimitTeam, ID: "risk", TPM: 100}

	t.Run("AUsersLimitHoldsOverAllTheirKeys", func(t *testing.T) {
		l := newLimiter(t)
		for i := range 3 {
			mustAdmit(t, l, []domain.RateLimit{key(fmt.Sprintf("k%d", i)), user}, 1, minute)
		}
		_, err := l.Admit(ctx, []domain.RateLimit{key("k9"), user}, 1, minute)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || !strings.Contains(de.Message, `user "alice"`) {
			t.Fatalf("a fourth call of a user with rpm 3 on a fresh key: %v, want a rate-limited error naming the user", err)
		}
		// The refusal counted nothing on the fresh key.
		h := mustAdmit(t, l, []domain.RateLimit{key("k9")}, 1, minute)
		if h.Limits.Requests.Remaining != 9 {
			t.Fatalf("the fresh key has %d requests left, want 9: the refused call counted on it", h.Limits.Requests.Remaining)
		}
	})

	t.Run("AllOrNoneAndTheTightestIsReported", func(t *testing.T) {
		l := newLimiter(t)
		both := []domain.RateLimit{key("k-both"), team}
		h := mustAdmit(t, l, both, 60, minute.Add(time.Second))
		want := domain.RateLimits{
			Requests: domain.Allowance{Limit: 10, Remaining: 9, Reset: minute.Add(time.Minute)},
			Tokens:   domain.Allowance{Limit: 100, Remaining: 40, Reset: minute.Add(time.Minute)},
		}
		checkLimits(t, h.Limits, want)
		_, err := l.Admit(ctx, both, 60, minute.Add(2*time.Second))
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || !strings.Contains(de.Message, `team "risk"`) {
			t.Fatalf("a call over the team's tpm: %v, want a rate-limited error naming the team", err)
		}
		// The refused call held nothing on the key: its 1000 tpm has 940 left.
		if k := mustAdmit(t, l, []domain.RateLimit{key("k-both")}, 1, minute.Add(3*time.Second)); k.Limits.Tokens.Remaining != 939 {
			t.Fatalf("the key has %d tokens left, want 939 (1000 - 60 - 1)", k.Limits.Tokens.Remaining)
		}
		if err := l.Settle(ctx, h, 10); err != nil { // 50 back to the key and the team
			t.Fatal(err)
		}
		mustAdmit(t, l, both, 90, minute.Add(4*time.Second))
	})

	t.Run("ALimitTooSmallForTheCallNamesItself", func(t *testing.T) {
		l := newLimiter(t)
		_, err := l.Admit(ctx, []domain.RateLimit{key("k-small"), {Scope: domain.LimitModel, ID: "gpt-x", TPM: 50}}, 51, minute)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || !strings.Contains(de.Message, `model "gpt-x"`) {
			t.Fatalf("51 tokens against a model's tpm of 50: %v, want an invalid-request error naming the model", err)
		}
	})
}

func testRateLimits(t *testing.T, newLimiter func(t *testing.T) ports.RateLimiter) {
	ctx := context.Background()
	minute := day0.Truncate(time.Minute)
	t.Run("TheKeysStateIsReported", func(t *testing.T) {
		l := newLimiter(t)
		c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-state", RPM: 2, TPM: 100}}
		h := mustAdmit(t, l, c, 30, minute.Add(10*time.Second))
		want := domain.RateLimits{
			Requests: domain.Allowance{Limit: 2, Remaining: 1, Reset: minute.Add(time.Minute)},
			Tokens:   domain.Allowance{Limit: 100, Remaining: 70, Reset: minute.Add(time.Minute)},
		}
		checkLimits(t, h.Limits, want)
		mustAdmit(t, l, c, 30, minute.Add(20*time.Second))
		h, err := l.Admit(ctx, c, 30, minute.Add(30*time.Second))
		if domain.KindOf(err) != domain.KindRateLimited {
			t.Fatalf("third call with rpm 2: %v, want rate limited", err)
		}
		want.Requests.Remaining, want.Tokens.Remaining = 0, 40
		checkLimits(t, h.Limits, want)
		if free := mustAdmit(t, l, []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-nolimit"}}, 10, minute); free.Limits.Known() {
			t.Fatalf("a key without limits reported %+v, want nothing", free.Limits)
		}
	})

	t.Run("SlotsHoldTheirLimitUnderConcurrency", func(t *testing.T) {
		l := newLimiter(t)
		slot := ports.Slot{Name: "key:k-conc", Limit: 5}
		var mu sync.Mutex
		var leases []ports.Lease
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				lease, err := l.Occupy(ctx, fmt.Sprintf("call-%d", i), []ports.Slot{slot})
				var full *ports.SlotFullError
				switch {
				case err == nil:
					mu.Lock()
					leases = append(leases, lease)
					mu.Unlock()
				case errors.As(err, &full) && full.Slot == slot:
				default:
					t.Errorf("Occupy: %v, want nil or a SlotFullError naming %s", err, slot.Name)
				}
			})
		}
		wg.Wait()
		if len(leases) != 5 {
			t.Fatalf("%d calls occupied a slot limited to 5", len(leases))
		}
		if err := l.Vacate(ctx, leases[0]); err != nil {
			t.Fatal(err)
		}
		mustOccupy(t, l, "call-after", slot)
		checkFull(t, l, "call-over", slot, slot)
	})

	t.Run("OccupyIsAllOrNone", func(t *testing.T) {
		l := newLimiter(t)
		key := ports.Slot{Name: "key:k-all", Limit: 2}
		team := ports.Slot{Name: "team:t-all", Limit: 1}
		first := mustOccupy(t, l, "c1", key, team)
		checkFull(t, l, "c2", team, key, team)
		mustOccupy(t, l, "c3", key) // c2 took no place in the key's slot
		checkFull(t, l, "c4", key, key)
		if err := l.Vacate(ctx, first); err != nil {
			t.Fatal(err)
		}
		mustOccupy(t, l, "c5", key, team)
	})

	t.Run("ASlotWithoutALimitIsNotCounted", func(t *testing.T) {
		l := newLimiter(t)
		for i := range 20 {
			mustOccupy(t, l, fmt.Sprintf("free-%d", i), ports.Slot{Name: "team:unlimited"})
		}
	})
}

func mustOccupy(t *testing.T, l ports.RateLimiter, id string, slots ...ports.Slot) ports.Lease {
	t.Helper()
	lease, err := l.Occupy(context.Background(), id, slots)
	if err != nil {
		t.Fatalf("Occupy(%s, %v): %v", id, slots, err)
	}
	return lease
}

func checkFull(t *testing.T, l ports.RateLimiter, id string, full ports.Slot, slots ...ports.Slot) {
	t.Helper()
	_, err := l.Occupy(context.Background(), id, slots)
	var fe *ports.SlotFullError
	if !errors.As(err, &fe) || fe.Slot != full {
		t.Fatalf("Occupy(%s, %v) = %v, want a SlotFullError naming %s", id, slots, err, full.Name)
	}
}

func checkLimits(t *testing.T, got, want domain.RateLimits) {
	t.Helper()
	same := func(a, b domain.Allowance) bool {
		return a.Limit == b.Limit && a.Remaining == b.Remaining && a.Reset.Equal(b.Reset)
	}
	if !same(got.Requests, want.Requests) || !same(got.Tokens, want.Tokens) {
		t.Fatalf("limits reported %+v, want %+v", got, want)
	}
}

func mustAdmit(t *testing.T, l ports.RateLimiter, c []domain.RateLimit, tokens int, now time.Time) ports.RateHold {
	t.Helper()
	h, err := l.Admit(context.Background(), c, tokens, now)
	if err != nil {
		t.Fatalf("Admit(%v, %d tokens): %v", c, tokens, err)
	}
	return h
}

func checkRateLimited(t *testing.T, l ports.RateLimiter, c []domain.RateLimit, tokens int, now time.Time) {
	t.Helper()
	_, err := l.Admit(context.Background(), c, tokens, now)
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || de.RetryAfter <= 0 {
		t.Fatalf("Admit(%v, %d tokens) = %v, want a rate-limited error with Retry-After", c, tokens, err)
	}
}
