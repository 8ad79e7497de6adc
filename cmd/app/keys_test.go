package main

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
)

func TestKeysCreateBudgetFlags(t *testing.T) {
	nk, _, _, err := parseNewKey([]string{"--user", "u", "--team", "t"}, io.Discard)
	if err != nil || nk.DailyBudget != 0 || nk.MonthlyBudget != 0 || nk.TeamDailyBudget != 0 || nk.TeamMonthlyBudget != 0 {
		t.Fatalf("no budget flag: %+v, %v; want no budget", nk, err)
	}
	for _, flag := range []string{"--daily-budget-usd", "--monthly-budget-usd", "--team-daily-budget-usd", "--team-monthly-budget-usd"} {
		_, _, _, err := parseNewKey([]string{"--user", "u", "--team", "t", flag, "0"}, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), flag[1:]) || !strings.Contains(err.Error(), "would allow nothing; leave it out") {
			t.Errorf("%s 0: %v, want a usage error naming the flag", flag, err)
		}
	}
	var help bytes.Buffer
	_, _, _, _ = parseNewKey([]string{"-h"}, &help)
	if strings.Contains(help.String(), "$0.000000") || !strings.Contains(help.String(), "no budget") {
		t.Errorf("help shows a zero default instead of saying there is no budget:\n%s", help.String())
	}
}

func TestKeysListSaysUnlimited(t *testing.T) {
	var out bytes.Buffer
	limited := domain.APIKey{ID: "key_b", CreatedAt: time.Unix(0, 0), Caller: domain.Caller{User: "bob", Team: "t", RPM: 60,
		Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "bob", Period: domain.PeriodDay, Limit: 5 * domain.MicrosPerUSD}}}}
	open := domain.APIKey{ID: "key_a", CreatedAt: time.Unix(0, 0), Caller: domain.Caller{User: "alice", Team: "t"}}
	if err := writeKeys(&out, []domain.APIKey{open, limited}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "BUDGETS") {
		t.Fatalf("listing:\n%s", out.String())
	}
	if strings.Count(lines[1], "unlimited") != 3 { // rpm, tpm, budgets
		t.Errorf("a key without limits: %q, want unlimited rpm, tpm and budgets", lines[1])
	}
	if !strings.Contains(lines[2], "user/day $5.000000") || strings.Count(lines[2], "unlimited") != 1 {
		t.Errorf("a key with a budget and rpm: %q", lines[2])
	}
}

func TestKeysCreateBudgetSpecs(t *testing.T) {
	nk, _, _, err := parseNewKey([]string{"--user", "u", "--team", "t", "--budget", "key:month=5", "--budget", "team:week=500",
		"--budget", "user:rolling:24h=2.5", "--model-budget", "gpt-4o@user:day=10", "--model-budget", "group:premium@team:month=300",
		"--daily-budget-usd", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Budget{
		{Scope: domain.ScopeKey, Period: domain.PeriodMonth, Limit: 5_000_000},
		{Scope: domain.ScopeTeam, Period: domain.PeriodWeek, Limit: 500_000_000},
		{Scope: domain.ScopeUser, Period: "rolling:24h", Limit: 2_500_000},
		{Scope: domain.ScopeUser, Period: domain.PeriodDay, Limit: 10_000_000, Model: "gpt-4o"},
		{Scope: domain.ScopeTeam, Period: domain.PeriodMonth, Limit: 300_000_000, Model: "group:premium"},
	}
	if !slices.Equal(nk.More, want) || nk.DailyBudget != 3_000_000 {
		t.Fatalf("budgets = %+v, daily %v; want %+v and the daily flag's $3", nk.More, nk.DailyBudget, want)
	}
	all := nk.Budgets()
	if all[5].ScopeID != "t" || all[6].ScopeID != "u" || all[4].ScopeID != "" {
		t.Errorf("Budgets() = %+v: want the team's and user's IDs filled in, the key's left for the store", all)
	}
}

func TestKeysCreateBadBudgetsOneLineEach(t *testing.T) {
	_, _, _, err := parseNewKey([]string{"--user", "u", "--team", "t",
		"--budget", "org:day=5", "--budget", "key:fortnight=5", "--budget", "key:day=0", "--model-budget", "gpt@key:rolling:1s=1",
		"--budget", "team:month=1", "--budget", "team:month=2", "--budget", "user:day=1", "--daily-budget-usd", "1"}, io.Discard)
	var out bytes.Buffer
	if code := report(&out, err); code != 2 {
		t.Fatalf("exit status %d, want 2 (error %v)", code, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	wants := []string{"org", "fortnight", "0", "twice", "rolling:1s", "daily-budget-usd"}
	if len(lines) != len(wants) {
		t.Fatalf("report =\n%s\nwant %d lines, one per problem", out.String(), len(wants))
	}
	for i, w := range wants {
		if !strings.HasPrefix(lines[i], "tidygate: ") || !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to name %q", i, lines[i], w)
		}
	}
}

func TestBudgetListNamesModels(t *testing.T) {
	got := budgetList([]domain.Budget{{Scope: domain.ScopeKey, Period: "rolling:30d", Limit: 1}, {Scope: domain.ScopeUser, Period: domain.PeriodDay, Limit: 2, Model: "group:x"}})
	if want := "key/rolling:30d $0.000001,group:x@user/day $0.000002"; got != want {
		t.Errorf("budgetList = %q, want %q", got, want)
	}
}

// TestCLIReason checks what a change without --reason does: a warning and
// the marker reason by default, a refusal with AUDIT_REASON_REQUIRED_CLI;
// and that a given reason is passed on as it is.
func TestCLIReason(t *testing.T) {
	for _, c := range []struct {
		required      bool
		given, want   string
		warns, refuse bool
	}{
		{false, "", noCLIReason, true, false},
		{true, "", "", false, true},
		{false, "onboarding", "onboarding", false, false},
		{true, "onboarding", "onboarding", false, false},
	} {
		var stderr strings.Builder
		got, err := cliReason(infra.Config{AuditReasonRequiredCLI: c.required}, c.given, &stderr)
		var usage usageError
		if got != c.want || errors.As(err, &usage) != c.refuse || (err != nil) != c.refuse || strings.Contains(stderr.String(), "warning") != c.warns {
			t.Errorf("required %v, --reason %q: %q, %v, stderr %q; want %q, refused %v, warning %v",
				c.required, c.given, got, err, stderr.String(), c.want, c.refuse, c.warns)
		}
	}
}

func TestKeysCreateUserAndTeamLimitFlags(t *testing.T) {
	nk, _, _, err := parseNewKey([]string{"--user", "u", "--team", "t", "--user-rpm", "60", "--user-tpm", "9000",
		"--user-max-concurrent", "4", "--team-rpm", "600", "--team-tpm", "90000", "--team-max-concurrent", "40"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if nk.UserLimits != (domain.Limits{RPM: 60, TPM: 9000, MaxConcurrent: 4}) || nk.TeamLimits != (domain.Limits{RPM: 600, TPM: 90000, MaxConcurrent: 40}) {
		t.Fatalf("limits: user %+v, team %+v", nk.UserLimits, nk.TeamLimits)
	}
	_, _, _, err = parseNewKey([]string{"--user", "u", "--team", "t", "--user-rpm", "-1", "--team-max-concurrent", "-2"}, io.Discard)
	var problems usageProblems
	if !errors.As(err, &problems) || len(problems) != 2 || !strings.Contains(problems[0], "--user-rpm") || !strings.Contains(problems[1], "--team-max-concurrent") {
		t.Fatalf("negative limits: %v, want one problem naming the user's flags and one the team's", err)
	}
	var out bytes.Buffer
	k := domain.APIKey{ID: "key_l", CreatedAt: time.Unix(0, 0), Caller: domain.Caller{User: "u", Team: "t", UserLimits: nk.UserLimits}}
	if err := writeKeys(&out, []domain.APIKey{k}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "rpm=60,tpm=9000,concurrent=4") || !strings.Contains(out.String(), "TEAM LIMITS") {
		t.Fatalf("listing does not show the user's limits:\n%s", out.String())
	}
	lines := limitChanges([]domain.APIKey{{Caller: domain.Caller{User: "u", Team: "t", UserLimits: domain.Limits{RPM: 30}}}}, k)
	if len(lines) != 1 || !strings.Contains(lines[0], `user "u"`) || !strings.Contains(lines[0], "rpm=30") {
		t.Fatalf("limitChanges = %q, want one line saying the user's rpm 30 was replaced", lines)
	}
}

// TestKeysCreateChecksModelsByTheFlagThatNamedThem: a model the catalogue
// does not have is refused before anything connects, naming the flag that
// named it; models, aliases and groups pass.
func TestKeysCreateChecksModelsByTheFlagThatNamedThem(t *testing.T) {
	var cfg infra.Config // the built-in catalogue
	if err := checkModels(cfg, domain.NewKey{AllowedModels: []string{"mock-chat", "mock", domain.GroupPrefix + "any"}}); err != nil {
		t.Errorf("a model, an alias and a group: %v", err)
	}
	err := checkModels(cfg, domain.NewKey{AllowedModels: []string{"mock-chat"},
		More: []domain.Budget{{Model: "mock-chat"}, {Model: "mock-caht"}}})
	var u usageError
	if !errors.As(err, &u) || !strings.HasPrefix(err.Error(), "--model-budget names") || !strings.HasSuffix(err.Error(), ": mock-caht") {
		t.Errorf("a typo in --model-budget: %v", err)
	}
}
