package gateway_test

import (
	"context"
	"errors"
	"fmt"
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

// fakeBook holds budgets of every scope and limits by user and team name,
// and answers with those of the user and team asked for.
type fakeBook struct {
	budgets []domain.Budget
	limits  map[string]domain.Limits // by "user:NAME" and "team:NAME"
}

func (b fakeBook) StandingOf(_ context.Context, user, team string) (domain.Standing, error) {
	st := domain.Standing{UserLimits: b.limits["user:"+user], TeamLimits: b.limits["team:"+team]}
	for _, x := range b.budgets {
		if (x.Scope == domain.ScopeUser && x.ScopeID == user) || (x.Scope == domain.ScopeTeam && x.ScopeID == team) {
			st.Budgets = append(st.Budgets, x)
		}
	}
	return st, nil
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
		deps.Tokens, deps.Standings = tokens, book
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
	svc := signInService(t, tokens, fakeBook{budgets: []domain.Budget{team, user, other},
		limits: map[string]domain.Limits{"user:alice@example.com": {RPM: 4, MaxConcurrent: 2}, "team:risk": {TPM: 9000}, "team:ops": {RPM: 1}}})
	ctx := context.Background()

	c, err := svc.Authenticate(ctx, jwt, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyID != "oidc:alice@example.com" || c.User != "alice@example.com" || c.Team != "risk" || c.RPM != 7 || c.TPM != 700 ||
		!c.KeyExpiresAt.Equal(exp) || !slices.Equal(c.Budgets, []domain.Budget{team, user}) ||
		c.UserLimits != (domain.Limits{RPM: 4, MaxConcurrent: 2}) || c.TeamLimits != (domain.Limits{TPM: 9000}) {
		t.Fatalf("caller %+v", c)
	}
	// Keys work as before beside tokens.
	if c, err := svc.Authenticate(ctx, "tg-the-test-key-0123456789", ""); err != nil || c.User != "keyed" {
		t.Fatalf("key: %+v %v", c, err)
	}
	// A token the verifier refuses, and one naming no team.
	if _, err := svc.Authenticate(ctx, jwt+"x", ""); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("a bad token: %v", err)
	}
	tokens.id.Team = ""
	if _, err := svc.Authenticate(ctx, jwt, ""); domain.KindOf(err) != domain.KindForbidden {
		t.Fatalf("a token without a team: %v", err)
	}
}

func TestTokensRefusedWithoutSignIn(t *testing.T) {
	svc := signInService(t, nil, fakeBook{})
	_, err := svc.Authenticate(context.Background(), jwt, "")
	if de, ok := errors.AsType[*domain.Error](err); !ok || de.Kind != domain.KindUnauthenticated || de.Code != "sign_in_disabled" {
		t.Fatalf("a token without sign-in: %v", err)
	}
}

// TestASignedInUsersLimitsHold: a user limited to 2 requests per minute
// who signs in with a token gets exactly 2 calls, then a 429 naming the
// user, as a key of theirs would; their team's limits apply too.
func TestASignedInUsersLimitsHold(t *testing.T) {
	tokens := &fakeTokens{token: jwt, id: domain.Identity{Subject: "s-1", User: "alice@example.com", Team: "risk", Expiry: time.Now().Add(time.Hour)}}
	svc := signInService(t, tokens, fakeBook{limits: map[string]domain.Limits{"user:alice@example.com": {RPM: 2}, "team:ops": {RPM: 1}}})
	ctx := context.Background()
	call := func(id string) error {
		c, err := svc.Authenticate(ctx, jwt, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Chat(ctx, gateway.Call{RequestID: id, Caller: c, AuditReason: "limits of a signed-in user"}, chat("main"))
		return err
	}
	for i := range 2 {
		if err := call(fmt.Sprint("u", i)); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	checkRefusedBy(t, call("u2"), "rate_limit_exceeded", `user "alice@example.com"`)

	tokens.id = domain.Identity{Subject: "s-2", User: "bob@example.com", Team: "ops", Expiry: time.Now().Add(time.Hour)}
	if err := call("b0"); err != nil {
		t.Fatal(err)
	}
	checkRefusedBy(t, call("b1"), "rate_limit_exceeded", `team "ops"`)
}
