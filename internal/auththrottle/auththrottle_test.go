package auththrottle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
)

const (
	attacker = "192.0.2.66"
	other    = "192.0.2.67"
)

// atMinute is a clock stopped at the start of a window.
func atMinute() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// checkRefused checks that err is the refusal of a throttled address,
// retryable after wait.
func checkRefused(t *testing.T, err error, wait time.Duration, what string) {
	t.Helper()
	de, ok := errors.AsType[*domain.Error](err)
	if !ok || de.Kind != domain.KindRateLimited || de.Code != auththrottle.CodeTooManyFailures || de.RetryAfter != wait {
		t.Fatalf("%s: %v, want %s retryable after %v", what, err, auththrottle.CodeTooManyFailures, wait)
	}
}

// TestThrottle checks the failed-authentication window on a fake clock: an
// address gets limit failures, the one past it is refused and so is the
// address until its window ends, other addresses are not affected, and a
// new window starts clean.
func TestThrottle(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	th := auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 3, func() time.Time { return now })
	for i := range 3 {
		if err := th.Check(attacker); err != nil {
			t.Fatalf("refused after %d failures (limit 3): %v", i, err)
		}
		if err := th.Fail(ctx, attacker); err != nil {
			t.Fatalf("failure %d refused (limit 3): %v", i+1, err)
		}
	}
	if err := th.Check(attacker); err != nil {
		t.Fatalf("refused after 3 failures, before one past the limit: %v", err)
	}
	checkRefused(t, th.Fail(ctx, attacker), 50*time.Second, "the fourth failure")
	now = now.Add(20 * time.Second)
	checkRefused(t, th.Check(attacker), 30*time.Second, "the blocked address")
	if err := th.Check(other); err != nil {
		t.Errorf("another address: %v", err)
	}
	if err := th.Fail(ctx, other); err != nil {
		t.Errorf("another address's first failure: %v", err)
	}
	now = now.Add(30 * time.Second)
	if err := th.Check(attacker); err != nil {
		t.Errorf("after the window: %v", err)
	}
	if err := th.Fail(ctx, attacker); err != nil {
		t.Errorf("one failure in a new window: %v", err)
	}
}

// Two throttles over one limiter stand for two replicas sharing Redis: ten
// failures spread over both are all they get together, not ten each.
func TestReplicasShareOneCount(t *testing.T) {
	ctx := context.Background()
	shared := ratelimit.New()
	a := auththrottle.New(shared, domain.LimitAdminAddress, 10, atMinute)
	b := auththrottle.New(shared, domain.LimitAdminAddress, 10, atMinute)
	for i := range 10 {
		th := []*auththrottle.Throttle{a, b}[i%2]
		if err := th.Fail(ctx, attacker); err != nil {
			t.Fatalf("failure %d of 10: %v", i+1, err)
		}
	}
	checkRefused(t, a.Fail(ctx, attacker), time.Minute, "the eleventh failure, on one replica")
	checkRefused(t, b.Fail(ctx, attacker), time.Minute, "the twelfth, on the other")
	checkRefused(t, a.Check(attacker), time.Minute, "the address on one replica")
	checkRefused(t, b.Check(attacker), time.Minute, "the address on the other")
}

// Failures under one scope do not count under another over the same
// limiter: a mistyped API key does not lock its address out of the admin
// side.
func TestScopesCountApart(t *testing.T) {
	ctx := context.Background()
	shared := ratelimit.New()
	models := auththrottle.New(shared, domain.LimitAddress, 1, atMinute)
	adminSide := auththrottle.New(shared, domain.LimitAdminAddress, 1, atMinute)
	if err := models.Fail(ctx, attacker); err != nil {
		t.Fatal(err)
	}
	checkRefused(t, models.Fail(ctx, attacker), time.Minute, "the second failure on the model endpoints")
	if err := adminSide.Fail(ctx, attacker); err != nil {
		t.Fatalf("the first failure on the admin side: %v", err)
	}
}

// Limit 0 throttles nothing, and an empty address is neither counted nor
// refused.
func TestOffAndAddressless(t *testing.T) {
	ctx := context.Background()
	off := auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 0, atMinute)
	on := auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 1, atMinute)
	for i := range 3 {
		if err := off.Fail(ctx, attacker); err != nil {
			t.Fatalf("throttle off, failure %d: %v", i+1, err)
		}
		if err := on.Fail(ctx, ""); err != nil {
			t.Fatalf("no address, failure %d: %v", i+1, err)
		}
	}
	if err := on.Check(""); err != nil {
		t.Fatalf("no address: %v", err)
	}
}

// TestFailedCountsOnlyAuthenticationFailures checks Failed: an error that
// is not a failed authentication is answered as it is and not counted; a
// failed authentication is answered as it is until one is too many, which
// is answered with the refusal.
func TestFailedCountsOnlyAuthenticationFailures(t *testing.T) {
	ctx := context.Background()
	th := auththrottle.New(ratelimit.New(), domain.LimitAddress, 1, atMinute)
	down := &domain.Error{Kind: domain.KindUnavailable, Code: "database_unavailable", Message: "down"}
	for range 3 {
		if got := th.Failed(ctx, attacker, down); !errors.Is(got, down) {
			t.Fatalf("an outage answered %v, want it as it is", got)
		}
	}
	wrong := &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_api_key", Message: "wrong"}
	if got := th.Failed(ctx, attacker, wrong); !errors.Is(got, wrong) {
		t.Fatalf("the first wrong key (limit 1) answered %v, want it as it is: outages must not have counted", got)
	}
	checkRefused(t, th.Failed(ctx, attacker, wrong), time.Minute, "the second wrong key")
}
