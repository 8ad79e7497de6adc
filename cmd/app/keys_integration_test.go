//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/pgtest"
)

// TestKeysCreateNeverReplacesABudgetSilently: a second key for a user who
// has a budget keeps it unless --replace-budget says otherwise, and then
// tidygate says what it replaced.
func TestKeysCreateNeverReplacesABudgetSilently(t *testing.T) {
	env := []string{"DATABASE_URL=" + pgtest.New(t), "LOG_LEVEL=error"}
	keys := func(args ...string) (string, error) {
		var stderr bytes.Buffer
		err := run(context.Background(), append([]string{"keys", "create"}, args...), env, io.Discard, &stderr)
		return stderr.String(), err
	}
	if _, err := keys("--user", "alice", "--team", "risk", "--daily-budget-usd", "0.0005"); err != nil {
		t.Fatal(err)
	}
	if _, err := keys("--user", "alice", "--team", "risk"); err != nil {
		t.Fatalf("a key with no budget flag for a user with a budget: %v", err)
	}
	if _, err := keys("--user", "alice", "--team", "risk", "--daily-budget-usd", "0.0005"); err != nil {
		t.Fatalf("the same budget again: %v", err)
	}
	_, err := keys("--user", "alice", "--team", "risk", "--daily-budget-usd", "100")
	var usage usageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--replace-budget") || !strings.Contains(err.Error(), "$0.000500") {
		t.Fatalf("replacing without --replace-budget: %v", err)
	}
	var list bytes.Buffer
	if err := run(context.Background(), []string{"keys", "list"}, env, &list, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Count(list.String(), "user/day $0.000500") != 3 {
		t.Fatalf("the refused key was created or the budget changed:\n%s", list.String())
	}
	said, err := keys("--user", "alice", "--team", "risk", "--daily-budget-usd", "100", "--replace-budget")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(said, "replaced") || !strings.Contains(said, "$0.000500") || !strings.Contains(said, "$100.000000") {
		t.Errorf("stderr does not say what was replaced: %s", said)
	}
}

// TestKeysCreateWithPeriodBudgets stores budgets of every new shape beside
// an older flag's, shows them in keys list, refuses a model the catalogue
// does not have, and asks before replacing a team's weekly budget.
func TestKeysCreateWithPeriodBudgets(t *testing.T) {
	env := []string{"DATABASE_URL=" + pgtest.New(t), "LOG_LEVEL=error"}
	keys := func(args ...string) error {
		return run(context.Background(), append([]string{"keys", "create"}, args...), env, io.Discard, io.Discard)
	}
	if err := keys("--user", "ada", "--team", "lab", "--daily-budget-usd", "1", "--budget", "key:month=5",
		"--budget", "team:week=500", "--budget", "user:rolling:30d=20", "--model-budget", "mock-chat@user:day=2",
		"--model-budget", "group:premium@team:month=300"); err != nil {
		t.Fatal(err)
	}
	var list bytes.Buffer
	if err := run(context.Background(), []string{"keys", "list"}, env, &list, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"user/day $1.000000", "key/month $5.000000", "team/week $500.000000",
		"user/rolling:30d $20.000000", "mock-chat@user/day $2.000000", "group:premium@team/month $300.000000"} {
		if !strings.Contains(list.String(), want) {
			t.Errorf("keys list does not show %q:\n%s", want, list.String())
		}
	}
	if err := keys("--user", "ada", "--team", "lab", "--model-budget", "no-such-model@user:day=1"); err == nil || !strings.Contains(err.Error(), "no-such-model") {
		t.Errorf("a budget on a model the catalogue lacks: %v", err)
	}
	err := keys("--user", "bo", "--team", "lab", "--budget", "team:week=600")
	if err == nil || !strings.Contains(err.Error(), "--replace-budget") {
		t.Errorf("replacing the team's weekly budget without --replace-budget: %v", err)
	}
}
