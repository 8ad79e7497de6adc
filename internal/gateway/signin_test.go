package gateway_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// fakeTokens accepts the one token it knows.
type fakeTokens struct {
	token string
	id    domain.Identity
}

func (f fakeTokens) VerifyToken(_ context.Context, token string) (domain.Identity, error) {
	if token != f.token {
		return domain.Identity{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_token", Message: "invalid token"}
	}
	return f.id, nil
}

// fakeBook holds budgets of every scope and answers with those of the
// user and team asked for.
type fakeBook []domain.Budget

func (b fakeBook) BudgetsOf(_ context.Context, user, team string) ([]domain.Budget, error) {
	var out []domain.Budget
	for _, x := range b {
		if (x.Scope == domain.ScopeUser && x.ScopeID == user) || (x.Scope == domain.ScopeTeam && x.ScopeID == team) {
			out = append(out, x)
		}
	}
	return out, nil
}

const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"

func signInService(t *testing.T, tokens *fakeTokens, book fakeBook) *gateway.Service {
	t.Helper()
	cat, err := domain.NewCatalogue([]domain.Model{{Name: "main", Type: domain.ModelChat, Provider: "p", MaxOutputTokens: 10}})
	if err != nil {
		t.Fatal(err)
	}
	keys := memory.NewKeyStore()
	keys.Add("tg-the-test-key-0123456789", domain.Caller{User: "keyed", Team: "risk"})
	deps := gateway.Deps{Catalogue: cat, Providers: map[string]ports.Provider{"p": &scriptedProvider{}}, Keys: keys, Ledger: memory.NewLedger(), CallLog: memory.NewCallLog(), Limiter: newLimiterSpy(t)}
	if tokens != nil {
		deps.Tokens, deps.Budgets = tokens, book
	}
	svc, err := gateway.NewService(deps, gateway.Options{SignedInLimits: domain.SignedInLimits{RPM: 7, TPM: 700}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestAuthenticateWithAToken(t *testing.T) {
	exp := time.Now().Add(time.Hour).UTC()
	team := domain.Budget{Scope: domain.ScopeTeam, ScopeID: "risk", Period: domain.PeriodDay, Limit: 5_000_000}
	user := domain.Budget{Scope: domain.ScopeUser, ScopeID: "alice@example.com", Period: domain.PeriodMonth, Limit: 9}
	other := domain.Budget{Scope: domain.ScopeTeam, ScopeID: "ops", Period: domain.PeriodDay, Limit: 1}
	tokens := &fakeTokens{token: jwt, id: domain.Identity{Subject: "s-1", User: "alice@example.com", Team: "risk", Expiry: exp}}
	svc := signInService(t, tokens, fakeBook{team, user, other})
	ctx := context.Background()

	c, err := svc.Authenticate(ctx, jwt)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID != "oidc:alice@example.com" || c.User != "alice@example.com" || c.Team != "risk" || c.RPM != 7 || c.TPM != 700 ||
		!c.KeyExpiresAt.Equal(exp) || !slices.Equal(c.Budgets, []domain.Budget{team, user}) {
		t.Fatalf("caller %+v", c)
	}
	// Keys work as before beside tokens.
	if c, err := svc.Authenticate(ctx, "tg-the-test-key-0123456789"); err != nil || c.User != "keyed" {
		t.Fatalf("key: %+v %v", c, err)
	}
	// A token the verifier refuses, and one naming no team.
	if _, err := svc.Authenticate(ctx, jwt+"x"); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("a bad token: %v", err)
	}
	tokens.id.Team = ""
	if _, err := svc.Authenticate(ctx, jwt); domain.KindOf(err) != domain.KindForbidden {
		t.Fatalf("a token without a team: %v", err)
	}
}

func TestTokensRefusedWithoutSignIn(t *testing.T) {
	svc := signInService(t, nil, nil)
	_, err := svc.Authenticate(context.Background(), jwt)
	if de, ok := errors.AsType[*domain.Error](err); !ok || de.Kind != domain.KindUnauthenticated || de.Code != "sign_in_disabled" {
		t.Fatalf("a token without sign-in: %v", err)
	}
}
