package domain

import (
	"fmt"
	"time"
)

// Allowance is the state of one rate limit at one moment: the limit, what
// is left of it in the current window, and when the window ends and the
// allowance is whole again. A zero Limit means there is no such limit.
type Allowance struct {
	Limit     int
	Remaining int
	Reset     time.Time
}

// RateLimits is what the rate limiter reported for a call, admitted or
// refused: its key's requests and tokens per window. Clients read it from
// the answer's rate-limit headers to pace themselves.
type RateLimits struct {
	Requests Allowance
	Tokens   Allowance
}

// Known reports whether any limit applies.
func (r RateLimits) Known() bool { return r.Requests.Limit > 0 || r.Tokens.Limit > 0 }

// CheckRateFit refuses a call that may use more tokens than c's tokens per
// window, which no window can take: an invalid request, not a retryable one.
func (c Caller) CheckRateFit(tokens int) error {
	if c.TPM > 0 && tokens > c.TPM {
		return &Error{Kind: KindInvalid, Code: "tokens_per_minute_exceeded", Param: "max_tokens",
			Message: fmt.Sprintf("the call may use %d tokens (its prompt plus max_tokens), more than this key's limit of %d tokens per minute; lower max_tokens or shorten the prompt", tokens, c.TPM)}
	}
	return nil
}

// RateRefusal says why a call that may use tokens cannot be admitted into
// a window where c has made requests and holds (or used) held tokens, or
// "" when it can. Every rate limiter applies this one rule.
func (c Caller) RateRefusal(tokens, requests, held int) string {
	switch {
	case c.RPM > 0 && requests >= c.RPM:
		return fmt.Sprintf("rate limit of %d requests per minute reached", c.RPM)
	case c.TPM > 0 && held+tokens > c.TPM:
		return fmt.Sprintf("rate limit of %d tokens per minute reached: %d held or used this minute, this call may use %d",
			c.TPM, held, tokens)
	}
	return ""
}

// RateLimitsAt is c's state in a window ending at reset, where it has made
// requests and holds (or used) held tokens.
func (c Caller) RateLimitsAt(requests, held int, reset time.Time) RateLimits {
	var r RateLimits
	if c.RPM > 0 {
		r.Requests = Allowance{Limit: c.RPM, Remaining: max(c.RPM-requests, 0), Reset: reset}
	}
	if c.TPM > 0 {
		r.Tokens = Allowance{Limit: c.TPM, Remaining: max(c.TPM-held, 0), Reset: reset}
	}
	return r
}

// RateLimited is the refusal of a call over a rate limit, retryable after
// retry (at least a second).
func RateLimited(msg string, retry time.Duration) error {
	return &Error{Kind: KindRateLimited, Code: "rate_limit_exceeded", Message: msg,
		RetryAfter: max(retry, time.Second)}
}
