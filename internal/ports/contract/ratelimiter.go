package contract

import (
	"context"
	"errors"
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
// afresh each minute. newLimiter returns a limiter with nothing counted.
func TestRateLimiter(t *testing.T, newLimiter func(t *testing.T) ports.RateLimiter) {
	ctx := context.Background()
	minute := day0.Truncate(time.Minute)

	t.Run("TokensNeverOvershootUnderConcurrency", func(t *testing.T) {
		l := newLimiter(t)
		c := domain.Caller{KeyID: "k-tpm", TPM: 100}
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
		c := domain.Caller{KeyID: "k-refund", TPM: 100}
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
		c := domain.Caller{KeyID: "k-release", TPM: 100}
		h := mustAdmit(t, l, c, 100, minute)
		if err := l.Settle(ctx, h, 0); err != nil {
			t.Fatal(err)
		}
		mustAdmit(t, l, c, 100, minute)
	})

	t.Run("UsageBeyondTheHoldIsNotCounted", func(t *testing.T) {
		l := newLimiter(t)
		c := domain.Caller{KeyID: "k-over", TPM: 100}
		h := mustAdmit(t, l, c, 40, minute)
		if err := l.Settle(ctx, h, 1000); err != nil {
			t.Fatal(err)
		}
		mustAdmit(t, l, c, 60, minute)
	})

	t.Run("ACallNoMinuteCanTakeIsInvalid", func(t *testing.T) {
		l := newLimiter(t)
		c := domain.Caller{KeyID: "k-big", TPM: 100}
		_, err := l.Admit(ctx, c, 101, minute)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "max_tokens" {
			t.Fatalf("Admit(101 tokens, tpm 100) = %v, want an invalid-request error on max_tokens", err)
		}
		mustAdmit(t, l, c, 100, minute) // the refusal held nothing
	})

	t.Run("RequestsPerMinuteAreExact", func(t *testing.T) {
		l := newLimiter(t)
		c := domain.Caller{KeyID: "k-rpm", RPM: 3}
		for range 3 {
			mustAdmit(t, l, c, 10, minute)
		}
		checkRateLimited(t, l, c, 10, minute.Add(59*time.Second))
	})

	t.Run("EachMinuteStartsAfresh", func(t *testing.T) {
		l := newLimiter(t)
		c := domain.Caller{KeyID: "k-window", RPM: 1, TPM: 100}
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
		mustAdmit(t, l, domain.Caller{KeyID: "k-a", TPM: 10}, 10, minute)
		mustAdmit(t, l, domain.Caller{KeyID: "k-b", TPM: 10}, 10, minute)
		free := domain.Caller{KeyID: "k-free"}
		for range 100 {
			mustAdmit(t, l, free, 1_000_000, minute)
		}
	})
}

func mustAdmit(t *testing.T, l ports.RateLimiter, c domain.Caller, tokens int, now time.Time) ports.RateHold {
	t.Helper()
	h, err := l.Admit(context.Background(), c, tokens, now)
	if err != nil {
		t.Fatalf("Admit(%s, %d tokens): %v", c.KeyID, tokens, err)
	}
	return h
}

func checkRateLimited(t *testing.T, l ports.RateLimiter, c domain.Caller, tokens int, now time.Time) {
	t.Helper()
	_, err := l.Admit(context.Background(), c, tokens, now)
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || de.RetryAfter <= 0 {
		t.Fatalf("Admit(%s, %d tokens) = %v, want a rate-limited error with Retry-After", c.KeyID, tokens, err)
	}
}
