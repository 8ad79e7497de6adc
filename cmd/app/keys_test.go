package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestKeysCreateBudgetFlags(t *testing.T) {
	nk, _, _, err := parseNewKey([]string{"--user", "u", "--team", "t"}, io.Discard)
	if err != nil || nk.DailyBudget != 0 || nk.MonthlyBudget != 0 || nk.TeamDailyBudget != 0 || nk.TeamMonthlyBudget != 0 {
		t.Fatalf("no budget flag: %+v, %v; want no budget", nk, err)
	}
	for _, flag := range []string{"--daily-budget-usd", "--monthly-budget-usd", "--team-daily-budget-usd", "--team-monthly-budget-usd"} {
		_, _, _, err := parseNewKey([]string{"--user", "u", "--team", "t", flag, "0"}, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), flag[1:]) || !strings.Contains(err.Error(), "leave the flag out") {
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
