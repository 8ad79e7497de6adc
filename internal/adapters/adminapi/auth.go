package adminapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// authenticate admits requests with "Authorization: Bearer <admin key>".
// Failed attempts are counted per client address; past the limit the
// address is refused with 429 until its window ends, before any lookup.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r)
		if wait := h.throttle.blocked(addr); wait > 0 {
			h.writeError(w, r, &domain.Error{Kind: domain.KindRateLimited, Code: "too_many_failed_authentications",
				Message: "too many failed authentications from this address; try again later", RetryAfter: wait})
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		var a domain.Actor
		var err error
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			err = &domain.Error{Kind: domain.KindUnauthenticated, Code: "missing_admin_key",
				Message: "send an admin key in the Authorization header: 'Authorization: Bearer tga-…'"}
		} else {
			a, err = h.svc.AuthenticateAdminKey(r.Context(), strings.TrimSpace(token))
		}
		if err != nil {
			if domain.KindOf(err) == domain.KindUnauthenticated {
				h.throttle.fail(addr)
			}
			h.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	})
}

// throttle counts failed authentications per client address in fixed
// windows. It holds at most maxTracked addresses: when full, it forgets
// every address whose window has ended, and if none has, refuses to track
// new ones (they are then throttled at once, which errs on the safe side).
type throttle struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	now     func() time.Time
	entries map[string]*attempts
}

type attempts struct {
	start    time.Time
	failures int
}

const maxTracked = 100_000

func newThrottle(maxFailures int, window time.Duration, now func() time.Time) *throttle {
	return &throttle{max: maxFailures, window: window, now: now, entries: map[string]*attempts{}}
}

// blocked returns how long addr must wait, or zero.
func (t *throttle) blocked(addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[addr]
	if !ok {
		if len(t.entries) >= maxTracked {
			return t.window
		}
		return 0
	}
	now := t.now()
	end := e.start.Add(t.window)
	if !now.Before(end) {
		delete(t.entries, addr)
		return 0
	}
	if e.failures >= t.max {
		return end.Sub(now)
	}
	return 0
}

// fail counts one failed authentication from addr.
func (t *throttle) fail(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e, ok := t.entries[addr]
	if !ok || !now.Before(e.start.Add(t.window)) {
		if !ok && len(t.entries) >= maxTracked {
			for a, old := range t.entries {
				if !now.Before(old.start.Add(t.window)) {
					delete(t.entries, a)
				}
			}
			if len(t.entries) >= maxTracked {
				return
			}
		}
		e = &attempts{start: now}
		t.entries[addr] = e
	}
	e.failures++
}
