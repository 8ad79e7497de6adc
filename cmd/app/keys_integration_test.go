//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
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

// TestKeysRotateAndExpire: `keys rotate` prints the new secret as its only
// stdout line, with flags before or after the ID; the old secret works for
// the grace period and not after a rotation without one; `--expires-in`
// gives the key an expiry that `keys list` shows.
func TestKeysRotateAndExpire(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.New(t)
	env := []string{"DATABASE_URL=" + dsn, "LOG_LEVEL=error"}
	cli := func(args ...string) (stdout, stderr string, err error) {
		var out, errOut bytes.Buffer
		err = run(ctx, args, env, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	first, said, err := cli("keys", "create", "--user", "ida", "--team", "ops", "--expires-in", "720h", "--reason", "onboarding ida")
	if err != nil {
		t.Fatal(err)
	}
	first = strings.TrimSpace(first)
	id := regexp.MustCompile(`key_[a-z0-9]+`).FindString(said)
	if id == "" {
		t.Fatalf("no key ID in %q", said)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store := postgres.NewKeyStore(pool)
	works := func(secret string) bool {
		c, err := store.CallerByKeyHash(ctx, domain.HashKey(secret))
		return err == nil && c.KeyID == id
	}

	second, _, err := cli("keys", "rotate", id, "--grace", "24h", "--reason", "quarterly rotation")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(second, "\n") != 1 || !domain.LooksLikeKey(strings.TrimSpace(second)) {
		t.Fatalf("rotate printed %q, want the new secret as the only line", second)
	}
	second = strings.TrimSpace(second)
	if !works(first) || !works(second) {
		t.Fatalf("during the grace period: old works %v, new works %v; want both", works(first), works(second))
	}

	third, _, err := cli("keys", "rotate", "--reason", "suspected leak", "--grace", "0s", id)
	if err != nil {
		t.Fatal(err)
	}
	third = strings.TrimSpace(third)
	if works(first) || works(second) || !works(third) {
		t.Errorf("after a rotation without grace: first %v, second %v, third %v; want only the third", works(first), works(second), works(third))
	}

	list, _, err := cli("keys", "list")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Now().Add(720 * time.Hour).UTC().Format("2006-01-02")
	if !strings.Contains(list, want) {
		t.Errorf("keys list does not show the expiry (%s…):\n%s", want, list)
	}

	for _, bad := range [][]string{
		{"keys", "create", "--user", "u", "--team", "t", "--expires-in", "-1h"},
		{"keys", "rotate", id, "--grace", "-1h", "--reason", "no such thing"},
		{"keys", "rotate", "--reason", "two ids", id, id},
		{"keys", "rotate", "key_unknown", "--reason", "who is this"},
	} {
		if _, _, err := cli(bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
