//go:build integration

package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tidygate/tidygate/internal/adapters/redislimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
	"github.com/tidygate/tidygate/internal/ports/contract"
	"github.com/tidygate/tidygate/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// newLimiter returns a limiter on url under a prefix of its own, so that
// tests sharing a server never see each other's counts.
func newLimiter(t *testing.T, url string, opts redislimit.Options) *redislimit.Limiter {
	t.Helper()
	o, err := redislimit.ParseURL(url, 0)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(o)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	opts.Prefix = "test:{" + hex.EncodeToString(b) + "}:"
	l := redislimit.New(rdb, opts)
	t.Cleanup(func() {
		l.Close()
		_ = rdb.Close()
	})
	return l
}

func TestContract(t *testing.T) {
	url := redistest.URL(t)
	contract.TestRateLimiter(t, func(t *testing.T) ports.RateLimiter {
		// A bound far above any answer time: the contract is about what is
		// counted, and its 50 concurrent calls open connections at once on
		// a machine that may be busy.
		return newLimiter(t, url, redislimit.Options{Timeout: 10 * time.Second})
	})
}

// A process that stops renewing its leases (it died) loses its places
// once they expire, and no sooner.
func TestLeasesOfAStoppedProcessExpire(t *testing.T) {
	url := redistest.URL(t)
	ctx := context.Background()
	slot := ports.Slot{Name: "key:k-crash", Limit: 2}
	opts := redislimit.Options{LeaseTTL: 600 * time.Millisecond, Timeout: 10 * time.Second}
	live, dead := sharing(t, url, opts) // two processes counting in one place
	for _, id := range []string{"a", "b"} {
		if _, err := dead.Occupy(ctx, id, []ports.Slot{slot}); err != nil {
			t.Fatal(err)
		}
	}
	dead.Close() // it renews nothing from now on
	var full *ports.SlotFullError
	if _, err := live.Occupy(ctx, "c", []ports.Slot{slot}); !errors.As(err, &full) {
		t.Fatalf("Occupy while the dead process's leases are fresh: %v, want the slot full", err)
	}
	// A live process's lease outlives many TTLs by renewal.
	held, err := live.Occupy(ctx, "renewed", []ports.Slot{{Name: "key:k-renew", Limit: 1}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := live.Occupy(ctx, "c", []ports.Slot{slot})
		if err == nil {
			break
		}
		if !errors.As(err, &full) || time.Now().After(deadline) {
			t.Fatalf("Occupy after the dead process's leases expired: %v, want a place", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := live.Occupy(ctx, "other", []ports.Slot{{Name: "key:k-renew", Limit: 1}}); !errors.As(err, &full) {
		t.Fatalf("a renewed lease lost its place: %v, want the slot full", err)
	}
	if err := live.Vacate(ctx, held); err != nil {
		t.Fatal(err)
	}
}

// sharing returns two limiters counting in the same keys.
func sharing(t *testing.T, url string, opts redislimit.Options) (a, b *redislimit.Limiter) {
	t.Helper()
	bs := make([]byte, 6)
	_, _ = rand.Read(bs)
	opts.Prefix = "test:{" + hex.EncodeToString(bs) + "}:"
	mk := func() *redislimit.Limiter {
		o, err := redislimit.ParseURL(url, 0)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(o)
		l := redislimit.New(rdb, opts)
		t.Cleanup(func() {
			l.Close()
			_ = rdb.Close()
		})
		return l
	}
	return mk(), mk()
}

type observer struct {
	mu          sync.Mutex
	transitions []bool
	allowed     int
	denied      int
}

func (o *observer) Available(up bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.transitions = append(o.transitions, up)
}

func (o *observer) DecidedWithoutRedis(allowed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if allowed {
		o.allowed++
	} else {
		o.denied++
	}
}

// With Redis stopped, calls are decided as configured within a bounded
// time, the outage is reported once, and limits come back by themselves
// when Redis does.
func TestRedisGoneAndBack(t *testing.T) {
	for _, allow := range []bool{false, true} {
		name := map[bool]string{false: "deny", true: "allow"}[allow]
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			obs := &observer{}
			l := newLimiter(t, srv.URL, redislimit.Options{AllowWhenUnavailable: allow, Observer: obs,
				Timeout: 200 * time.Millisecond, ProbeInterval: 200 * time.Millisecond})
			ctx := context.Background()
			c := []domain.RateLimit{{Scope: domain.LimitKey, ID: "k-outage", RPM: 1000}}
			slot := []ports.Slot{{Name: "key:k-outage", Limit: 10}}
			if _, err := l.Admit(ctx, c, 1, time.Now()); err != nil {
				t.Fatal(err)
			}
			srv.Stop(t)
			// A generous bound: the point is that no call waits on a dead
			// Redis for long, not how fast it is.
			const bound = 3 * time.Second
			for i := range 20 {
				began := time.Now()
				_, err := l.Admit(ctx, c, 1, time.Now())
				_, oerr := l.Occupy(ctx, "o", slot)
				took := time.Since(began)
				if took > bound {
					t.Fatalf("call %d with Redis down took %s, more than %s", i, took, bound)
				}
				for _, err := range []error{err, oerr} {
					switch {
					case allow && err != nil:
						t.Fatalf("allow: %v, want admitted", err)
					case !allow && domain.KindOf(err) != domain.KindUnavailable:
						t.Fatalf("deny: %v, want an unavailable error", err)
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
			srv.Start(t)
			deadline := time.Now().Add(30 * time.Second)
			for {
				h, err := l.Admit(ctx, c, 1, time.Now())
				if err == nil && h.Limits.Known() {
					break // counted in Redis again
				}
				if time.Now().After(deadline) {
					t.Fatalf("limits did not come back within 30 s of Redis's return: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if want := []bool{true, false, true}; !slices.Equal(obs.transitions, want) {
				t.Fatalf("transitions reported %v, want %v (once each way)", obs.transitions, want)
			}
			if allow && (obs.allowed == 0 || obs.denied != 0) || !allow && (obs.denied == 0 || obs.allowed != 0) {
				t.Fatalf("decided without Redis: %d allowed, %d denied", obs.allowed, obs.denied)
			}
		})
	}
}
