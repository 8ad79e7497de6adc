package domain

import "fmt"

// String names the budget for messages, e.g. `the budget of user "alice" per day`.
func (b Budget) String() string {
	return fmt.Sprintf("the budget of %s %q per %s", b.Scope, b.ScopeID, b.Period)
}

// Validate returns a KindInvalid error when b cannot be enforced: an unknown
// scope or period, or a negative limit.
func (b Budget) Validate() error {
	switch {
	case b.Scope != ScopeUser && b.Scope != ScopeTeam:
		return InvalidParam("budget", "unknown budget scope %q", b.Scope)
	case b.Period != PeriodDay && b.Period != PeriodMonth:
		return InvalidParam("budget", "unknown budget period %q", b.Period)
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
			if o.Scope == b.Scope && o.ScopeID == b.ScopeID && o.Period == b.Period {
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
// bound, and each token class capped at its capped total, so that a
// provider's claim is never charged beyond what was reserved for it.
func (u Usage) Within(bound Usage) Usage {
	u.PromptTokens = min(u.PromptTokens, bound.PromptTokens)
	u.CompletionTokens = min(u.CompletionTokens, bound.CompletionTokens)
	u.CacheReadTokens = min(u.CacheReadTokens, u.PromptTokens)
	u.CacheWriteTokens = min(u.CacheWriteTokens, u.PromptTokens)
	u.ReasoningTokens = min(u.ReasoningTokens, u.CompletionTokens)
	return u
}
