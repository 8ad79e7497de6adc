package domain

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// String names the budget for messages, e.g. `the budget of user "alice"
// per day` or `the budget of key "key_1" per rolling:24h on model group "fast"`;
// one whose scope ID is not known yet, `the budget of the key per day`.
func (b Budget) String() string {
	s := fmt.Sprintf("the budget of %s %q per %s", b.Scope, b.ScopeID, b.Period)
	if b.ScopeID == "" { // not yet known: a new key's, or a key's, user's or team's in a change before it is applied
		s = fmt.Sprintf("the budget of the %s per %s", b.Scope, b.Period)
	}
	if g, ok := strings.CutPrefix(b.Model, GroupPrefix); ok {
		return s + fmt.Sprintf(" on model group %q", g)
	}
	if b.Model != "" {
		return s + fmt.Sprintf(" on model %q", b.Model)
	}
	return s
}

// SameCounter reports whether a and b count the same spending: the same
// scope, period and model, whatever their limits.
func (b Budget) SameCounter(o Budget) bool {
	return b.Scope == o.Scope && b.ScopeID == o.ScopeID && b.Period == o.Period && b.Model == o.Model
}

// Validate returns a KindInvalid error when b cannot be enforced: an unknown
// scope or period, or a negative limit.
func (b Budget) Validate() error {
	switch {
	case b.Scope != ScopeKey && b.Scope != ScopeUser && b.Scope != ScopeTeam:
		return InvalidParam("budget", "unknown budget scope %q", b.Scope)
	case !b.Period.Valid():
		return InvalidParam("budget", "unknown budget period %q", b.Period)
	case b.Model == GroupPrefix || strings.ContainsAny(b.Model, " \x00"):
		return InvalidParam("budget", "%s names no model or group", b)
	case b.Limit < 0:
		return InvalidParam("budget", "%s has a negative limit", b)
	}
	return nil
}

// Validate returns a KindInvalid error when r cannot be held: it needs an ID,
// a non-negative amount, a time, and valid budgets, each named once.
func (r Reservation) Validate() error {
	switch {
	case r.ID == "":
		return InvalidParam("reservation_id", "a reservation needs an ID")
	case r.Amount < 0:
		return InvalidParam("amount", "a reservation's amount must not be negative")
	case r.At.IsZero():
		return InvalidParam("at", "a reservation needs a time")
	}
	for i, b := range r.Budgets {
		if err := b.Validate(); err != nil {
			return err
		}
		for _, o := range r.Budgets[:i] {
			if o.SameCounter(b) {
				return InvalidParam("budget", "%s is named twice", b)
			}
		}
	}
	return nil
}

// BudgetExceeded is the error for a call that may cost up to amount and does
// not fit in b, of which used is already spent or held.
func BudgetExceeded(b Budget, used, amount Micros) *Error {
	return &Error{Kind: KindBudgetExceeded, Code: "budget_exceeded",
		Message: fmt.Sprintf("%s is %s and has %s left; this call may cost up to %s", b, b.Limit, max(b.Limit-used, 0), amount)}
}

// ConsumedChat estimates what a chat call that ended early consumed, by the
// same rule WorstCaseChat reserves with: the whole prompt (one token per
// byte plus framing), and one token per byte of the output received so far
// (text, tool-call arguments and reasoning), never more than maxTokens. It
// is used only when the provider's own count never arrived, and it never
// exceeds the reservation.
func ConsumedChat(r ChatRequest, maxTokens, outputBytes int) Usage {
	u := WorstCaseChat(r, maxTokens)
	u.CompletionTokens = min(max(outputBytes, 0), maxTokens)
	return u
}

// Within returns u with its prompt and completion tokens capped at those of
// bound, and each token class capped at what its capped total leaves (cache
// reads and writes together never exceed the prompt), so that a
// provider's claim is never charged beyond what was reserved for it.
func (u Usage) Within(bound Usage) Usage {
	u.PromptTokens = min(u.PromptTokens, bound.PromptTokens)
	u.CompletionTokens = min(u.CompletionTokens, bound.CompletionTokens)
	c := u.Classes()
	u.CacheReadTokens, u.CacheWriteTokens = c.CacheRead, c.CacheWrite
	u.ReasoningTokens = min(u.ReasoningTokens, u.CompletionTokens)
	return u
}

// BudgetAlert says that the spending of a budget crossed one of the alert
// thresholds (a percentage of its limit) in one period, or, for the 100 %
// threshold, that the budget refused a call it had no room left for (see
// ExhaustedThreshold): then Spent is below the threshold. Each threshold
// fires at most once per budget and period, across replicas.
type BudgetAlert struct {
	ID          int64     // the alert's number, unique in its ledger: receivers deduplicate by it
	Budget      Budget    // the budget, with its limit
	PeriodStart time.Time // the calendar date the period starts on, or the start of the rolling window's slot
	Threshold   int       // the percentage crossed
	Spent       Micros    // what the budget had spent in the period when it crossed
	At          time.Time // when it crossed
	Attempts    int       // deliveries tried before this one
}

// CrossedThresholds returns the thresholds (percentages of limit) that
// spending from before to after crosses, in the order given: t is crossed
// when before is below t% of the limit and after is not.
func CrossedThresholds(thresholds []int, limit, before, after Micros) []int {
	if limit <= 0 || after <= before {
		return nil
	}
	var out []int
	for _, t := range thresholds {
		if belowPercent(before, limit, t) && !belowPercent(after, limit, t) {
			out = append(out, t)
		}
	}
	return out
}

// belowPercent reports whether spent is below t percent of limit, compared
// exactly in hundredths with 128-bit products: limit × t overflows an int64
// for a budget above about $92 billion at t = 100 (and one ten times
// smaller at the largest threshold, 1000), which ParseUSD accepts. A
// negative spent is below any line.
func belowPercent(spent, limit Micros, t int) bool {
	if spent < 0 {
		return true
	}
	if limit <= 0 || t <= 0 {
		return false
	}
	sHi, sLo := bits.Mul64(uint64(spent), 100)
	lHi, lLo := bits.Mul64(uint64(limit), uint64(t))
	return sHi < lHi || sHi == lHi && sLo < lLo
}

// Refused reports whether a refused call raised the alert rather than
// spending that crossed its threshold.
func (a BudgetAlert) Refused() bool {
	return belowPercent(a.Spent, a.Budget.Limit, a.Threshold)
}

// ExhaustedThreshold returns the threshold a budget that refused a call of
// worst case amount raises: 100 when the thresholds include it and the
// call would not fit even if no other call held any of the budget (what it
// has spent leaves less than amount), and 0 otherwise. A budget can stop
// short of its limit, at 97 % say, because the next call's worst case no
// longer fits: its 100 % alert then says that it refuses calls. A refusal
// caused only by calls in flight raises nothing, since their settlements
// may give most of their holds back.
func ExhaustedThreshold(thresholds []int, limit, spent, amount Micros) int {
	if limit <= 0 || !slices.Contains(thresholds, 100) || spent+amount <= limit {
		return 0
	}
	return 100
}

// AlertPeriod returns the start of the period an alert on b at t belongs
// to: the calendar date the period starts on in loc, or, for a rolling
// window, the start of the slot of the window's length (counted from the
// Unix epoch) that contains t, so that a rolling budget's threshold fires
// at most once per window length.
func AlertPeriod(b Budget, t time.Time, loc *time.Location) time.Time {
	if d, ok := b.Period.Window(); ok {
		return time.Unix(0, 0).UTC().Add(t.Sub(time.Unix(0, 0)) / d * d)
	}
	return b.Period.PeriodDate(t, loc)
}

// ParseAlertThresholds parses a comma-separated list of percentages such
// as "50,80,100": whole numbers from 1 to 1000, each once; empty, none.
func ParseAlertThresholds(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(part, "%"))
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("%q is not a percentage from 1 to 1000", part)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%d is listed twice", n)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}
