package gateway

import (
	"fmt"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// rateLimiter enforces each key's requests-per-minute and tokens-per-minute
// limits in fixed one-minute windows. It is per replica: N replicas allow up
// to N times the limit (budgets, unlike rate limits, are exact across
// replicas because they live in PostgreSQL).
type rateLimiter struct {
	mu      sync.Mutex
	windows map[string]*window
}

type window struct {
	start    time.Time
	requests int
	tokens   int
}

func newRateLimiter() *rateLimiter { return &rateLimiter{windows: make(map[string]*window)} }

// current returns the caller's window for the minute containing now; the
// caller holds mu.
func (l *rateLimiter) current(keyID string, now time.Time) *window {
	start := now.Truncate(time.Minute)
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

func (l *rateLimiter) sweep(start time.Time) {
	for k, w := range l.windows {
		if w.start.Before(start) {
			delete(l.windows, k)
		}
	}
}

// allow counts one request, or refuses it when the caller's request or token
// allowance for this minute is used up.
func (l *rateLimiter) allow(c domain.Caller, now time.Time) error {
	if c.RPM <= 0 && c.TPM <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.current(c.KeyID, now)
	retry := w.start.Add(time.Minute).Sub(now)
	switch {
	case c.RPM > 0 && w.requests >= c.RPM:
		return limited(fmt.Sprintf("rate limit of %d requests per minute reached", c.RPM), retry)
	case c.TPM > 0 && w.tokens >= c.TPM:
		return limited(fmt.Sprintf("rate limit of %d tokens per minute reached", c.TPM), retry)
	}
	w.requests++
	return nil
}

// addTokens charges a finished call's tokens to the caller's current window.
func (l *rateLimiter) addTokens(c domain.Caller, tokens int, now time.Time) {
	if c.TPM <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current(c.KeyID, now).tokens += tokens
}

func limited(msg string, retry time.Duration) error {
	return &domain.Error{Kind: domain.KindRateLimited, Code: "rate_limit_exceeded", Message: msg,
		RetryAfter: max(retry, time.Second)}
}
