package domain

import (
	"slices"
	"time"
)

// Caller is the authenticated identity behind an API key, with the policy
// attached to that key.
type Caller struct {
	KeyID         string
	User          string
	Team          string
	AllowedModels []string // empty means every model in the catalogue
	Budgets       []Budget // the budgets this caller's spending counts against
	RPM           int      // requests per minute; 0 means unlimited
	TPM           int      // tokens per minute; 0 means unlimited
	MaxConcurrent int      // concurrent calls; 0 means the gateway's per-key share
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

// The budget scopes.
const (
	ScopeUser ScopeKind = "user"
	ScopeTeam ScopeKind = "team"
)

// Period is the window a budget resets over.
type Period string

// The budget periods; windows start at midnight UTC and on the 1st of the month UTC.
const (
	PeriodDay   Period = "day"
	PeriodMonth Period = "month"
)

// Start returns the beginning of the period that contains t, in UTC.
func (p Period) Start(t time.Time) time.Time {
	t = t.UTC()
	if p == PeriodMonth {
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// End returns the first instant after the period that contains t.
func (p Period) End(t time.Time) time.Time {
	s := p.Start(t)
	if p == PeriodMonth {
		return s.AddDate(0, 1, 0)
	}
	return s.AddDate(0, 0, 1)
}

// Budget is a spending limit for one scope (a user or a team) over one period.
type Budget struct {
	Scope   ScopeKind
	ScopeID string
	Period  Period
	Limit   Micros
}

// Reservation is the worst-case cost of a call held against every budget of
// the caller until the call settles.
type Reservation struct {
	ID      string
	Budgets []Budget
	Amount  Micros
	At      time.Time
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

// WorstCaseEmbed returns the most tokens an embedding call can consume.
func WorstCaseEmbed(r EmbedRequest) Usage {
	return Usage{PromptTokens: r.InputBytes() + tokensPerMessage*len(r.Inputs)}
}

// OutputCap returns the max_tokens to send upstream: the request's value when
// set, else the model's cap; never more than the model's cap.
func OutputCap(r ChatRequest, m Model) int {
	if r.MaxTokens > 0 && (m.MaxOutputTokens == 0 || r.MaxTokens < m.MaxOutputTokens) {
		return r.MaxTokens
	}
	return m.MaxOutputTokens
}
