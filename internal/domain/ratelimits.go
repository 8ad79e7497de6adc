package domain

import (
	"fmt"
	"time"
)

// Limits are the rate and concurrency limits of a user, a team or a model:
// requests and tokens per window (a minute unless configured otherwise)
// and calls in flight. A zero field is no limit.
type Limits struct {
	RPM           int
	TPM           int
	MaxConcurrent int
}

// Over returns old with each limit that l sets (positive) replacing old's:
// the change a new key makes to its user's or team's limits.
func (l Limits) Over(old Limits) Limits {
	if l.RPM > 0 {
		old.RPM = l.RPM
	}
	if l.TPM > 0 {
		old.TPM = l.TPM
	}
	if l.MaxConcurrent > 0 {
		old.MaxConcurrent = l.MaxConcurrent
	}
	return old
}

// LimitsChange sets or removes some of a user's or team's limits: a nil
// field leaves that limit as it is, a positive one sets it and a zero one
// removes it.
type LimitsChange struct {
	RPM           *int
	TPM           *int
	MaxConcurrent *int
}

// IsZero reports whether c changes nothing.
func (c LimitsChange) IsZero() bool { return c.RPM == nil && c.TPM == nil && c.MaxConcurrent == nil }

// MaxLimit is the largest rate or concurrency limit: a 32-bit count, as
// PostgreSQL keeps it.
const MaxLimit = 1<<31 - 1

// Validate returns a KindInvalid error naming the first limit that is
// negative or over MaxLimit (param "limits.NAME", as the admin API names
// it).
func (c LimitsChange) Validate() error {
	for _, f := range []struct {
		name string
		v    *int
	}{{"rpm", c.RPM}, {"tpm", c.TPM}, {"max_concurrency", c.MaxConcurrent}} {
		if f.v != nil && (*f.v < 0 || *f.v > MaxLimit) {
			return InvalidParam("limits."+f.name, "limits.%s must be between 0 and %d", f.name, MaxLimit)
		}
	}
	return nil
}

// Apply returns l with c's changes made.
func (c LimitsChange) Apply(l Limits) Limits {
	for _, f := range []struct {
		to *int
		v  *int
	}{{&l.RPM, c.RPM}, {&l.TPM, c.TPM}, {&l.MaxConcurrent, c.MaxConcurrent}} {
		if f.v != nil {
			*f.to = *f.v
		}
	}
	return l
}

// LimitsOf is the limits of one user or team, as administration sees
// them (and the audit log keeps them).
type LimitsOf struct {
	Scope  LimitScope // LimitUser or LimitTeam
	ID     string     // the user or the team
	Limits Limits
}

// Name names the user or team as an audit entry's target: "user:alice".
func (l LimitsOf) Name() string { return string(l.Scope) + ":" + l.ID }

// LimitScope says whose a rate limit is.
type LimitScope string

// The scopes of rate limits: one API key, a user (all their keys), a team
// (all its users' keys), a model (every caller's calls asked of it), a
// provider instance's account (every attempt sent to it) and a client
// address (its failed authentications on the model endpoints, and apart
// on the admin side: the admin API and the console).
const (
	LimitKey      LimitScope = "key"
	LimitUser     LimitScope = "user"
	LimitTeam     LimitScope = "team"
	LimitModel    LimitScope = "model"
	LimitProvider LimitScope = "provider"
	LimitAddress  LimitScope = "address"
	// LimitAdminAddress counts a client address's failed authentications
	// on the admin side apart from LimitAddress, so that a mistyped API
	// key does not lock its address out of the admin side, nor the other
	// way round.
	LimitAdminAddress LimitScope = "admin_address"
)

// RateLimit is one requests- and tokens-per-window limit and whose it is.
// A zero RPM or TPM is no limit.
type RateLimit struct {
	Scope LimitScope
	ID    string // the key's ID, the user, the team, the model's or the provider instance's name
	RPM   int
	TPM   int
}

// Counter names the counts of l in a rate limiter. A key's are under its
// ID and a provider account's under "provider/NAME", as earlier releases
// named them, so that replicas of two releases count together during a
// rolling upgrade; the others are "SCOPE:ID".
func (l RateLimit) Counter() string {
	switch l.Scope {
	case LimitKey:
		return l.ID
	case LimitProvider:
		return "provider/" + l.ID
	}
	return string(l.Scope) + ":" + l.ID
}

// String names l for a person: "this API key", `user "alice"`, ….
func (l RateLimit) String() string {
	switch l.Scope {
	case LimitKey:
		return "this API key"
	case LimitProvider:
		return fmt.Sprintf("provider %q's account", l.ID)
	}
	return fmt.Sprintf("%s %q", l.Scope, l.ID)
}

// Slot is the name of l's owner's count of calls in flight: "SCOPE:ID".
func (l RateLimit) Slot() string { return string(l.Scope) + ":" + l.ID }

// Limited reports whether l limits anything.
func (l RateLimit) Limited() bool { return l.RPM > 0 || l.TPM > 0 }

// Allowance is the state of one rate limit at one moment: the limit, what
// is left of it in the current window, and when the window ends and the
// allowance is whole again. A zero Limit means there is no such limit.
type Allowance struct {
	Limit     int
	Remaining int
	Reset     time.Time
}

// tighter returns whichever of a and b leaves less room: the smaller
// remainder, then the smaller limit. An allowance without a limit is never
// the tighter.
func (a Allowance) tighter(b Allowance) Allowance {
	switch {
	case b.Limit <= 0:
		return a
	case a.Limit <= 0, b.Remaining < a.Remaining, b.Remaining == a.Remaining && b.Limit < a.Limit:
		return b
	}
	return a
}

// RateLimits is what the rate limiter reported for a call, admitted or
// refused: of all the limits the call counts against, the one with the
// fewest requests left and the one with the fewest tokens left. Clients
// read it from the answer's rate-limit headers to pace themselves.
type RateLimits struct {
	Requests Allowance
	Tokens   Allowance
}

// Known reports whether any limit applies.
func (r RateLimits) Known() bool { return r.Requests.Limit > 0 || r.Tokens.Limit > 0 }

// Tighter returns, for requests and for tokens apart, whichever of r and o
// leaves less room.
func (r RateLimits) Tighter(o RateLimits) RateLimits {
	return RateLimits{Requests: r.Requests.tighter(o.Requests), Tokens: r.Tokens.tighter(o.Tokens)}
}

// CheckRateFit refuses a call that may use more tokens than the tokens per
// window of one of limits, which no window can take: an invalid request,
// not a retryable one.
func CheckRateFit(limits []RateLimit, tokens int) error {
	for _, l := range limits {
		if l.TPM > 0 && tokens > l.TPM {
			return &Error{Kind: KindInvalid, Code: "tokens_per_minute_exceeded", Param: "max_tokens",
				Message: fmt.Sprintf("the call may use %d tokens (its prompt plus max_tokens), more than the limit of %d tokens per minute of %s; lower max_tokens or shorten the prompt", tokens, l.TPM, l)}
		}
	}
	return nil
}

// Refusal says why a call that may use tokens cannot be admitted into a
// window where l's owner has made requests and holds (or used) held
// tokens, or "" when it can. Every rate limiter applies this one rule.
func (l RateLimit) Refusal(tokens, requests, held int) string {
	switch {
	case l.RPM > 0 && requests >= l.RPM:
		return fmt.Sprintf("rate limit of %d requests per minute of %s reached", l.RPM, l)
	case l.TPM > 0 && held+tokens > l.TPM:
		return fmt.Sprintf("rate limit of %d tokens per minute of %s reached: %d held or used this minute, this call may use %d",
			l.TPM, l, held, tokens)
	}
	return ""
}

// At is l's state in a window ending at reset, where its owner has made
// requests and holds (or used) held tokens.
func (l RateLimit) At(requests, held int, reset time.Time) RateLimits {
	var r RateLimits
	if l.RPM > 0 {
		r.Requests = Allowance{Limit: l.RPM, Remaining: max(l.RPM-requests, 0), Reset: reset}
	}
	if l.TPM > 0 {
		r.Tokens = Allowance{Limit: l.TPM, Remaining: max(l.TPM-held, 0), Reset: reset}
	}
	return r
}

// RateLimited is the refusal of a call over a rate limit, retryable after
// retry (at least a second).
func RateLimited(msg string, retry time.Duration) error {
	return &Error{Kind: KindRateLimited, Code: "rate_limit_exceeded", Message: msg,
		RetryAfter: max(retry, time.Second)}
}
