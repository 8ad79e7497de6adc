package console_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

// Principals lists the users or teams a key or a stored principal names,
// by ID, as the PostgreSQL store does: with their budgets (a stored
// principal's, else those its keys carry) and how many keys name them.
func (s *store) Principals(ctx context.Context, q domain.PrincipalQuery) ([]domain.Principal, error) {
	s.mu.Lock()
	byID := map[string]*domain.Principal{}
	named := func(id string) *domain.Principal {
		if byID[id] == nil {
			byID[id] = &domain.Principal{Scope: q.Scope, ID: id}
		}
		return byID[id]
	}
	for _, p := range s.principals {
		if p.Scope == q.Scope {
			p := p
			byID[p.ID] = &p
		}
	}
	stored := map[string]bool{}
	for id := range byID {
		stored[id] = true
	}
	for _, k := range s.keys {
		id := k.Caller.User
		if q.Scope == domain.ScopeTeam {
			id = k.Caller.Team
		}
		p := named(id)
		p.Keys++
		if k.RevokedAt == nil {
			p.ActiveKeys++
		}
		for _, b := range k.Caller.Budgets {
			if !stored[id] && b.Scope == q.Scope && b.ScopeID == id && !slices.Contains(p.Budgets, b) {
				p.Budgets = append(p.Budgets, b)
			}
		}
	}
	s.mu.Unlock()
	var out []domain.Principal
	for _, p := range byID {
		if p.ID > q.After {
			out = append(out, *p)
		}
	}
	slices.SortFunc(out, func(a, b domain.Principal) int { return strings.Compare(a.ID, b.ID) })
	return out[:min(len(out), q.Limit)], nil
}

// TestGroupsFromPrincipals checks that the teams page lists the teams the
// service knows, one that only a budget names included, with their users
// as their keys name them.
func TestGroupsFromPrincipals(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	b.get("/console/keys")
	b.post("/console/keys", createForm("onboarding alice"))
	f.store.mu.Lock()
	f.store.principals = map[string]domain.Principal{"team:audit": {Scope: domain.ScopeTeam, ID: "audit",
		Budgets: []domain.Budget{{Scope: domain.ScopeTeam, ScopeID: "audit", Period: domain.PeriodMonth, Limit: 40_000_000}}}}
	f.store.mu.Unlock()
	p := b.get("/console/teams")
	checkAccessible(t, "/console/teams", p.body)
	for _, want := range []string{
		`<tr><th scope="row"><a href="/console/teams/audit">audit</a></th><td></td><td><a href="/console/keys?team=audit">0</a></td><td>0</td>`,
		"team audit: $40.000000 per month",
		`<tr><th scope="row"><a href="/console/teams/risk">risk</a></th><td>alice</td><td><a href="/console/keys?team=risk">1</a></td><td>1</td>`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the teams page lacks %s:\n%s", want, p.body)
		}
	}
	if strings.Contains(p.body, "More teams") {
		t.Error("a link to more teams after the last")
	}

	// A hundred teams a page, then a link to the next.
	f.store.mu.Lock()
	for i := range 100 {
		id := fmt.Sprintf("t%03d", i)
		f.store.principals["team:"+id] = domain.Principal{Scope: domain.ScopeTeam, ID: id}
	}
	f.store.mu.Unlock()
	p = b.get("/console/teams")
	if n := strings.Count(p.body, `<tr><th scope="row">`); n != 100 || !strings.Contains(p.body, `<a href="/console/teams?after=t097">More teams</a>`) {
		t.Fatalf("the first page has %d teams:\n%s", n, p.body)
	}
	p = b.get("/console/teams?after=t097")
	if !strings.Contains(p.body, `href="/console/teams/t098"`) || !strings.Contains(p.body, `href="/console/teams/t099"`) ||
		strings.Contains(p.body, `href="/console/teams/t097"`) || strings.Contains(p.body, "More teams") {
		t.Errorf("the second page:\n%s", p.body)
	}
}
