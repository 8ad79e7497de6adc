package domain_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestLooksLikeJWT(t *testing.T) {
	for s, want := range map[string]bool{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln":   true,
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0":        false, // two segments
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln.x": false, // four
		"eyJhbGciOiJSUzI1NiJ9..c2ln":                  false, // an empty segment
		"eyJhbGciOiJSUzI1NiJ9.eyJz+dWIi.c2ln":         false, // standard base64
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIi.c2ln=":         false, // padding
		"abc.def.ghi":                                 false, // no eyJ
		"tg-dev-local-only-0000000000000000":          false, // a key
		"eyJ" + strings.Repeat("a", 17<<10) + ".b.c":  false, // too long
	} {
		if got := domain.LooksLikeJWT(s); got != want {
			t.Errorf("LooksLikeJWT(%.40q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseRoleScopes(t *testing.T) {
	m, err := domain.ParseRoleScopes(" tidygate-admin=write, tidygate-auditor = read ")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Scopes([]string{"x", "tidygate-auditor", "tidygate-admin", "tidygate-auditor"}); !slices.Equal(got, []domain.AdminScope{domain.AdminRead, domain.AdminWrite}) {
		t.Fatalf("scopes %v", got)
	}
	if got := m.Scopes([]string{"nobody"}); len(got) != 0 {
		t.Fatalf("an unmapped role granted %v", got)
	}
	if m, err := domain.ParseRoleScopes(""); err != nil || len(m) != 0 {
		t.Fatalf("empty: %v %v", m, err)
	}
	for _, bad := range []string{"admin", "=write", "admin=delete", "a=read,a=write", "a=read,"} {
		if _, err := domain.ParseRoleScopes(bad); err == nil {
			t.Errorf("ParseRoleScopes(%q) accepted", bad)
		}
	}
}

func TestSignedInCaller(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	budgets := []domain.Budget{
		{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodDay, Limit: 5},
		{Scope: domain.ScopeTeam, ScopeID: "ops", Period: domain.PeriodDay, Limit: 6},
		{Scope: domain.ScopeUser, ScopeID: "a@x", Period: domain.PeriodMonth, Limit: 7},
		{Scope: domain.ScopeKey, ScopeID: "key_1", Period: domain.PeriodMonth, Limit: 8},
	}
	st := domain.Standing{Budgets: budgets, UserLimits: domain.Limits{RPM: 5, MaxConcurrent: 2}, TeamLimits: domain.Limits{TPM: 900}}
	c, err := domain.SignedInCaller(domain.Identity{Subject: "s", User: "a@x", Team: "risk", Expiry: exp}, st, domain.SignedInLimits{RPM: 3, TPM: 4})
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID != "oidc:a@x" || c.User != "a@x" || c.Team != "risk" || c.RPM != 3 || c.TPM != 4 || c.MaxConcurrent != 0 ||
		!c.KeyExpiresAt.Equal(exp) || len(c.AllowedModels) != 0 || !slices.Equal(c.Budgets, []domain.Budget{budgets[0], budgets[2]}) {
		t.Fatalf("caller %+v", c)
	}
	// The user's and the team's limits count as a key caller's do.
	want := []domain.RateLimit{{Scope: domain.LimitKey, ID: "oidc:a@x", RPM: 3, TPM: 4},
		{Scope: domain.LimitUser, ID: "a@x", RPM: 5}, {Scope: domain.LimitTeam, ID: "risk", TPM: 900}}
	if got := c.RateLimits(); !slices.Equal(got, want) || c.UserLimits.MaxConcurrent != 2 {
		t.Fatalf("rate limits %+v (user's calls in flight %d), want %+v and 2", got, c.UserLimits.MaxConcurrent, want)
	}
	if _, err := domain.SignedInCaller(domain.Identity{Subject: "s", Team: "risk"}, domain.Standing{}, domain.SignedInLimits{}); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("no user: %v", err)
	}
	if _, err := domain.SignedInCaller(domain.Identity{Subject: "s", User: "a@x"}, domain.Standing{}, domain.SignedInLimits{}); domain.KindOf(err) != domain.KindForbidden {
		t.Fatalf("no team: %v", err)
	}
}
