package domain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Caller is the authenticated identity behind an API key, with the policy
// attached to that key.
type Caller struct {
	KeyID         string
	User          string
	Team          string
	AllowedModels []string  // empty means every model in the catalogue
	Budgets       []Budget  // the budgets this caller's spending counts against
	RPM           int       // requests per minute; 0 means unlimited
	TPM           int       // tokens per minute; 0 means unlimited
	MaxConcurrent int       // concurrent calls; 0 means the gateway's per-key share
	KeyExpiresAt  time.Time // when the key stops working; zero means never
	// UserLimits and TeamLimits are the limits of the key's user (all
	// their keys together) and team (all its keys together); a team
	// without its own MaxConcurrent has the gateway's per-team share.
	UserLimits Limits
	TeamLimits Limits
}

// RateLimits returns the requests- and tokens-per-window limits a call of
// c counts against, those that limit anything: its key's, its user's and
// its team's.
func (c Caller) RateLimits() []RateLimit {
	var out []RateLimit
	for _, l := range []RateLimit{
		{Scope: LimitKey, ID: c.KeyID, RPM: c.RPM, TPM: c.TPM},
		{Scope: LimitUser, ID: c.User, RPM: c.UserLimits.RPM, TPM: c.UserLimits.TPM},
		{Scope: LimitTeam, ID: c.Team, RPM: c.TeamLimits.RPM, TPM: c.TeamLimits.TPM},
	} {
		if l.ID != "" && l.Limited() {
			out = append(out, l)
		}
	}
	return out
}

// CodeKeyExpired is the code of the KindUnauthenticated error for a key
// whose expiry has passed.
const CodeKeyExpired = "expired_api_key"

// CheckKeyActive returns a KindUnauthenticated error with CodeKeyExpired
// when the caller's key has expired at now. Key stores check it when they
// look a key up, and caches on every use of a cached caller, so that an
// expiry takes effect at its instant on every replica without any message.
func (c Caller) CheckKeyActive(now time.Time) error {
	if c.KeyExpiresAt.IsZero() || now.Before(c.KeyExpiresAt) {
		return nil
	}
	return &Error{Kind: KindUnauthenticated, Code: CodeKeyExpired, Message: "the API key has expired"}
}

// MayUse reports whether the caller may call model m, asked for by the name
// requested (which may be an alias). Allowing a model allows its aliases.
func (c Caller) MayUse(m Model, requested string) bool {
	if len(c.AllowedModels) == 0 {
		return true
	}
	return slices.Contains(c.AllowedModels, m.Name) || slices.Contains(c.AllowedModels, requested)
}

// ScopeKind says what a budget limits.
type ScopeKind string

// The budget scopes: one API key, a user (all their keys) or a team (all
// its users' keys).
const (
	ScopeKey  ScopeKind = "key"
	ScopeUser ScopeKind = "user"
	ScopeTeam ScopeKind = "team"
)

// Period is the window a budget resets over: a calendar day, week (from
// Monday) or month in the budget time zone, or a rolling window such as
// "rolling:24h" or "rolling:30d" that always covers the last DURATION.
type Period string

// The calendar periods. Their windows start at midnight in the budget time
// zone (BUDGET_TIME_ZONE, UTC by default), weeks on Monday, months on the
// 1st. Start and End work in UTC; StartIn and EndIn in a given zone.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// rollingPrefix starts the name of a rolling period.
const rollingPrefix = "rolling:"

// The bounds of a rolling window: a minute at least (shorter windows are
// rate limits, not budgets) and a year at most.
const (
	MinRollingWindow = time.Minute
	MaxRollingWindow = 366 * 24 * time.Hour
)

// ParsePeriod parses "day", "week", "month" or "rolling:DURATION", where
// DURATION is a Go duration ("24h", "90m") or a number of days ("30d"),
// and returns the period in its canonical spelling (see RollingPeriod), so
// that "rolling:48h" and "rolling:2d" are one budget.
func ParsePeriod(s string) (Period, error) {
	switch p := Period(strings.TrimSpace(s)); p {
	case PeriodDay, PeriodWeek, PeriodMonth:
		return p, nil
	}
	spec, ok := strings.CutPrefix(strings.TrimSpace(s), rollingPrefix)
	if !ok {
		return "", fmt.Errorf("unknown budget period %q: the periods are day, week, month and rolling:DURATION (e.g. rolling:24h, rolling:30d)", s)
	}
	d, err := parseWindow(spec)
	if err != nil {
		return "", fmt.Errorf("budget period %q: %w", s, err)
	}
	return RollingPeriod(d), nil
}

// parseWindow parses a rolling window's length: a Go duration or whole days.
func parseWindow(spec string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(spec, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > int(MaxRollingWindow/(24*time.Hour)) {
			return 0, fmt.Errorf("%q is not a whole number of days between 1 and %d", spec, MaxRollingWindow/(24*time.Hour))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(spec); err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 24h or 30d", spec)
		}
	}
	if d < MinRollingWindow || d > MaxRollingWindow || d%time.Second != 0 {
		return 0, fmt.Errorf("a rolling window must be whole seconds between %s and %s", MinRollingWindow, MaxRollingWindow)
	}
	return d, nil
}

// RollingPeriod returns the rolling period of length d in its canonical
// spelling: whole days beyond one day ("rolling:30d"), else whole hours,
// minutes or seconds, the largest unit that is exact ("rolling:24h").
func RollingPeriod(d time.Duration) Period {
	if d > 24*time.Hour && d%(24*time.Hour) == 0 {
		return Period(fmt.Sprintf("%s%dd", rollingPrefix, d/(24*time.Hour)))
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.unit == 0 {
			return Period(fmt.Sprintf("%s%d%s", rollingPrefix, d/u.unit, u.name))
		}
	}
	return Period(rollingPrefix + d.String())
}

// Window returns the length of a rolling period, and false for a calendar
// period or a malformed name.
func (p Period) Window() (time.Duration, bool) {
	spec, ok := strings.CutPrefix(string(p), rollingPrefix)
	if !ok {
		return 0, false
	}
	d, err := parseWindow(spec)
	return d, err == nil
}

// Valid reports whether p is a period a budget can have, in its canonical
// spelling.
func (p Period) Valid() bool {
	q, err := ParsePeriod(string(p))
	return err == nil && q == p
}

// Start returns the beginning of the period that contains t, in UTC.
func (p Period) Start(t time.Time) time.Time { return p.StartIn(t, time.UTC) }

// End returns the first instant after the period that contains t, in UTC.
func (p Period) End(t time.Time) time.Time { return p.EndIn(t, time.UTC) }

// StartIn returns the beginning of the period that contains t in the zone
// loc: local midnight of the day, of the week's Monday or of the month's
// 1st (on a day whose midnight a DST change skips, the first instant of
// that day). For a rolling period it is the start of the window that ends
// at t: t minus the window (the window holds what happened after it).
func (p Period) StartIn(t time.Time, loc *time.Location) time.Time {
	if d, ok := p.Window(); ok {
		return t.Add(-d)
	}
	if loc == nil {
		loc = time.UTC
	}
	l := t.In(loc)
	switch p {
	case PeriodMonth:
		return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, loc)
	case PeriodWeek:
		back := (int(l.Weekday()) + 6) % 7 // days since Monday
		return time.Date(l.Year(), l.Month(), l.Day()-back, 0, 0, 0, 0, loc)
	}
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
}

// EndIn returns the first instant after the period that contains t in the
// zone loc; for a rolling period, t itself.
func (p Period) EndIn(t time.Time, loc *time.Location) time.Time {
	if _, ok := p.Window(); ok {
		return t
	}
	s := p.StartIn(t, loc)
	switch p {
	case PeriodMonth:
		return time.Date(s.Year(), s.Month()+1, 1, 0, 0, 0, 0, s.Location())
	case PeriodWeek:
		return time.Date(s.Year(), s.Month(), s.Day()+7, 0, 0, 0, 0, s.Location())
	}
	return time.Date(s.Year(), s.Month(), s.Day()+1, 0, 0, 0, 0, s.Location())
}

// PeriodDate returns the calendar date a calendar period containing t
// starts on in loc, as midnight UTC of that date: the key of the period's
// spend row, whatever the zone.
func (p Period) PeriodDate(t time.Time, loc *time.Location) time.Time {
	s := p.StartIn(t, loc)
	return time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, time.UTC)
}

// Budget is a spending limit for one scope (a key, a user or a team) over
// one period, on every model or on one model or model group.
type Budget struct {
	Scope   ScopeKind
	ScopeID string
	Period  Period
	Limit   Micros
	// Model narrows the budget to one model (its catalogue name) or to a
	// model group ("group:NAME", the catalogue's group: key); empty, the
	// budget counts every model.
	Model string
}

// GroupPrefix starts a Budget.Model that names a model group.
const GroupPrefix = "group:"

// Applies reports whether spending on m counts against b.
func (b Budget) Applies(m Model) bool {
	switch {
	case b.Model == "":
		return true
	case strings.HasPrefix(b.Model, GroupPrefix):
		return m.Group != "" && b.Model == GroupPrefix+m.Group
	}
	return b.Model == m.Name
}

// Legacy reports whether b has a shape every earlier release understands:
// a user's or team's budget per day or month on every model. Such budgets
// stay where those releases read them, so that replicas of the previous
// release enforce them during a rolling upgrade.
func (b Budget) Legacy() bool {
	return (b.Scope == ScopeUser || b.Scope == ScopeTeam) && (b.Period == PeriodDay || b.Period == PeriodMonth) && b.Model == ""
}

// Reservation is the worst-case cost of a call held against every budget of
// the caller until the call settles.
type Reservation struct {
	ID      string
	Budgets []Budget
	Amount  Micros
	At      time.Time
	// Holder is who took the reservation; the zero Holder names nobody.
	Holder Holder
	// For is the call the reservation is for, as far as charging it needs
	// when the call left nothing else behind.
	For ReservedCall
}

// Holder names who took a reservation, so that a process restarted on the
// same call log finds the reservations an earlier run of it took and left
// held with no trace of their calls in the log: those whose Log is its own
// and whose Run is not.
type Holder struct {
	Log string // the durable call log's identity: the same after a restart on it
	Run string // the run of the process writing to it: new at each start
}

// ReservedCall is whose call a reservation is for, and on which model.
type ReservedCall struct {
	KeyID, User, Team string
	Endpoint          Endpoint
	Model, Group      string // the model the call is to be made on first
}

// chat request accounting: a per-message allowance for role and framing tokens
// and a fixed allowance for the reply's priming, both generous upper bounds.
const (
	tokensPerMessage = 8
	tokensPerRequest = 16
)

// WorstCaseChat returns the most tokens the call can consume: every byte of
// text as one token plus framing, and the full output cap. The gateway sends
// maxTokens to the provider so that the bound holds.
func WorstCaseChat(r ChatRequest, maxTokens int) Usage {
	return Usage{
		PromptTokens:     r.PromptBytes() + tokensPerMessage*len(r.Messages) + tokensPerRequest,
		CompletionTokens: maxTokens,
	}
}

// WorstCaseEmbed returns the most tokens an embedding call can consume:
// every byte of text as one token plus framing, and the token inputs'
// token ids exactly, which is what a provider counts for them.
func WorstCaseEmbed(r EmbedRequest) Usage {
	return Usage{PromptTokens: r.InputBytes() + tokensPerMessage*len(r.Inputs) + r.InputTokens()}
}

// OutputCap returns the max_tokens to send upstream: the request's value when
// set, else the model's cap; never more than the model's cap.
func OutputCap(r ChatRequest, m Model) int {
	if r.MaxTokens > 0 && (m.MaxOutputTokens == 0 || r.MaxTokens < m.MaxOutputTokens) {
		return r.MaxTokens
	}
	return m.MaxOutputTokens
}
