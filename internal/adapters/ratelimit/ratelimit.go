// Package ratelimit is the in-process rate limiter: each key's requests and
// tokens per minute, counted in fixed one-minute windows in this process's
// memory. It is per replica: N replicas allow up to N times each limit
// (budgets, unlike rate limits, are exact across replicas because they live
// in PostgreSQL). A limiter shared by the replicas implements the same port
// with the same semantics.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.RateLimiter = (*Limiter)(nil)

// Limiter counts each key's requests and held tokens per minute.
type Limiter struct {
	mu      sync.Mutex
	windows map[string]*window
}

type window struct {
	start    time.Time
	requests int
	tokens   int // held or used in this minute
}

// New returns a limiter with no calls counted.
func New() *Limiter { return &Limiter{windows: make(map[string]*window)} }

// Admit counts one request and holds tokens for the minute containing now,
// or refuses the call and holds nothing.
func (l *Limiter) Admit(_ context.Context, c domain.Caller, tokens int, now time.Time) (ports.RateHold, error) {
	start := now.Truncate(time.Minute)
	none := ports.RateHold{KeyID: c.KeyID, Window: start}
	if c.TPM > 0 && tokens > c.TPM {
		return none, &domain.Error{Kind: domain.KindInvalid, Code: "tokens_per_minute_exceeded", Param: "max_tokens",
			Message: fmt.Sprintf("the call may use %d tokens (its prompt plus max_tokens), more than this key's limit of %d tokens per minute; lower max_tokens or shorten the prompt", tokens, c.TPM)}
	}
	if c.RPM <= 0 && c.TPM <= 0 {
		return none, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.current(c.KeyID, start)
	retry := start.Add(time.Minute).Sub(now)
	switch {
	case c.RPM > 0 && w.requests >= c.RPM:
		return none, limited(fmt.Sprintf("rate limit of %d requests per minute reached", c.RPM), retry)
	case c.TPM > 0 && w.tokens+tokens > c.TPM:
		return none, limited(fmt.Sprintf("rate limit of %d tokens per minute reached: %d held or used this minute, this call may use %d",
			c.TPM, w.tokens, tokens), retry)
	}
	w.requests++
	if c.TPM <= 0 {
		return none, nil
	}
	w.tokens += tokens
	none.Tokens = tokens
	return none, nil
}

// Settle gives back the part of the hold the call did not use. A hold on
// a minute that has passed has nothing left to give back.
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

// current returns the key's window for the minute starting at start; the
// caller holds mu.
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

func limited(msg string, retry time.Duration) error {
	return &domain.Error{Kind: domain.KindRateLimited, Code: "rate_limit_exceeded", Message: msg,
		RetryAfter: max(retry, time.Second)}
}
