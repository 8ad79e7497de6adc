package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// KeyUpdate changes an existing API key's policy. A field that is set
// replaces the key's value; a nil field leaves it as it is.
type KeyUpdate struct {
	AllowedModels *[]string // empty: every model
	RPM           *int      // 0: unlimited
	TPM           *int      // 0: unlimited
	MaxConcurrent *int      // 0: the gateway's per-key share
	// Budgets sets or removes budgets of the key, its user or its team: a
	// positive Limit sets the budget (replacing a limit it had), zero
	// removes it. The ScopeIDs are filled in from the key.
	Budgets []Budget
}

// KeyQuery selects a page of API keys, oldest first.
type KeyQuery struct {
	User  string // only this user's keys, when set
	Team  string // only this team's keys, when set
	State string // "active", "revoked", or "" for both
	After string // only keys after the key with this ID (the next page), when set
	Limit int
}

// The key states a KeyQuery may select.
const (
	KeyStateActive  = "active"
	KeyStateRevoked = "revoked"
)

// Principal is a user or a team as administration sees it: the budgets and
// the rate and concurrency limits in its own name, and the keys that belong
// to it. Users and teams are not created on their own; they exist once a
// key, a budget or a limit names them.
type Principal struct {
	Scope      ScopeKind // ScopeUser or ScopeTeam
	ID         string
	Budgets    []Budget // the budgets of this user or team, in a stable order
	Limits     Limits   // the limits of all its keys together
	Keys       int      // keys that name it, revoked ones included
	ActiveKeys int      // keys that name it and are not revoked
}

// PrincipalChange changes a user or a team in one step: budgets set or
// removed, and limits set or removed.
type PrincipalChange struct {
	// Budgets sets (a positive Limit) or removes (zero) budgets of the user
	// or team; their Scope and ScopeID name it.
	Budgets []Budget
	Limits  LimitsChange
}

// StandingReplaced reports whether after, the same user or team as before,
// changes what before had: a budget given another limit or removed, or a
// limit set to another value. Budgets and limits added where there were
// none replace nothing.
func StandingReplaced(before, after Principal) bool {
	for _, b := range before.Budgets {
		i := slices.IndexFunc(after.Budgets, b.SameCounter)
		if i < 0 || after.Budgets[i].Limit != b.Limit {
			return true
		}
	}
	for _, l := range [][2]int{{before.Limits.RPM, after.Limits.RPM}, {before.Limits.TPM, after.Limits.TPM},
		{before.Limits.MaxConcurrent, after.Limits.MaxConcurrent}} {
		if l[0] != 0 && l[0] != l[1] {
			return true
		}
	}
	return false
}

// PrincipalQuery selects a page of users or teams, by ID.
type PrincipalQuery struct {
	Scope ScopeKind // ScopeUser or ScopeTeam
	After string    // only IDs after this one (the next page), when set
	Limit int
}

// PrincipalVersion returns a short digest of p's budgets and limits, its
// ETag: any change to them changes its version. A principal without limits
// keeps the version it had before limits were part of it.
func PrincipalVersion(p Principal) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s", p.Scope, p.ID)
	for _, b := range p.Budgets {
		fmt.Fprintf(h, "\x00%s/%s/%s/%d@%s", b.Scope, b.ScopeID, b.Period, b.Limit, b.Model)
	}
	if l := p.Limits; l != (Limits{}) {
		fmt.Fprintf(h, "\x00limits %d/%d/%d", l.RPM, l.TPM, l.MaxConcurrent)
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// CheckPrincipalVersion returns a KindInvalid error with
// CodeVersionMismatch when want is set and is not p's version.
func CheckPrincipalVersion(p Principal, want string) error {
	return checkVersion(fmt.Sprintf("the %s %s", p.Scope, p.ID), PrincipalVersion(p), want)
}

// checkVersion is the one rule of optimistic concurrency: an update that
// names the version it was based on fails when the target has another.
func checkVersion(what, current, want string) error {
	if want == "" || want == current {
		return nil
	}
	return &Error{Kind: KindInvalid, Code: CodeVersionMismatch, Param: "If-Match",
		Message: fmt.Sprintf("%s has changed since version %s; read it again", what, want)}
}

// Usage report groupings.
const (
	GroupByTeam  = "team"
	GroupByUser  = "user"
	GroupByModel = "model"
	GroupByDay   = "day"
)

// UsageQuery selects a usage report: settled calls from the UTC day From to
// the UTC day To (both included), grouped by GroupBy, optionally narrowed
// to one team, user or model.
type UsageQuery struct {
	GroupBy  string
	From, To time.Time
	Team     string
	User     string
	Model    string
	TraceIDs bool // also list the MLflow trace IDs of each group's calls
}

// MaxUsageDays is the longest span of days one usage report covers.
const MaxUsageDays = 366

// MaxTraceIDsPerRow is the most trace IDs one usage row lists; a row with
// more calls says so.
const MaxTraceIDsPerRow = 1000

// UsageLine is one group of a usage report.
type UsageLine struct {
	Group            string // the team, user or model, or the day as 2006-01-02
	Requests         int64
	PromptTokens     int64
	CompletionTokens int64
	Cost             Micros
	// TraceIDs are the MLflow trace IDs of the group's calls, oldest first,
	// at most MaxTraceIDsPerRow, when the query asked for them;
	// TraceIDsTruncated says there were more.
	TraceIDs          []string
	TraceIDsTruncated bool
}

// TraceDigest is the digest a call's MLflow trace and span IDs are taken
// from: derived from its request ID, so that writing a record twice writes
// the same rows and a usage report can name a call's trace.
func TraceDigest(requestID string) [32]byte {
	return sha256.Sum256([]byte("tidygate trace " + requestID))
}

// TraceID returns the MLflow trace ID of the call with this request ID:
// "tr-" and 32 hex digits.
func TraceID(requestID string) string {
	d := TraceDigest(requestID)
	return "tr-" + hex.EncodeToString(d[:16])
}

// Validate returns a KindInvalid error when u changes nothing, holds a
// negative limit, or names a budget that is invalid or named twice.
func (u KeyUpdate) Validate() error {
	if u.AllowedModels == nil && u.RPM == nil && u.TPM == nil && u.MaxConcurrent == nil && len(u.Budgets) == 0 {
		return InvalidParam("body", "the update changes nothing: set allowed_models, rpm, tpm, max_concurrent or budgets")
	}
	for _, f := range []struct {
		name, zero string // zero: what 0 means
		v          *int
	}{{"rpm", "unlimited", u.RPM}, {"tpm", "unlimited", u.TPM}, {"max_concurrent", "the gateway's per-key share, MAX_CONCURRENT_PER_KEY", u.MaxConcurrent}} {
		if f.v != nil && *f.v < 0 {
			return InvalidParam(f.name, "%s must not be negative (0: %s)", f.name, f.zero)
		}
	}
	return ValidateBudgetChanges(u.Budgets)
}

// ValidateBudgetChanges returns a KindInvalid error when a budget to set or
// remove (a zero Limit) is invalid or named twice.
func ValidateBudgetChanges(budgets []Budget) error {
	for i, b := range budgets {
		if err := b.Validate(); err != nil {
			return err
		}
		for _, o := range budgets[:i] {
			if o.SameCounter(b) {
				return InvalidParam("budgets", "%s is named twice", b)
			}
		}
	}
	return nil
}
