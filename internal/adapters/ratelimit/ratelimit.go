// Package ratelimit is the in-process rate limiter: each key's requests and
// tokens per window (a minute unless configured otherwise), counted in
// fixed windows in this process's memory, and the calls in flight per
// slot (a key's, a team's share). It is per replica: N replicas allow up
// to N times each limit. The shared limiter (internal/adapters/redislimit)
// implements the same port with the same semantics, its counts in Redis.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.RateLimiter = (*Limiter)(nil)

// Limiter counts each key's requests and held tokens per window, and the
// calls in flight in each slot.
type Limiter struct {
	window time.Duration

	mu      sync.Mutex
	windows map[string]*window
	flight  map[string]int // calls in flight, by slot name
}

type window struct {
	start    time.Time
	requests int
	tokens   int // held or used in this window
}

// New returns a limiter with one-minute windows and no calls counted.
func New() *Limiter { return NewWindowed(time.Minute) }

// NewWindowed returns a limiter whose rpm and tpm limits count per window
// of the given length (tests shorten it); d <= 0 means a minute.
func NewWindowed(d time.Duration) *Limiter {
	if d <= 0 {
		d = time.Minute
	}
	return &Limiter{window: d, windows: make(map[string]*window), flight: make(map[string]int)}
}

// Admit counts one request and holds tokens for the window containing now,
// or refuses the call and holds nothing.
func (l *Limiter) Admit(_ context.Context, c domain.Caller, tokens int, now time.Time) (ports.RateHold, error) {
	start := now.Truncate(l.window)
	none := ports.RateHold{KeyID: c.KeyID, Window: start}
	if err := c.CheckRateFit(tokens); err != nil {
		return none, err
	}
	if c.RPM <= 0 && c.TPM <= 0 {
		return none, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.current(c.KeyID, start)
	refused := c.RateRefusal(tokens, w.requests, w.tokens)
	if refused == "" {
		w.requests++
		if c.TPM > 0 {
			w.tokens += tokens
			none.Tokens = tokens
		}
	}
	none.Limits = c.RateLimitsAt(w.requests, w.tokens, start.Add(l.window))
	if refused != "" {
		return none, domain.RateLimited(refused, start.Add(l.window).Sub(now))
	}
	return none, nil
}

// Settle gives back the part of the hold the call did not use. A hold on
// a window that has passed has nothing left to give back.
func (l *Limiter) Settle(_ context.Context, h ports.RateHold, used int) error {
	unused := h.Tokens - min(max(used, 0), h.Tokens)
	if unused == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.windows[h.KeyID]; w != nil && w.start.Equal(h.Window) {
		w.tokens = max(w.tokens-unused, 0)
	}
	return nil
}

// Occupy takes a place in every counted slot, or in none.
func (l *Limiter) Occupy(_ context.Context, id string, slots []ports.Slot) (ports.Lease, error) {
	lease := ports.Lease{ID: id}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range slots {
		if s.Limit > 0 && l.flight[s.Name] >= s.Limit {
			return ports.Lease{ID: id}, &ports.SlotFullError{Slot: s}
		}
	}
	for _, s := range slots {
		if s.Limit > 0 {
			l.flight[s.Name]++
			lease.Slots = append(lease.Slots, s.Name)
		}
	}
	return lease, nil
}

// Vacate gives the lease's places back.
func (l *Limiter) Vacate(_ context.Context, lease ports.Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, name := range lease.Slots {
		if l.flight[name] <= 1 {
			delete(l.flight, name)
			continue
		}
		l.flight[name]--
	}
	return nil
}

// current returns the key's window starting at start; the caller holds mu.
func (l *Limiter) current(keyID string, start time.Time) *window {
	w := l.windows[keyID]
	if w == nil || !w.start.Equal(start) {
		if len(l.windows) > 10_000 {
			l.sweep(start)
		}
		w = &window{start: start}
		l.windows[keyID] = w
	}
	return w
}

func (l *Limiter) sweep(start time.Time) {
	for k, w := range l.windows {
		if w.start.Before(start) {
			delete(l.windows, k)
		}
	}
}
