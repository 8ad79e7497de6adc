//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestAuditedChanges checks that every change stores exactly one audit entry
// in its own transaction, with the state before and after and no secret, and
// that a refused change stores none.
func TestAuditedChanges(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	cli := domain.Actor{Kind: domain.ActorCLI, ID: "ops"}
	entry := func(action, reason string) domain.AuditEntry {
		return domain.AuditEntry{Actor: cli, Action: action, Reason: reason}
	}
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM tidygate_audit_log").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	key, secret, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk", RPM: 5, DailyBudget: 7}, entry("key.create", "onboarding"))
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("after CreateKey: %d audit entries, want 1", n)
	}
	if _, _, err := s.CreateKey(ctx, postgres.NewKey{Team: "risk"}, entry("key.create", "no user")); !errors.Is(err, domain.KindInvalid) {
		t.Fatalf("CreateKey without user: %v", err)
	}
	if _, err := s.RevokeKey(ctx, "key_missing", "", entry("key.revoke", "gone")); !errors.Is(err, domain.KindNotFound) {
		t.Fatalf("RevokeKey of an unknown key: %v", err)
	}
	if _, _, err := s.CreateKey(ctx, postgres.NewKey{User: "bob", Team: "risk"}, entry("key.create", "")); !errors.Is(err, domain.KindInvalid) {
		t.Fatalf("CreateKey without a reason: %v", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("after refused changes: %d audit entries, want 1", n)
	}
	if _, err := s.RevokeKey(ctx, key.ID, "stale", entry("key.revoke", "alice left")); !errors.Is(err, domain.KindInvalid) ||
		!strings.Contains(err.Error(), "changed since") {
		t.Fatalf("RevokeKey with a stale version: %v", err)
	}
	revoked, err := s.RevokeKey(ctx, key.ID, domain.KeyVersion(key), entry("key.revoke", "alice left"))
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("RevokeKey = %+v, %v", revoked, err)
	}
	got, err := s.Key(ctx, key.ID)
	if err != nil || got.RevokedAt == nil || got.Caller.User != "alice" {
		t.Fatalf("Key = %+v, %v", got, err)
	}
	adm, adminSecret, err := s.CreateAdminKey(ctx, "ci", []domain.AdminScope{domain.AdminRead}, entry("admin_key.create", "automation"))
	if err != nil || !strings.HasPrefix(adminSecret, domain.AdminKeyPrefix) {
		t.Fatalf("CreateAdminKey = %+v, %v", adm, err)
	}
	if n := count(); n != 3 {
		t.Fatalf("after three changes: %d audit entries, want 3", n)
	}

	entries, err := s.Audit(ctx, domain.AuditQuery{Limit: 10})
	if err != nil || len(entries) != 3 {
		t.Fatalf("Audit = %d entries, %v", len(entries), err)
	}
	if e := entries[0]; e.Action != "admin_key.create" || e.Target != adm.ID || e.Before != nil {
		t.Errorf("newest entry = %+v", e)
	} else if after, ok := e.After.(*domain.AdminKey); !ok || after.Name != "ci" || len(after.Scopes) != 1 {
		t.Errorf("newest entry's after = %#v", e.After)
	}
	rev := entries[1]
	before, okB := rev.Before.(*domain.APIKey)
	after, okA := rev.After.(*domain.APIKey)
	if rev.Action != "key.revoke" || rev.Reason != "alice left" || rev.Actor.String() != cli.String() || !okB || !okA ||
		before.RevokedAt != nil || after.RevokedAt == nil || after.Caller.RPM != 5 || len(after.Caller.Budgets) != 1 {
		t.Errorf("revoke entry = %+v (before %+v, after %+v)", rev, rev.Before, rev.After)
	}
	page, err := s.Audit(ctx, domain.AuditQuery{BeforeID: entries[1].ID, Limit: 10})
	if err != nil || len(page) != 1 || page[0].Action != "key.create" {
		t.Errorf("next page = %+v, %v", page, err)
	}
	byTarget, err := s.Audit(ctx, domain.AuditQuery{Target: key.ID, Limit: 10})
	if err != nil || len(byTarget) != 2 {
		t.Errorf("entries of %s = %d, %v", key.ID, len(byTarget), err)
	}

	// No secret and no hash in the log.
	var dump string
	if err := pool.QueryRow(ctx, "SELECT string_agg(tidygate_audit_log::text, ' ') FROM tidygate_audit_log").Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, adminSecret, domain.HashKey(secret), domain.HashKey(adminSecret)} {
		if strings.Contains(dump, s) {
			t.Errorf("the audit log holds a secret or its hash: %q", s)
		}
	}
	// The log is append-only.
	if _, err := pool.Exec(ctx, "DELETE FROM tidygate_audit_log"); err == nil {
		t.Error("an audit entry could be deleted")
	}
	if _, err := pool.Exec(ctx, "UPDATE tidygate_audit_log SET reason = 'x'"); err == nil {
		t.Error("an audit entry could be changed")
	}

	// The admin key authenticates by its hash, and only while active.
	found, err := s.AdminKeyByHash(ctx, domain.HashKey(adminSecret))
	if err != nil || found.ID != adm.ID || len(found.Scopes) != 1 || found.Scopes[0] != domain.AdminRead {
		t.Errorf("AdminKeyByHash = %+v, %v", found, err)
	}
	for _, h := range []string{domain.HashKey("tga-unknown"), "", domain.HashKey(secret)} {
		if _, err := s.AdminKeyByHash(ctx, h); !errors.Is(err, domain.KindUnauthenticated) {
			t.Errorf("AdminKeyByHash(%q) error = %v, want unauthenticated", h, err)
		}
	}
}

// TestCreateKeyReplacesABudgetOnlyWhenAsked checks that a key naming
// another limit for a budget its user has is refused, creating nothing and
// auditing nothing, unless it says it replaces it; and that a replacement
// is audited with the user's budget before and after (user.update), beside
// the key's own entry, while a key that replaces nothing leaves one entry.
func TestCreateKeyReplacesABudgetOnlyWhenAsked(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	e := domain.AuditEntry{Actor: domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_ops"}, Action: "key.create", Reason: "onboarding alice"}
	count := func(table string) int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, _, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk", DailyBudget: 5_000_000}, e); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk", DailyBudget: 10_000_000}, e)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeBudgetExists || de.Param != "daily_budget_usd" || !strings.Contains(de.Message, "$5.000000") {
		t.Fatalf("replacing alice's $5 unasked: %v", err)
	}
	if keys, entries := count("tidygate_api_keys"), count("tidygate_audit_log"); keys != 1 || entries != 1 {
		t.Fatalf("after the refusal: %d keys, %d audit entries; want 1 and 1", keys, entries)
	}
	key, _, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk", DailyBudget: 10_000_000, ReplaceBudgets: true}, e)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.Audit(ctx, domain.AuditQuery{Limit: 10})
	if err != nil || len(entries) != 3 {
		t.Fatalf("Audit = %d entries, %v; want 3", len(entries), err)
	}
	created, replaced := entries[1], entries[0]
	if created.Action != "key.create" || created.Target != key.ID {
		t.Errorf("the key's entry = %+v", created)
	}
	before, okB := replaced.Before.(*domain.Principal)
	after, okA := replaced.After.(*domain.Principal)
	if replaced.Action != "user.update" || replaced.Target != "user:alice" || replaced.Reason != "onboarding alice" ||
		replaced.Actor.ID != "adm_ops" || !okB || !okA || len(before.Budgets) != 1 || before.Budgets[0].Limit != 5_000_000 ||
		len(after.Budgets) != 1 || after.Budgets[0].Limit != 10_000_000 {
		t.Errorf("the replacement's entry = %+v (before %+v, after %+v)", replaced, replaced.Before, replaced.After)
	}
	if _, _, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk", DailyBudget: 10_000_000, MonthlyBudget: 100_000_000}, e); err != nil {
		t.Fatal(err)
	}
	if n := count("tidygate_audit_log"); n != 4 {
		t.Errorf("a key that adds a budget and replaces none: %d audit entries, want 4 (one more)", n)
	}
}

// TestNoAuditEntryForAChangeThatChangesNothing checks that a change that
// leaves its target as it was stores no audit entry (docs/ADMIN.md: no
// entry for a change that did not happen): revoking a revoked key or admin
// key (answered with the key as it is), an update to the values the key
// has, removing a budget that does not exist, setting a user's limits to
// what they are; and that a revoked key's expiry cannot be set, as it
// cannot be updated or rotated.
func TestNoAuditEntryForAChangeThatChangesNothing(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	e := domain.AuditEntry{Actor: domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_ops"}, Reason: "housekeeping"}
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM tidygate_audit_log").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	key, _, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk", RPM: 5}, e)
	if err != nil {
		t.Fatal(err)
	}
	five := 5
	if _, err := s.UpdateKey(ctx, key.ID, domain.KeyUpdate{RPM: &five}, "", e); err != nil {
		t.Fatal(err)
	}
	gone := []domain.Budget{{Scope: domain.ScopeUser, Period: domain.PeriodWeek}}
	if _, err := s.UpdateKey(ctx, key.ID, domain.KeyUpdate{Budgets: gone}, "", e); err != nil {
		t.Fatal(err)
	}
	gone[0].ScopeID = "alice"
	if _, err := s.ChangePrincipal(ctx, domain.ScopeUser, "alice", domain.PrincipalChange{Budgets: gone}, "", e); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetLimits(ctx, domain.LimitUser, "alice", domain.Limits{}, e); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("after changes that change nothing: %d audit entries, want 1 (the key's creation)", n)
	}
	revoked, err := s.RevokeKey(ctx, key.ID, "", e)
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("RevokeKey = %+v, %v", revoked, err)
	}
	again, err := s.RevokeKey(ctx, key.ID, domain.KeyVersion(revoked), e)
	if err != nil || again.RevokedAt == nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Fatalf("revoking the revoked key again = %+v, %v; want the key as it was revoked", again, err)
	}
	if _, err := s.SetKeyExpiry(ctx, key.ID, time.Now().Add(time.Hour), "", e); !errors.Is(err, domain.KindInvalid) ||
		!strings.Contains(err.Error(), "revoked") {
		t.Errorf("setting a revoked key's expiry: %v, want it refused as revoked", err)
	}
	adm, _, err := s.CreateAdminKey(ctx, "ci", []domain.AdminScope{domain.AdminRead}, e)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.RevokeAdminKey(ctx, adm.ID, e); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 4 {
		t.Errorf("%d audit entries, want 4: key.create, key.revoke, admin_key.create, admin_key.revoke", n)
	}
}

// TestEveryWriterOfAPrincipalTakesItsTurn checks that a change of a user's
// budget through one of its keys (UpdateKey) and of its limits (SetLimits)
// waits while another change of the same user holds the user's turn, as
// ChangePrincipal and CreateKey take it: CreateKey reads the budgets it
// may replace, and what it replaced, under that turn, so a writer that
// did not wait could change them in between, and a key would then replace
// a budget unasked and unaudited.
func TestEveryWriterOfAPrincipalTakesItsTurn(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	e := domain.AuditEntry{Actor: domain.Actor{Kind: domain.ActorAdminKey, ID: "adm_ops"}, Reason: "turn taking"}
	key, _, err := s.CreateKey(ctx, postgres.NewKey{User: "alice", Team: "risk"}, e)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func() error{
		"a user budget through a key": func() error {
			_, err := s.UpdateKey(ctx, key.ID, domain.KeyUpdate{Budgets: []domain.Budget{
				{Scope: domain.ScopeUser, Period: domain.PeriodDay, Limit: 10 * domain.MicrosPerUSD}}}, "", e)
			return err
		},
		"the user's limits": func() error {
			_, err := s.SetLimits(ctx, domain.LimitUser, "alice", domain.Limits{RPM: 7}, e)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			// Another change of alice under way: her turn, as ChangePrincipal holds it.
			held, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = held.Rollback(ctx) }()
			if _, err := held.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('tidygate principal ' || 'user' || ' ' || 'alice', 0))"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- change() }()
			for waiting := false; !waiting; {
				select {
				case err := <-done:
					t.Fatalf("the change did not wait for alice's turn (err %v)", err)
				case <-time.After(10 * time.Millisecond):
				}
				if err := pool.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
			}
			if err := held.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("the change, once alice's turn came: %v", err)
			}
		})
	}
}
