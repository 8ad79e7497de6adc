//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// TestKeyUpdatesAndPages checks that updating a key changes exactly what
// the update names, sets and removes budgets of every scope in their own
// tables, refuses a stale version, and leaves one audit entry per change;
// and that keys are paged and filtered in SQL.
func TestKeyUpdatesAndPages(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	entry := domain.AuditEntry{Actor: domain.Actor{Kind: domain.ActorCLI, ID: "ops"}, Action: "key.update", Reason: "test"}
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM tidygate_audit_log").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var ids []string
	for _, u := range []string{"alice", "bob", "alice", "carol", "alice"} {
		k, _, err := s.CreateKey(ctx, postgres.NewKey{User: u, Team: "risk", RPM: 5}, entry)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	key, err := s.Key(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	before := count()
	rpm, models := 60, []string{"mock-chat"}
	week := domain.Budget{Scope: domain.ScopeKey, Period: domain.PeriodWeek, Limit: 3 * domain.MicrosPerUSD}
	day := domain.Budget{Scope: domain.ScopeUser, Period: domain.PeriodDay, Limit: 5 * domain.MicrosPerUSD}
	model := domain.Budget{Scope: domain.ScopeTeam, Period: domain.PeriodMonth, Limit: 7 * domain.MicrosPerUSD, Model: "mock-chat"}
	got, err := s.UpdateKey(ctx, key.ID, domain.KeyUpdate{RPM: &rpm, AllowedModels: &models, Budgets: []domain.Budget{week, day, model}},
		domain.KeyVersion(key), entry)
	if err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	want := []domain.Budget{
		{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: day.Limit},
		{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodMonth, Limit: model.Limit, Model: "mock-chat"},
		{Scope: domain.ScopeKey, ScopeID: key.ID, Period: domain.PeriodWeek, Limit: week.Limit},
	}
	if got.Caller.RPM != 60 || got.Caller.TPM != 0 || !slices.Equal(got.Caller.AllowedModels, models) || !slices.Equal(got.Caller.Budgets, want) {
		t.Errorf("after UpdateKey: rpm %d, tpm %d, models %v, budgets %+v; want 60, 0, %v, %+v",
			got.Caller.RPM, got.Caller.TPM, got.Caller.AllowedModels, got.Caller.Budgets, models, want)
	}
	if _, err := s.UpdateKey(ctx, key.ID, domain.KeyUpdate{RPM: &rpm}, domain.KeyVersion(key), entry); !errors.Is(err, domain.KindInvalid) {
		t.Errorf("UpdateKey with a stale version: %v", err)
	}
	day.Limit, week.Limit = 0, 0 // remove them
	got, err = s.UpdateKey(ctx, key.ID, domain.KeyUpdate{Budgets: []domain.Budget{day, week}}, domain.KeyVersion(got), entry)
	if err != nil || !slices.Equal(got.Caller.Budgets, want[1:2]) {
		t.Errorf("removing two budgets: %+v, %v; want only %+v", got.Caller.Budgets, err, want[1:2])
	}
	if n := count() - before; n != 2 {
		t.Errorf("two updates and a refused one left %d audit entries, want 2", n)
	}
	entries, err := s.Audit(ctx, domain.AuditQuery{Target: key.ID, Limit: 1})
	if err != nil || len(entries) != 1 || len(entries[0].Before.(*domain.APIKey).Caller.Budgets) != 3 || len(entries[0].After.(*domain.APIKey).Caller.Budgets) != 1 {
		t.Errorf("the last update's audit entry: %+v, %v", entries, err)
	}

	// Pages in SQL, oldest first, filtered.
	page := func(q domain.KeyQuery) []string {
		t.Helper()
		keys, err := s.Keys(ctx, q)
		if err != nil {
			t.Fatalf("Keys(%+v): %v", q, err)
		}
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}
	if got := page(domain.KeyQuery{Limit: 2}); !slices.Equal(got, ids[:2]) {
		t.Errorf("first page %v, want %v", got, ids[:2])
	}
	if got := page(domain.KeyQuery{Limit: 2, After: ids[1]}); !slices.Equal(got, ids[2:4]) {
		t.Errorf("second page %v, want %v", got, ids[2:4])
	}
	if got := page(domain.KeyQuery{Limit: 10, User: "alice", After: ids[0]}); !slices.Equal(got, []string{ids[2], ids[4]}) {
		t.Errorf("alice's keys after the first: %v", got)
	}
	if _, err := s.RevokeKey(ctx, ids[3], "", entry); err != nil {
		t.Fatal(err)
	}
	if got := page(domain.KeyQuery{Limit: 10, State: domain.KeyStateRevoked}); !slices.Equal(got, ids[3:4]) {
		t.Errorf("revoked keys: %v", got)
	}
	if got := page(domain.KeyQuery{Limit: 10, State: domain.KeyStateActive, Team: "risk"}); len(got) != 4 || slices.Contains(got, ids[3]) {
		t.Errorf("active keys of risk: %v", got)
	}
	if _, err := s.Keys(ctx, domain.KeyQuery{Limit: 2, After: "key_nope"}); !errors.Is(err, domain.KindInvalid) {
		t.Errorf("a page after an unknown key: %v", err)
	}
	if _, err := s.UpdateKey(ctx, ids[3], domain.KeyUpdate{RPM: &rpm}, "", entry); !errors.Is(err, domain.KindInvalid) {
		t.Errorf("updating a revoked key: %v", err)
	}
}

// TestPrincipalsAndAdminKeys checks users and teams as the keys and budgets
// name them, their audited budget changes under If-Match, and revoking an
// admin key.
func TestPrincipalsAndAdminKeys(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	ctx := context.Background()
	entry := domain.AuditEntry{Actor: domain.Actor{Kind: domain.ActorCLI, ID: "ops"}, Action: "team.update", Reason: "test"}
	for _, team := range []string{"risk", "ops", "risk"} {
		if _, _, err := s.CreateKey(ctx, postgres.NewKey{User: "u-" + team, Team: team}, entry); err != nil {
			t.Fatal(err)
		}
	}
	month := domain.Budget{Scope: domain.ScopeTeam, ScopeID: "sales", Period: domain.PeriodMonth, Limit: 9 * domain.MicrosPerUSD}
	p, err := s.ChangePrincipal(ctx, domain.ScopeTeam, "sales", domain.PrincipalChange{Budgets: []domain.Budget{month}}, "", entry)
	if err != nil || !slices.Equal(p.Budgets, []domain.Budget{month}) || p.Keys != 0 {
		t.Fatalf("a budget for a team without keys: %+v, %v", p, err)
	}
	teams, err := s.Principals(ctx, domain.PrincipalQuery{Scope: domain.ScopeTeam, Limit: 10})
	var names []string
	for _, x := range teams {
		names = append(names, x.ID)
	}
	if err != nil || !slices.Equal(names, []string{"ops", "risk", "sales"}) || teams[1].Keys != 2 || teams[1].ActiveKeys != 2 {
		t.Fatalf("teams: %+v, %v", teams, err)
	}
	if next, err := s.Principals(ctx, domain.PrincipalQuery{Scope: domain.ScopeTeam, After: "ops", Limit: 1}); err != nil || len(next) != 1 || next[0].ID != "risk" {
		t.Errorf("the page after ops: %+v, %v", next, err)
	}
	rolling := domain.Budget{Scope: domain.ScopeTeam, ScopeID: "sales", Period: domain.RollingPeriod(24 * time.Hour), Limit: domain.MicrosPerUSD, Model: "group:premium"}
	if _, err := s.ChangePrincipal(ctx, domain.ScopeTeam, "sales", domain.PrincipalChange{Budgets: []domain.Budget{rolling}}, "stale", entry); !errors.Is(err, domain.KindInvalid) {
		t.Errorf("a stale If-Match: %v", err)
	}
	month.Limit = 0
	p, err = s.ChangePrincipal(ctx, domain.ScopeTeam, "sales", domain.PrincipalChange{Budgets: []domain.Budget{rolling, month}}, domain.PrincipalVersion(p), entry)
	if err != nil || !slices.Equal(p.Budgets, []domain.Budget{rolling}) {
		t.Errorf("replacing the month by a rolling day: %+v, %v", p, err)
	}
	entries, err := s.Audit(ctx, domain.AuditQuery{Target: "team:sales", Limit: 10})
	if err != nil || len(entries) != 2 {
		t.Fatalf("the audit entries of team:sales: %+v, %v", entries, err)
	}
	if b, a := entries[0].Before.(*domain.Principal), entries[0].After.(*domain.Principal); len(b.Budgets) != 1 || b.Budgets[0].Period != domain.PeriodMonth ||
		!slices.Equal(a.Budgets, []domain.Budget{rolling}) {
		t.Errorf("the change's before %+v and after %+v", b, a)
	}

	// A name PostgreSQL's text cannot hold is the name's own 400 (as a
	// key's user or team is), not a database error about a value.
	for _, bad := range []string{"a\x00b", "\xff\xfe"} {
		_, err := s.ChangePrincipal(ctx, domain.ScopeUser, bad, domain.PrincipalChange{Budgets: []domain.Budget{
			{Scope: domain.ScopeUser, ScopeID: bad, Period: domain.PeriodDay, Limit: domain.MicrosPerUSD}}}, "", entry)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "user" || de.Code != "invalid_value" {
			t.Errorf("changing the user %q: %#v, want an invalid_value naming user", bad, err)
		}
	}

	admin, secret, err := s.CreateAdminKey(ctx, "ci", []domain.AdminScope{domain.AdminRead}, entry)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := s.RevokeAdminKey(ctx, admin.ID, entry)
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("RevokeAdminKey: %+v, %v", revoked, err)
	}
	if _, err := s.AdminKeyByHash(ctx, domain.HashKey(secret)); !errors.Is(err, domain.KindUnauthenticated) {
		t.Errorf("a revoked admin key still authenticates: %v", err)
	}
	if _, err := s.RevokeAdminKey(ctx, "adm_nope", entry); !errors.Is(err, domain.KindNotFound) {
		t.Errorf("revoking an unknown admin key: %v", err)
	}
	if list, err := s.AdminKeys(ctx); err != nil || len(list) != 1 || list[0].RevokedAt == nil {
		t.Errorf("AdminKeys: %+v, %v", list, err)
	}
}

// TestUsageReport checks the report's sums per group and day range, and
// that each settled call's trace ID is listed under its group.
func TestUsageReport(t *testing.T) {
	pool, _ := migrated(t)
	s := postgres.NewKeyStore(pool)
	l := postgres.NewLedger(pool, postgres.LedgerOptions{})
	ctx := context.Background()
	day1 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	calls := []struct {
		id, user, team, model string
		at                    time.Time
		cost                  domain.Micros
	}{
		{"req-1", "alice", "risk", "m1", day1, 100},
		{"req-2", "bob", "risk", "m2", day1.Add(time.Hour), 20},
		{"req-3", "carol", "ops", "m1", day1.AddDate(0, 0, 1), 3},
		{"req-4", "alice", "risk", "m1", day1.AddDate(0, 0, 5), 4000}, // after the report's range
	}
	var batch []ports.Settlement // the calls settled together, as the gateway's settler does
	for i, c := range calls {
		caller := domain.Caller{KeyID: "key_" + c.user, User: c.user, Team: c.team}
		if err := l.Reserve(ctx, domain.Reservation{ID: c.id, Amount: c.cost, At: c.at}); err != nil {
			t.Fatal(err)
		}
		s := ports.Settlement{ReservationID: c.id, Caller: caller, Model: c.model, Cost: c.cost,
			Usage: domain.Usage{PromptTokens: 10, CompletionTokens: 1}, At: c.at}
		if i%2 == 1 {
			batch = append(batch, s)
			continue
		}
		if err := l.Settle(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SettleAll(ctx, batch); err != nil {
		t.Fatal(err)
	}
	q := domain.UsageQuery{GroupBy: domain.GroupByTeam, From: day1, To: day1.AddDate(0, 0, 1), TraceIDs: true}
	lines, err := s.UsageReport(ctx, q)
	if err != nil || len(lines) != 2 {
		t.Fatalf("by team: %+v, %v", lines, err)
	}
	ops, risk := lines[0], lines[1]
	if ops.Group != "ops" || ops.Requests != 1 || ops.Cost != 3 || !slices.Equal(ops.TraceIDs, []string{domain.TraceID("req-3")}) {
		t.Errorf("ops: %+v", ops)
	}
	if risk.Group != "risk" || risk.Requests != 2 || risk.Cost != 120 || risk.PromptTokens != 20 ||
		!slices.Equal(risk.TraceIDs, []string{domain.TraceID("req-1"), domain.TraceID("req-2")}) || risk.TraceIDsTruncated {
		t.Errorf("risk: %+v", risk)
	}
	q.GroupBy, q.TraceIDs, q.Model = domain.GroupByDay, false, "m1"
	q.To = day1.AddDate(0, 0, 9)
	lines, err = s.UsageReport(ctx, q)
	if err != nil || len(lines) != 3 || lines[0].Group != "2026-03-02" || lines[0].Cost != 100 || lines[2].Group != "2026-03-07" || lines[0].TraceIDs != nil {
		t.Errorf("m1 by day: %+v, %v", lines, err)
	}
}
