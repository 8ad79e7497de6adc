// Package auththrottle refuses the client addresses that fail to
// authenticate too often: one rule for the model endpoints, the admin API
// and the console, counted in the rate limiter so that the replicas share
// the count when the limiter is shared.
package auththrottle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// CodeTooManyFailures is the code of the KindRateLimited error that
// refuses a client address which has failed to authenticate too often.
const CodeTooManyFailures = "too_many_failed_authentications"

// maxBlocked bounds the addresses a Throttle remembers as blocked. It only
// grows by addresses that each made a whole window's failures; when it is
// full, those whose window has ended are forgotten, and a new one is then
// not remembered: its failures are still refused by the rate limiter, one
// round trip each.
const maxBlocked = 100_000

// Throttle counts failed authentications per client address in the rate
// limiter's windows, under a scope of its own (so that failures on one
// side, such as the model endpoints, do not lock an address out of
// another, such as the admin side): shared by the replicas when the
// limiter is, so that an address cannot multiply its guesses by the number
// of replicas. Only failures reach the limiter; a success is never counted
// and never resets an address's count, so an attacker holding one valid
// key gains nothing by mixing it in.
//
// Once the limiter refuses one of an address's failures, this replica
// remembers the address until its window ends and refuses all of its
// requests at once, valid credentials or not, without asking anyone: a
// guess is never checked, so a right one cannot show. Another replica
// learns of the block at the address's first failure there, so an address
// gets at most limit failures per window, plus one per replica that had
// not yet seen it blocked.
type Throttle struct {
	limiter ports.RateLimiter
	scope   domain.LimitScope
	limit   int // failures per window; 0: not throttled
	now     func() time.Time

	count   atomic.Int64 // len(blocked), read without the lock
	mu      sync.RWMutex
	blocked map[string]time.Time // address → the end of its window
}

// New returns a throttle that lets an address fail limit times per window
// of limiter, counted under scope (0 or less: failures are not throttled),
// on the clock now (default time.Now).
func New(limiter ports.RateLimiter, scope domain.LimitScope, limit int, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	return &Throttle{limiter: limiter, scope: scope, limit: max(limit, 0), now: now, blocked: map[string]time.Time{}}
}

// Check refuses, with a KindRateLimited error (CodeTooManyFailures), an
// address this replica knows has used up its window's failures; an empty
// address is never refused. While no address is blocked it costs one
// atomic load.
func (t *Throttle) Check(from string) error {
	if t.count.Load() == 0 || from == "" {
		return nil
	}
	t.mu.RLock()
	until, ok := t.blocked[from]
	t.mu.RUnlock()
	if !ok {
		return nil
	}
	now := t.now()
	if !now.Before(until) {
		t.mu.Lock()
		if u, ok := t.blocked[from]; ok && !now.Before(u) {
			delete(t.blocked, from)
			t.count.Store(int64(len(t.blocked)))
		}
		t.mu.Unlock()
		return nil
	}
	return tooManyFailures(until.Sub(now))
}

// Fail counts one failed authentication of from (an empty address is not
// counted), and returns the refusal to answer instead when it is one too
// many: from then on Check refuses the address until its window ends. A
// limiter that cannot count it (unreachable) leaves the failure's own
// answer standing: the limiter logs and reports its outage itself.
func (t *Throttle) Fail(ctx context.Context, from string) error {
	if t.limit == 0 || from == "" {
		return nil
	}
	now := t.now()
	hold, err := t.limiter.Admit(ctx, []domain.RateLimit{{Scope: t.scope, ID: from, RPM: t.limit}}, 0, now)
	if err == nil {
		// Nothing is held (no tokens); settling keeps the port's rule.
		_ = t.limiter.Settle(ctx, hold, 0)
		return nil
	}
	de, ok := errors.AsType[*domain.Error](err)
	if !ok || de.Kind != domain.KindRateLimited {
		return nil //nolint:nilerr // the limiter's outage is not the client's: the failure's own 401 stands
	}
	wait := max(de.RetryAfter, time.Second)
	t.remember(from, now.Add(wait), now)
	return tooManyFailures(wait)
}

// Failed is what to answer for an authentication of from that ended with
// err: err itself, unless err is a KindUnauthenticated error whose failure
// (counted by Fail) is one too many, and then the refusal. Every
// authentication path answers its failures through it.
func (t *Throttle) Failed(ctx context.Context, from string, err error) error {
	if domain.KindOf(err) != domain.KindUnauthenticated {
		return err
	}
	if refused := t.Fail(ctx, from); refused != nil {
		return refused
	}
	return err
}

// remember blocks from until, forgetting ended blocks when full.
func (t *Throttle) remember(from string, until, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.blocked[from]; !ok && len(t.blocked) >= maxBlocked {
		for a, u := range t.blocked {
			if !now.Before(u) {
				delete(t.blocked, a)
			}
		}
		if len(t.blocked) >= maxBlocked {
			return
		}
	}
	t.blocked[from] = until
	t.count.Store(int64(len(t.blocked)))
}

// tooManyFailures is the refusal of a blocked address, retryable when its
// window ends. It names neither the address nor any credential.
func tooManyFailures(wait time.Duration) error {
	secs := int64((wait + time.Second - 1) / time.Second)
	return &domain.Error{Kind: domain.KindRateLimited, Code: CodeTooManyFailures, RetryAfter: wait,
		Message: fmt.Sprintf("too many failed authentications from this address; try again in %d s", secs)}
}
