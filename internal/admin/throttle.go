package admin

import (
	"sync"
	"time"
)

// Throttle counts failed authentications per client address in fixed
// windows, for every way an administrator signs in (the admin API and the
// console share one, so that an address cannot double its attempts by
// switching). It holds at most maxTracked addresses: when full, it forgets
// every address whose window has ended, and if none has, refuses to track
// new ones (they are then throttled at once, which errs on the safe side).
type Throttle struct {
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

// NewThrottle returns a throttle that lets an address fail maxFailures
// times per window (defaults 10 and one minute) on the clock now
// (default time.Now).
func NewThrottle(maxFailures int, window time.Duration, now func() time.Time) *Throttle {
	if maxFailures <= 0 {
		maxFailures = 10
	}
	if window <= 0 {
		window = time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &Throttle{max: maxFailures, window: window, now: now, entries: map[string]*attempts{}}
}

// Blocked returns how long addr must wait before it may try again, or zero.
func (t *Throttle) Blocked(addr string) time.Duration {
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

// Fail counts one failed authentication from addr.
func (t *Throttle) Fail(addr string) {
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
