//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestUserAndTeamLimits checks that a key's creation sets its user's and
// team's limits for every key of theirs (a limit left at 0 keeps the one
// stored), that SetLimits replaces them whole with its audit entry, and
// that bad limits are refused before anything is stored.
func TestUserAndTeamLimits(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	cli := domain.Actor{Kind: domain.ActorCLI, ID: "ops"}
	entry := func(action string) domain.AuditEntry {
		return domain.AuditEntry{Actor: cli, Action: action, Reason: "quota review"}
	}

	first, firstSecret, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk",
		UserLimits: domain.Limits{RPM: 60, MaxConcurrent: 4}, TeamLimits: domain.Limits{TPM: 100_000}}, entry("key.create"))
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if first.Caller.UserLimits != (domain.Limits{RPM: 60, MaxConcurrent: 4}) || first.Caller.TeamLimits != (domain.Limits{TPM: 100_000}) {
		t.Fatalf("created key's limits: user %+v, team %+v", first.Caller.UserLimits, first.Caller.TeamLimits)
	}
	// A second key of alice's raises the user's tpm and keeps the rest.
	_, secondSecret, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk", UserLimits: domain.Limits{TPM: 5000}}, entry("key.create"))
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	user := domain.Limits{RPM: 60, TPM: 5000, MaxConcurrent: 4}
	for _, secret := range []string{firstSecret, secondSecret} {
		c, err := s.CallerByKeyHash(ctx, domain.HashKey(secret))
		if err != nil {
			t.Fatal(err)
		}
		if c.UserLimits != user || c.TeamLimits != (domain.Limits{TPM: 100_000}) {
			t.Errorf("caller's limits: user %+v, team %+v; want %+v and tpm 100000", c.UserLimits, c.TeamLimits, user)
		}
	}

	set, err := s.SetLimits(ctx, domain.LimitTeam, "risk", domain.Limits{RPM: 600}, entry("limits.set"))
	if err != nil || set != (domain.Limits{RPM: 600}) {
		t.Fatalf("SetLimits = %+v, %v", set, err)
	}
	if got, err := s.Limits(ctx, domain.LimitTeam, "risk"); err != nil || got != (domain.Limits{RPM: 600}) {
		t.Fatalf("Limits(team risk) = %+v, %v; want rpm 600 only (SetLimits replaces them whole)", got, err)
	}
	if got, err := s.Limits(ctx, domain.LimitUser, "nobody"); err != nil || got != (domain.Limits{}) {
		t.Fatalf("Limits of a user without any = %+v, %v; want none", got, err)
	}
	entries, err := s.Audit(ctx, domain.AuditQuery{Action: "limits.set", Limit: 10})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit entries of limits.set: %d, %v; want 1", len(entries), err)
	}
	e := entries[0]
	before, okB := e.Before.(*domain.LimitsOf)
	after, okA := e.After.(*domain.LimitsOf)
	if e.Target != "team:risk" || !okB || !okA || before.Limits != (domain.Limits{TPM: 100_000}) || after.Limits != (domain.Limits{RPM: 600}) {
		t.Fatalf("audit entry %+v (before %+v, after %+v), want team:risk from tpm 100000 to rpm 600", e, e.Before, e.After)
	}
	created, err := s.Audit(ctx, domain.AuditQuery{Target: first.ID, Limit: 10})
	if err != nil || len(created) != 1 {
		t.Fatalf("the first key's audit entries: %d, %v", len(created), err)
	}
	if k, ok := created[0].After.(*domain.APIKey); !ok || k.Caller.UserLimits != (domain.Limits{RPM: 60, MaxConcurrent: 4}) {
		t.Fatalf("key.create's audit entry does not show the user's limits: %+v", created[0].After)
	}

	for name, call := range map[string]func() error{
		"negative user rpm": func() error {
			_, _, err := s.CreateKey(ctx, postgres.NewKey{User: "u", Team: "t", UserLimits: domain.Limits{RPM: -1}}, entry("key.create"))
			return err
		},
		"team tpm beyond the column": func() error {
			_, _, err := s.CreateKey(ctx, postgres.NewKey{User: "u", Team: "t", TeamLimits: domain.Limits{TPM: 1 << 31}}, entry("key.create"))
			return err
		},
		"a model's limits": func() error {
			_, err := s.SetLimits(ctx, domain.LimitModel, "gpt", domain.Limits{RPM: 1}, entry("limits.set"))
			return err
		},
		"an empty user": func() error {
			_, err := s.SetLimits(ctx, domain.LimitUser, " ", domain.Limits{RPM: 1}, entry("limits.set"))
			return err
		},
	} {
		if err := call(); !errors.Is(err, domain.KindInvalid) {
			t.Errorf("%s: %v, want an invalid-request error", name, err)
		}
	}
}
