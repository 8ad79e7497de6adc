//go:build integration

package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestStandingOf reads a user's and a team's budgets, from both budget
// tables, and their limits, without a key of that user: what a caller
// signed in with a token is charged against and limited by.
func TestStandingOf(t *testing.T) {
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
	if _, _, err := s.Create(ctx, postgres.NewKey{User: "dave", Team: "ops", DailyBudget: 4, TeamDailyBudget: 50,
		UserLimits: domain.Limits{RPM: 6, MaxConcurrent: 2}, TeamLimits: domain.Limits{TPM: 900}}); err != nil {
		t.Fatal(err)
	}
	st, err := s.StandingOf(ctx, "alice@example.com", "risk")
	if err != nil {
		t.Fatal(err)
	}
	got := st.Budgets
	if st.UserLimits != (domain.Limits{}) || st.TeamLimits != (domain.Limits{}) {
		t.Fatalf("StandingOf(alice, risk) has limits %+v %+v, want none", st.UserLimits, st.TeamLimits)
	}
	want := []domain.Budget{
		{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodDay, Limit: 20},
		{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodMonth, Limit: 3, Model: "mock-chat"},
		{Scope: domain.ScopeTeam, ScopeID: "risk", Period: rolling, Limit: 7},
	}
	if !sameBudgets(got, want) {
		t.Fatalf("StandingOf(alice, risk) has budgets %+v, want %+v", got, want)
	}
	st, err = s.StandingOf(ctx, "dave", "nobody")
	if err != nil || !sameBudgets(st.Budgets, []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "dave", Period: domain.PeriodDay, Limit: 4}}) ||
		st.UserLimits != (domain.Limits{RPM: 6, MaxConcurrent: 2}) || st.TeamLimits != (domain.Limits{}) {
		t.Fatalf("StandingOf(dave, nobody) = %+v, %v", st, err)
	}
	// A team's limits without any budget, and a user without either.
	if st, err := s.StandingOf(ctx, "erin", "ops"); err != nil || !sameBudgets(st.Budgets, []domain.Budget{{Scope: domain.ScopeTeam, ScopeID: "ops", Period: domain.PeriodDay, Limit: 50}}) ||
		st.UserLimits != (domain.Limits{}) || st.TeamLimits != (domain.Limits{TPM: 900}) {
		t.Fatalf("StandingOf(erin, ops) = %+v, %v", st, err)
	}
	if st, err := s.StandingOf(ctx, "nobody", "nowhere"); err != nil || len(st.Budgets) != 0 || st.UserLimits != (domain.Limits{}) || st.TeamLimits != (domain.Limits{}) {
		t.Fatalf("StandingOf(nobody, nowhere) = %+v, %v", st, err)
	}
}

// sameBudgets compares budgets whatever their order.
func sameBudgets(a, b []domain.Budget) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x domain.Budget) bool { return !slices.Contains(b, x) })
}
