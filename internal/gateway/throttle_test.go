package gateway_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

const (
	goodSecret = "tg-the-test-key-0123456789"
	badSecret  = "tg-a-wrong-guess-0000000000"
	attacker   = "192.0.2.66"
)

// clock is a settable clock for the throttle's windows.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// throttledService is a service that accepts goodSecret and lets an
// address fail limit times per window of limiter.
func throttledService(t testing.TB, limiter ports.RateLimiter, limit int, clk *clock) *gateway.Service {
	t.Helper()
	cat, err := domain.NewCatalogue([]domain.Model{{Name: "main", Type: domain.ModelChat, Provider: "p", MaxOutputTokens: 10}})
	if err != nil {
		t.Fatal(err)
	}
	keys := memory.NewKeyStore()
	keys.Add(goodSecret, domain.Caller{User: "keyed", Team: "risk"})
	svc, err := gateway.NewService(gateway.Deps{Catalogue: cat, Providers: map[string]ports.Provider{"p": &scriptedProvider{}},
		Keys: keys, Ledger: memory.NewLedger(), CallLog: memory.NewCallLog(), Limiter: limiter},
		gateway.Options{AuthFailureLimit: limit, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// checkThrottled checks that err refuses a throttled address: 429 with
// Retry-After, naming no secret.
func checkThrottled(t *testing.T, err error, what string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || de.Code != auththrottle.CodeTooManyFailures || de.RetryAfter <= 0 {
		t.Fatalf("%s: %v, want 429 %s with Retry-After", what, err, auththrottle.CodeTooManyFailures)
	}
	if strings.Contains(de.Message, badSecret) || strings.Contains(de.Message, goodSecret) || strings.Contains(de.Message, attacker) {
		t.Fatalf("%s: the refusal names a secret or the address: %q", what, de.Message)
	}
}

// An address gets exactly limit failures per window; then every request
// of it is refused, a good key's too, until the window ends. Successes
// between the failures do not give it more; other addresses are not
// touched.
func TestFailedAuthenticationsAreThrottled(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 12, 0, 10, 0, time.UTC)}
	svc := throttledService(t, newLimiterSpy(t), 3, clk)
	ctx := context.Background()
	for i := range 3 {
		if _, err := svc.Authenticate(ctx, badSecret, attacker); domain.KindOf(err) != domain.KindUnauthenticated {
			t.Fatalf("failure %d: %v, want 401", i+1, err)
		}
		// A success between failures resets nothing.
		if _, err := svc.Authenticate(ctx, goodSecret, attacker); err != nil {
			t.Fatalf("the good key before the limit: %v", err)
		}
	}
	_, err := svc.Authenticate(ctx, badSecret, attacker)
	checkThrottled(t, err, "the fourth failure")
	if de, _ := errors.AsType[*domain.Error](err); de.RetryAfter != 50*time.Second {
		t.Fatalf("Retry-After %v, want the 50 s left of the window", de.RetryAfter)
	}
	_, err = svc.Authenticate(ctx, goodSecret, attacker)
	checkThrottled(t, err, "a good key from the blocked address")
	if _, err := svc.Authenticate(ctx, goodSecret, "192.0.2.67"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if _, err := svc.Authenticate(ctx, badSecret, "192.0.2.67"); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("another address's first failure: %v, want 401", err)
	}
	clk.add(50 * time.Second)
	if _, err := svc.Authenticate(ctx, goodSecret, attacker); err != nil {
		t.Fatalf("the next window: %v", err)
	}
}

// Two replicas sharing one limiter share one count: failures spread over
// both get the limit once, not twice.
func TestReplicasShareTheFailureCount(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	shared := ratelimit.New()
	a, b := throttledService(t, shared, 4, clk), throttledService(t, shared, 4, clk)
	ctx := context.Background()
	for i, svc := range []*gateway.Service{a, b, a, b} {
		if _, err := svc.Authenticate(ctx, badSecret, attacker); domain.KindOf(err) != domain.KindUnauthenticated {
			t.Fatalf("failure %d: %v, want 401", i+1, err)
		}
	}
	for _, svc := range []*gateway.Service{b, a} {
		_, err := svc.Authenticate(ctx, badSecret, attacker)
		checkThrottled(t, err, "a failure past the limit")
		_, err = svc.Authenticate(ctx, goodSecret, attacker)
		checkThrottled(t, err, "a good key from the blocked address")
	}
}

// Limit 0 throttles nothing, and a request without an address is not
// counted.
func TestThrottleOffAndAddressless(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	off := throttledService(t, newLimiterSpy(t), 0, clk)
	on := throttledService(t, newLimiterSpy(t), 1, clk)
	ctx := context.Background()
	for range 5 {
		if _, err := off.Authenticate(ctx, badSecret, attacker); domain.KindOf(err) != domain.KindUnauthenticated {
			t.Fatalf("throttle off: %v", err)
		}
		if _, err := on.Authenticate(ctx, badSecret, ""); domain.KindOf(err) != domain.KindUnauthenticated {
			t.Fatalf("no address: %v", err)
		}
	}
}

// unreachableLimiter cannot count anything.
type unreachableLimiter struct{ ports.RateLimiter }

func (unreachableLimiter) Admit(context.Context, []domain.RateLimit, int, time.Time) (ports.RateHold, error) {
	return ports.RateHold{}, &domain.Error{Kind: domain.KindUnavailable, Message: "the rate limiter is unreachable"}
}

// A limiter that cannot count a failure leaves its answer a 401: a bad
// key is not a reason to answer 503.
func TestAFailureTheLimiterCannotCountIsStill401(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	svc := throttledService(t, unreachableLimiter{ratelimit.New()}, 1, clk)
	for range 3 {
		if _, err := svc.Authenticate(context.Background(), badSecret, attacker); domain.KindOf(err) != domain.KindUnauthenticated {
			t.Fatalf("%v, want 401", err)
		}
	}
}

// BenchmarkAuthenticate measures a valid key's authentication, with the
// throttle on (and an address blocked) and off: a success never reaches
// the limiter, so both allocate alike.
func BenchmarkAuthenticate(b *testing.B) {
	for _, limit := range []int{0, 20} {
		b.Run(map[int]string{0: "throttle-off", 20: "throttle-on"}[limit], func(b *testing.B) {
			clk := &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
			svc := throttledService(b, ratelimit.New(), limit, clk)
			ctx := context.Background()
			for range limit + 1 {
				_, _ = svc.Authenticate(ctx, badSecret, attacker)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.Authenticate(ctx, goodSecret, "192.0.2.7"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
