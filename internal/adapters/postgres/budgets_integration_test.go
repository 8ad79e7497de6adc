//go:build integration

package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestBudgetsOf reads a user's and a team's budgets, from both budget
// tables, without a key of that user: what a caller signed in with a token
// is charged against.
func TestBudgetsOf(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	rolling := domain.RollingPeriod(24 * 60 * 60 * 1e9)
	if _, _, err := s.Create(ctx, postgres.NewKey{User: "carol", Team: "risk", TeamDailyBudget: 20, MonthlyBudget: 9,
		More: []domain.Budget{
			{Scope: domain.ScopeTeam, ScopeID: "risk", Period: rolling, Limit: 7},
			{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodMonth, Limit: 3, Model: "mock-chat"},
			{Scope: domain.ScopeKey, Period: domain.PeriodDay, Limit: 1},
		}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, postgres.NewKey{User: "dave", Team: "ops", DailyBudget: 4, TeamDailyBudget: 50}); err != nil {
		t.Fatal(err)
	}
	got, err := s.BudgetsOf(ctx, "alice@example.com", "risk")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Budget{
		{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodDay, Limit: 20},
		{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodMonth, Limit: 3, Model: "mock-chat"},
		{Scope: domain.ScopeTeam, ScopeID: "risk", Period: rolling, Limit: 7},
	}
	if !sameBudgets(got, want) {
		t.Fatalf("BudgetsOf(alice, risk) = %+v, want %+v", got, want)
	}
	got, err = s.BudgetsOf(ctx, "dave", "nobody")
	if err != nil || !sameBudgets(got, []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "dave", Period: domain.PeriodDay, Limit: 4}}) {
		t.Fatalf("BudgetsOf(dave, nobody) = %+v, %v", got, err)
	}
	if got, err := s.BudgetsOf(ctx, "nobody", "nowhere"); err != nil || len(got) != 0 {
		t.Fatalf("BudgetsOf(nobody, nowhere) = %+v, %v", got, err)
	}
}

// sameBudgets compares budgets whatever their order.
func sameBudgets(a, b []domain.Budget) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x domain.Budget) bool { return !slices.Contains(b, x) })
}
