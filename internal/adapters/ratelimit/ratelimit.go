// Package ratelimit is the in-process rate limiter: the requests and tokens
// per window (a minute unless configured otherwise) of each key, user,
// team, model and provider account, counted in fixed windows in this
// process's memory, and the calls in flight per slot. It is per replica: N replicas allow up
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

// Limiter counts the requests and held tokens per window of each counter
// (domain.RateLimit.Counter), and the calls in flight in each slot.
type Limiter struct {
	window time.Duration

	mu      sync.Mutex
	windows map[string]*window // by counter
	flight  map[string]int     // calls in flight, by slot name
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

// Admit counts one request and holds tokens for the window containing now
// against every limit, or refuses the call and holds nothing.
func (l *Limiter) Admit(_ context.Context, limits []domain.RateLimit, tokens int, now time.Time) (ports.RateHold, error) {
	start := now.Truncate(l.window)
	end := start.Add(l.window)
	hold := ports.RateHold{Window: start}
	if err := domain.CheckRateFit(limits, tokens); err != nil {
		return hold, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var counted []domain.RateLimit
	var windows []*window
	refused := ""
	for _, lim := range limits {
		if !lim.Limited() {
			continue
		}
		w := l.current(lim.Counter(), start)
		if refused == "" {
			refused = lim.Refusal(tokens, w.requests, w.tokens)
		}
		counted, windows = append(counted, lim), append(windows, w)
	}
	for i, lim := range counted {
		w := windows[i]
		if refused == "" {
			w.requests++
			if lim.TPM > 0 {
				w.tokens += tokens
				hold.Counters = append(hold.Counters, lim.Counter())
			}
		}
		hold.Limits = hold.Limits.Tighter(lim.At(w.requests, w.tokens, end))
	}
	if refused != "" {
		return ports.RateHold{Window: start, Limits: hold.Limits}, domain.RateLimited(refused, end.Sub(now))
	}
	if len(hold.Counters) > 0 {
		hold.Tokens = tokens
	}
	return hold, nil
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
	for _, name := range h.Counters {
		if w := l.windows[name]; w != nil && w.start.Equal(h.Window) {
			w.tokens = max(w.tokens-unused, 0)
		}
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

// current returns the counter's window starting at start; the caller
// holds mu.
func (l *Limiter) current(counter string, start time.Time) *window {
	w := l.windows[counter]
	if w == nil || !w.start.Equal(start) {
		if len(l.windows) > 10_000 {
			l.sweep(start)
		}
		w = &window{start: start}
		l.windows[counter] = w
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
