//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

// TestCreateListRevoke walks a key through the administration the CLI uses.
func TestCreateListRevoke(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()

	key, secret, err := s.Create(ctx, postgres.NewKey{User: "alice", Team: "risk", AllowedModels: []string{"gpt"},
		RPM: 60, TPM: 1000, DailyBudget: 5, MonthlyBudget: 50, TeamDailyBudget: 20, TeamMonthlyBudget: 200})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !domain.LooksLikeKey(secret) || !strings.HasPrefix(key.ID, "key_") || key.CreatedAt.IsZero() || key.RevokedAt != nil {
		t.Fatalf("Create returned key %+v and secret %q", key, secret)
	}
	want := domain.Caller{KeyID: key.ID, User: "alice", Team: "risk", AllowedModels: []string{"gpt"}, RPM: 60, TPM: 1000,
		Budgets: []domain.Budget{
			{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 5},
			{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodMonth, Limit: 50},
			{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodDay, Limit: 20},
			{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodMonth, Limit: 200},
		}}
	checkCaller(t, s, secret, want)
	if !sameCaller(key.Caller, want) {
		t.Errorf("Create returned caller %+v, want %+v", key.Caller, want)
	}

	// A second key of the same team replaces the team's daily budget, for
	// both keys, and leaves the rest alone.
	other, otherSecret, err := s.Create(ctx, postgres.NewKey{User: "bob", Team: "risk", TeamDailyBudget: 30})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want.Budgets[2].Limit = 30
	checkCaller(t, s, secret, want)
	checkCaller(t, s, otherSecret, domain.Caller{KeyID: other.ID, User: "bob", Team: "risk", Budgets: want.Budgets[2:]})

	if err := s.Revoke(ctx, key.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := s.CallerByKeyHash(ctx, domain.HashKey(secret)); !errors.Is(err, domain.KindUnauthenticated) {
		t.Errorf("revoked key: error = %v, want %v", err, domain.KindUnauthenticated)
	}
	if err := s.Revoke(ctx, "key_missing"); !errors.Is(err, domain.KindNotFound) {
		t.Errorf("Revoke(unknown) error = %v, want %v", err, domain.KindNotFound)
	}

	list, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 2 || list[0].ID != key.ID || list[1].ID != other.ID {
		t.Fatalf("List = %+v, want alice's key then bob's", list)
	}
	if list[0].RevokedAt == nil || list[1].RevokedAt != nil {
		t.Errorf("List revocations = %v, %v; want alice's key revoked only", list[0].RevokedAt, list[1].RevokedAt)
	}
	if !sameCaller(list[0].Caller, want) {
		t.Errorf("List caller = %+v, want %+v", list[0].Caller, want)
	}
}

// TestEnsureKeyIsIdempotent starts several "replicas" seeding the same
// development key at once: one key results, and a revoked key stays revoked.
func TestEnsureKeyIsIdempotent(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	const secret = "tg-development-key-0123456789"

	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, err := s.EnsureKey(ctx, secret, postgres.NewKey{User: "dev", Team: "dev", DailyBudget: 10})
			if err != nil {
				t.Errorf("EnsureKey: %v", err)
			}
			ids[i] = key.ID
		}()
	}
	wg.Wait()
	if ids[0] == "" || slices.ContainsFunc(ids, func(id string) bool { return id != ids[0] }) {
		t.Fatalf("EnsureKey returned IDs %v, want one ID", ids)
	}
	checkCaller(t, s, secret, domain.Caller{KeyID: ids[0], User: "dev", Team: "dev",
		Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "dev", Period: domain.PeriodDay, Limit: 10}}})

	if err := s.Revoke(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	key, err := s.EnsureKey(ctx, secret, postgres.NewKey{User: "someone else", Team: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if key.ID != ids[0] || key.RevokedAt == nil || key.Caller.User != "dev" {
		t.Errorf("EnsureKey of a revoked key = %+v, want the stored, revoked key", key)
	}
	if list, err := s.List(ctx); err != nil || len(list) != 1 {
		t.Errorf("List = %v, %v; want one key", list, err)
	}
}

// TestHostileNamesInTheAdminAPI stores hostile names through Create and reads
// them back through List and CallerByKeyHash.
func TestHostileNamesInTheAdminAPI(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	names := contract.HostileNames()
	type created struct{ name, secret string }
	byID := map[string]created{}
	for _, name := range names {
		key, secret, err := s.Create(ctx, postgres.NewKey{User: name, Team: name, AllowedModels: names, DailyBudget: 1, TeamMonthlyBudget: 2})
		if err != nil {
			t.Fatalf("Create(%q): %v", name, err)
		}
		byID[key.ID] = created{name, secret}
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(names) {
		t.Fatalf("List has %d keys, want %d", len(list), len(names))
	}
	for _, key := range list {
		c := byID[key.ID]
		want := domain.Caller{KeyID: key.ID, User: c.name, Team: c.name, AllowedModels: names, Budgets: []domain.Budget{
			{Scope: domain.ScopeUser, ScopeID: c.name, Period: domain.PeriodDay, Limit: 1},
			{Scope: domain.ScopeTeam, ScopeID: c.name, Period: domain.PeriodMonth, Limit: 2},
		}}
		if !sameCaller(key.Caller, want) {
			t.Errorf("listed %+v, want %+v", key.Caller, want)
		}
		checkCaller(t, s, c.secret, want)
	}
}

// TestInvalidKeysAreRefused checks that what cannot be stored is a
// domain.KindInvalid error naming the field, not a database failure.
func TestInvalidKeysAreRefused(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	long := strings.Repeat("x", postgres.MaxNameBytes+1)
	for name, tc := range map[string]struct {
		nk    postgres.NewKey
		param string
	}{
		"no user":         {postgres.NewKey{Team: "t"}, "user"},
		"blank team":      {postgres.NewKey{User: "u", Team: "  "}, "team"},
		"long user":       {postgres.NewKey{User: long, Team: "t"}, "user"},
		"NUL in team":     {postgres.NewKey{User: "u", Team: "a\x00b"}, "team"},
		"invalid UTF-8":   {postgres.NewKey{User: "\xff\xfe", Team: "t"}, "user"},
		"empty model":     {postgres.NewKey{User: "u", Team: "t", AllowedModels: []string{"gpt", ""}}, "allowed_models"},
		"negative rpm":    {postgres.NewKey{User: "u", Team: "t", RPM: -1}, "rpm"},
		"huge tpm":        {postgres.NewKey{User: "u", Team: "t", TPM: 1 << 40}, "tpm"},
		"negative budget": {postgres.NewKey{User: "u", Team: "t", TeamMonthlyBudget: -1}, "budget"},
	} {
		_, _, err := s.Create(context.Background(), tc.nk)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != tc.param {
			t.Errorf("%s: Create error = %v, want %v for %q", name, err, domain.KindInvalid, tc.param)
		}
	}
	if _, err := s.EnsureKey(context.Background(), "not-a-key", postgres.NewKey{User: "u", Team: "t"}); !errors.Is(err, domain.KindInvalid) {
		t.Errorf("EnsureKey(bad secret) error = %v, want %v", err, domain.KindInvalid)
	}
	if list, err := s.List(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("List = %v, %v; want no keys", list, err)
	}
}

func checkCaller(t *testing.T, s *postgres.KeyStore, secret string, want domain.Caller) {
	t.Helper()
	got, err := s.CallerByKeyHash(context.Background(), domain.HashKey(secret))
	if err != nil {
		t.Fatalf("CallerByKeyHash: %v", err)
	}
	if !sameCaller(got, want) {
		t.Errorf("caller =\n\t%+v\nwant\n\t%+v", got, want)
	}
}

func sameCaller(a, b domain.Caller) bool {
	return a.KeyID == b.KeyID && a.User == b.User && a.Team == b.Team && a.RPM == b.RPM && a.TPM == b.TPM &&
		a.UserLimits == b.UserLimits && a.TeamLimits == b.TeamLimits &&
		slices.Equal(a.AllowedModels, b.AllowedModels) && slices.Equal(a.Budgets, b.Budgets)
}

// TestLastUsedIsWrittenInBatches checks that authenticating writes nothing
// by itself: the keys' last-used times reach the table in one flush, and a
// flush never moves a time backwards.
func TestLastUsedIsWrittenInBatches(t *testing.T) {
	ctx := context.Background()
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	var secrets []string
	for _, user := range []string{"ann", "ben"} {
		_, secret, err := s.Create(ctx, postgres.NewKey{User: user, Team: "ops"})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, secret)
	}
	lastUsed := func() map[string]*time.Time {
		keys, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*time.Time{}
		for _, k := range keys {
			m[k.Caller.User] = k.LastUsedAt
		}
		return m
	}
	began := time.Now()
	for range 20 {
		for _, secret := range secrets {
			if _, err := s.CallerByKeyHash(ctx, domain.HashKey(secret)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for user, at := range lastUsed() {
		if at != nil {
			t.Errorf("%s: last used written before any flush: %v", user, at)
		}
	}
	if err := s.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	got := lastUsed()
	for _, user := range []string{"ann", "ben"} {
		if at := got[user]; at == nil || at.Before(began.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: last used = %v, want about now", user, at)
		}
	}
	// A second store (another replica) that saw an older use cannot move the time back.
	other := postgres.NewKeyStore(pool)
	if _, err := other.CallerByKeyHash(ctx, domain.HashKey(secrets[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CallerByKeyHash(ctx, domain.HashKey(secrets[0])); err != nil {
		t.Fatal(err)
	}
	if err := s.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	newest := lastUsed()["ann"]
	if err := other.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	if after := lastUsed()["ann"]; !after.Equal(*newest) {
		t.Errorf("an older last-used time from another replica replaced %v with %v", newest, after)
	}
}
