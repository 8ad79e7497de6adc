package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NewKey describes an API key to create: whose it is, what it may do, and the
// budgets of its user and team. A positive budget sets (or replaces) that
// budget; zero leaves it as it is, or absent.
type NewKey struct {
	User          string
	Team          string
	AllowedModels []string  // models or aliases the key may use; empty means every model
	RPM           int       // requests per minute; 0 means unlimited
	TPM           int       // tokens per minute; 0 means unlimited
	MaxConcurrent int       // concurrent calls; 0 means the gateway's per-key share (MAX_CONCURRENT_PER_KEY)
	ExpiresAt     time.Time // when the key stops working; zero means never

	DailyBudget       Micros // the user's budget per UTC day
	MonthlyBudget     Micros // the user's budget per UTC month
	TeamDailyBudget   Micros // the team's budget per UTC day
	TeamMonthlyBudget Micros // the team's budget per UTC month

	// UserLimits and TeamLimits set the rate and concurrency limits of
	// the key's user and team: a positive field sets (or replaces) that
	// limit, zero leaves it as it is, or absent.
	UserLimits Limits
	TeamLimits Limits

	// More are budgets of any scope, period and model (tidygate keys create
	// --budget, --model-budget). A key budget's ScopeID is left empty: the
	// key's ID is not known until it is stored. A user's or team's budget
	// names nk's user or team.
	More []Budget

	// ReplaceBudgets lets a budget of the user or the team that nk names
	// with another limit than the one it has replace it (tidygate keys
	// create --replace-budget, the admin API's replace_budget). Without
	// it such a key is refused (CheckReplacedBudgets): the budget is
	// shared by all their keys, and a new key must not change it unasked.
	ReplaceBudgets bool
}

// BudgetReplacement is a budget of a user or a team that a new key names
// with another limit than the one it has.
type BudgetReplacement struct {
	Budget Budget // with the limit the key names
	Was    Micros // the limit it has
}

func (r BudgetReplacement) String() string {
	return fmt.Sprintf("%s is %s; the key would make it %s", r.Budget, r.Was, r.Budget.Limit)
}

// ReplacedBudgets returns the budgets of nk's user and team that nk sets
// (a positive limit) and that have, in have, another limit: the one rule
// of what a new key replaces, for every way a key is made.
func ReplacedBudgets(have []Budget, nk NewKey) []BudgetReplacement {
	var out []BudgetReplacement
	for _, w := range nk.Budgets() {
		if w.Scope == ScopeKey || w.Limit == 0 {
			continue // the key is new: its budgets are too
		}
		for _, h := range have {
			if h.SameCounter(w) && h.Limit != w.Limit {
				out = append(out, BudgetReplacement{Budget: w, Was: h.Limit})
				break
			}
		}
	}
	return out
}

// CodeBudgetExists is the code of the error for a new key that would
// replace a budget its user or team has, unasked.
const CodeBudgetExists = "budget_exists"

// CheckReplacedBudgets returns ReplacedBudgets(have, nk) and, when there
// are any and nk.ReplaceBudgets is not set, a KindInvalid error
// (CodeBudgetExists) that names the field of the first (BudgetParam), each
// budget, its limit and the limit the key names.
func CheckReplacedBudgets(have []Budget, nk NewKey) ([]BudgetReplacement, error) {
	replaced := ReplacedBudgets(have, nk)
	if len(replaced) == 0 || nk.ReplaceBudgets {
		return replaced, nil
	}
	lines := make([]string, len(replaced))
	for i, r := range replaced {
		lines[i] = BudgetParam(r.Budget) + ": " + r.String()
	}
	return replaced, &Error{Kind: KindInvalid, Code: CodeBudgetExists, Param: BudgetParam(replaced[0].Budget),
		Message: strings.Join(lines, "; ") + ". Nothing was created: a user's or team's budget is shared by all their keys; " +
			"set replace_budget to replace it, or leave the field out to keep it"}
}

// BudgetParam names the field of a new key that sets b: one of the four
// older budget fields (daily_budget_usd, …) for their budgets, budgets for
// any other.
func BudgetParam(b Budget) string {
	if b.Legacy() {
		for _, f := range []struct {
			scope  ScopeKind
			period Period
			name   string
		}{{ScopeUser, PeriodDay, "daily_budget_usd"}, {ScopeUser, PeriodMonth, "monthly_budget_usd"},
			{ScopeTeam, PeriodDay, "team_daily_budget_usd"}, {ScopeTeam, PeriodMonth, "team_monthly_budget_usd"}} {
			if b.Scope == f.scope && b.Period == f.period {
				return f.name
			}
		}
	}
	return "budgets"
}

// Budgets returns the budgets nk names: the four of the older flags, set
// or not, then More, with the user's and team's IDs filled in.
func (nk NewKey) Budgets() []Budget {
	out := []Budget{
		{Scope: ScopeUser, ScopeID: nk.User, Period: PeriodDay, Limit: nk.DailyBudget},
		{Scope: ScopeUser, ScopeID: nk.User, Period: PeriodMonth, Limit: nk.MonthlyBudget},
		{Scope: ScopeTeam, ScopeID: nk.Team, Period: PeriodDay, Limit: nk.TeamDailyBudget},
		{Scope: ScopeTeam, ScopeID: nk.Team, Period: PeriodMonth, Limit: nk.TeamMonthlyBudget},
	}
	for _, b := range nk.More {
		switch b.Scope {
		case ScopeUser:
			b.ScopeID = nk.User
		case ScopeTeam:
			b.ScopeID = nk.Team
		}
		out = append(out, b)
	}
	return out
}

// ParseBudgetSpec parses SCOPE:PERIOD=USD, e.g. "key:month=5",
// "team:week=500" or "user:rolling:24h=2.5", into a budget without a
// scope ID. SCOPE is key, user or team; PERIOD is day, week, month or
// rolling:DURATION; USD is positive.
func ParseBudgetSpec(spec string) (Budget, error) {
	b, err := parseBudgetSpec(spec)
	if err != nil {
		return Budget{}, fmt.Errorf("%q: %w", spec, err)
	}
	return b, nil
}

// parseBudgetSpec is ParseBudgetSpec with errors that do not repeat spec.
func parseBudgetSpec(spec string) (Budget, error) {
	lhs, usd, ok := strings.Cut(spec, "=")
	scope, period, ok2 := strings.Cut(lhs, ":")
	if !ok || !ok2 {
		return Budget{}, errors.New("not SCOPE:PERIOD=USD (e.g. key:month=5)")
	}
	b := Budget{Scope: ScopeKind(strings.TrimSpace(scope))}
	var problems []string
	if b.Scope != ScopeKey && b.Scope != ScopeUser && b.Scope != ScopeTeam {
		problems = append(problems, fmt.Sprintf("unknown scope %q: the scopes are key, user and team", scope))
	}
	p, err := ParsePeriod(period)
	if err != nil {
		problems = append(problems, err.Error())
	}
	b.Period = p
	m, err := ParseBudgetUSD(usd)
	if err != nil {
		problems = append(problems, err.Error())
	}
	b.Limit = m
	if len(problems) > 0 {
		return Budget{}, errors.New(strings.Join(problems, "; "))
	}
	return b, nil
}

// ParseModelBudgetSpec parses MODEL@SCOPE:PERIOD=USD, e.g.
// "gpt-4o@user:day=10" or "group:premium@team:month=300".
func ParseModelBudgetSpec(spec string) (Budget, error) {
	model, rest, ok := strings.Cut(spec, "@")
	model = strings.TrimSpace(model)
	if !ok || model == "" || model == GroupPrefix || strings.ContainsAny(model, " \x00") {
		return Budget{}, fmt.Errorf("%q is not MODEL@SCOPE:PERIOD=USD (e.g. gpt-4o@user:day=10 or group:premium@team:month=300)", spec)
	}
	b, err := parseBudgetSpec(rest)
	if err != nil {
		return Budget{}, fmt.Errorf("%q: %w", spec, err)
	}
	b.Model = model
	return b, nil
}

// AdminKeyPrefix starts every admin key, so that an admin key is never
// mistaken for (or accepted as) a model API key.
const AdminKeyPrefix = "tga-"

// AdminScope is what an administrator may do.
type AdminScope string

// The admin scopes: read sees keys, usage and the audit log; write changes keys.
const (
	AdminRead  AdminScope = "read"
	AdminWrite AdminScope = "write"
)

// ParseAdminScopes parses a comma-separated list of scopes such as
// "read,write", refusing unknown and empty ones.
func ParseAdminScopes(s string) ([]AdminScope, error) {
	var scopes []AdminScope
	for _, part := range strings.Split(s, ",") {
		sc := AdminScope(strings.TrimSpace(part))
		switch sc {
		case AdminRead, AdminWrite:
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		default:
			return nil, InvalidParam("scopes", "unknown admin scope %q: the scopes are read and write", part)
		}
	}
	return scopes, nil
}

// AdminKey describes a stored admin key; like an API key, only its hash is kept.
type AdminKey struct {
	ID        string
	Name      string
	Scopes    []AdminScope
	CreatedAt time.Time
	RevokedAt *time.Time
}

// ActorKind says how an administrator proved who they are.
type ActorKind string

// The actor kinds.
const (
	ActorCLI      ActorKind = "cli"       // the tidygate command, run inside the deployment
	ActorAdminKey ActorKind = "admin_key" // an admin key, by its ID
	ActorOIDC     ActorKind = "oidc"      // a signed-in subject of the identity provider
)

// Actor is who made an administrative change, and what they may do.
type Actor struct {
	Kind   ActorKind
	ID     string // the admin key's ID, the OIDC subject, or the operating-system user of the CLI
	Scopes []AdminScope
}

// May reports whether the actor holds the scope. Write implies read.
func (a Actor) May(s AdminScope) bool {
	return slices.Contains(a.Scopes, s) || (s == AdminRead && slices.Contains(a.Scopes, AdminWrite))
}

// String renders the actor as kind:id, the form the audit log shows.
func (a Actor) String() string { return string(a.Kind) + ":" + a.ID }

// AuditEntry is one administrative change: who made it, what it changed
// (the target's state before and after, never a secret), when, and why.
type AuditEntry struct {
	ID     int64
	At     time.Time
	Actor  Actor
	Action string // such as "key.create", "key.revoke", "admin_key.create"
	Target string // the ID of the changed key
	Reason string
	// Before and After are the target's state: *APIKey, *AdminKey,
	// *Principal or *LimitsOf, nil when it did not exist before or does not
	// exist after.
	Before, After any
	// TraceKey is the random key the audit log gave the entry when it was
	// written, which its MLflow trace is derived from (AuditTraceKey);
	// empty for an entry written before the audit log gave keys.
	TraceKey string
	// TraceID is the MLflow trace the entry was exported as (AuditTraceID),
	// empty until it has been exported.
	TraceID string
	// ExportRefused is why MLflow's database refused the entry's trace, when
	// it did: the entry is then never exported, and stays in the audit log.
	ExportRefused string
}

// AuditActions returns the actions of the audit log's entries, each the
// change of one kind of target: what an audit query may select. The list
// is made anew on each call, so no caller can change another's.
func AuditActions() []string {
	return []string{"key.create", "key.update", "key.rotate", "key.set_expiry", "key.revoke",
		"admin_key.create", "admin_key.revoke", "user.update", "team.update", "limits.set"}
}

// AuditTraceKey is what the MLflow trace of the audit entry e is derived
// from, as a call's trace is from its request ID: exporting the entry twice
// writes the same trace, while entries of two installations that share an
// MLflow database, whose IDs both count from 1, have keys of their own. An
// entry without a key (written before the audit log gave keys) is known by
// its ID, as it was exported then.
func AuditTraceKey(e AuditEntry) string {
	if e.TraceKey == "" {
		return "audit-" + strconv.FormatInt(e.ID, 10)
	}
	return "audit-" + e.TraceKey
}

// AuditTraceID returns the MLflow trace ID of the audit entry e: "tr-" and
// 32 hex digits.
func AuditTraceID(e AuditEntry) string { return TraceID(AuditTraceKey(e)) }

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Target   string // only this target's entries, when set
	Action   string // only this action, when set
	BeforeID int64  // only entries older than this ID, when positive (the next page)
	Limit    int
}

// KeyVersion returns a short digest of everything about k that an
// administrator can change, so that an update can require the state it was
// based on (an ETag): any change to k changes its version.
func KeyVersion(k APIKey) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%q\x00%d\x00%d\x00%d\x00%d\x00", k.ID, k.Caller.User, k.Caller.Team,
		k.Caller.AllowedModels, k.Caller.RPM, k.Caller.TPM, k.Caller.MaxConcurrent, k.Caller.KeyExpiresAt.UnixNano())
	for _, t := range []*time.Time{k.RevokedAt, k.RotatedAt} {
		if t != nil {
			fmt.Fprint(h, t.UnixNano())
		}
		fmt.Fprint(h, "\x00")
	}
	for _, b := range k.Caller.Budgets {
		fmt.Fprintf(h, "\x00%s/%s/%s/%d", b.Scope, b.ScopeID, b.Period, b.Limit)
		if b.Model != "" {
			fmt.Fprintf(h, "@%s", b.Model)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// CodeVersionMismatch is the code of the KindInvalid error for an update
// whose expected version (If-Match) is not the target's current one.
const CodeVersionMismatch = "version_mismatch"

// CheckKeyVersion returns a KindInvalid error with CodeVersionMismatch when
// want is set and is not k's version.
func CheckKeyVersion(k APIKey, want string) error {
	return checkVersion("the key "+k.ID, KeyVersion(k), want)
}
