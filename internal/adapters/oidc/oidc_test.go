package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/oidc"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/oidctest"
)

const audience = "tidygate"

// newIssuer starts a fake provider and an Issuer discovered against it.
func newIssuer(t *testing.T) (*oidctest.Issuer, *oidc.Issuer) {
	t.Helper()
	fake := oidctest.New(t)
	iss := oidc.NewIssuer(oidc.Options{
		IssuerURL: fake.URL, Audience: audience,
		Claims: oidc.Claims{User: "email", Team: "groups", Role: "realm_access.roles",
			TeamPattern: regexp.MustCompile(`^tidygate-team-(.+)$`)},
		ClientID: fake.ClientID, ClientSecret: fake.ClientSecret, RedirectURL: "https://console.example/console/callback",
	})
	if err := iss.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	return fake, iss
}

func valid(extra map[string]any) map[string]any {
	c := map[string]any{"sub": "u-123", "aud": audience, "email": "alice@example.com",
		"groups":       []any{"staff", "tidygate-team-risk", "tidygate-team-ops"},
		"realm_access": map[string]any{"roles": []any{"tidygate-admin", "other"}}}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func TestVerifyTokenReadsTheClaims(t *testing.T) {
	fake, iss := newIssuer(t)
	id, err := iss.VerifyToken(context.Background(), fake.Token(valid(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u-123" || id.User != "alice@example.com" || id.Team != "risk" ||
		!slices.Equal(id.Roles, []string{"tidygate-admin", "other"}) || time.Until(id.Expiry) < 50*time.Minute {
		t.Fatalf("identity = %+v", id)
	}
	// An audience array that contains ours is accepted too.
	if _, err := iss.VerifyToken(context.Background(), fake.Token(valid(map[string]any{"aud": []any{"other", audience}}))); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyTokenRefuses(t *testing.T) {
	fake, iss := newIssuer(t)
	kid, _ := fake.CurrentKey()
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := fake.Token(valid(nil))
	cases := map[string]struct {
		token, code string
	}{
		"expired":          {fake.Token(valid(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})), "expired_token"},
		"wrong audience":   {fake.Token(valid(map[string]any{"aud": "someone-else"})), "invalid_token"},
		"wrong issuer":     {fake.Token(valid(map[string]any{"iss": "https://evil.example"})), "invalid_token"},
		"unknown key id":   {fake.SignWith("nobody-knows", stranger, valid(nil)), "invalid_token"},
		"forged (our kid)": {fake.SignWith(kid, stranger, valid(nil)), "invalid_token"},
		"altered payload":  {good[:len(good)-4] + "AAAA", "invalid_token"},
		"not a JWT":        {"eyJhbGciOi.x.y", "invalid_token"},
		"no subject":       {fake.Token(valid(map[string]any{"sub": ""})), "invalid_token"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := iss.VerifyToken(context.Background(), c.token)
			de, ok := errors.AsType[*domain.Error](err)
			if !ok || de.Kind != domain.KindUnauthenticated || de.Code != c.code {
				t.Fatalf("error = %v, want %s %s", err, domain.KindUnauthenticated, c.code)
			}
		})
	}
}

// TestKeyRotation: a token signed with a key published after the Issuer
// fetched the JWKS is accepted (the unknown key ID makes it fetch again),
// and once the provider retires the old key, tokens still signed with it
// are refused.
func TestKeyRotation(t *testing.T) {
	fake, iss := newIssuer(t)
	ctx := context.Background()
	oldKid, oldKey := fake.CurrentKey()
	if _, err := iss.VerifyToken(ctx, fake.Token(valid(nil))); err != nil {
		t.Fatal(err)
	}
	hits := fake.JWKSHits()
	fake.Rotate()
	if _, err := iss.VerifyToken(ctx, fake.Token(valid(nil))); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	if fake.JWKSHits() != hits+1 {
		t.Fatalf("the JWKS was fetched %d times after the rotation, want once", fake.JWKSHits()-hits)
	}
	// The old key is still published, and already known.
	if _, err := iss.VerifyToken(ctx, fake.SignWith(oldKid, oldKey, valid(nil))); err != nil {
		t.Fatalf("a token of the old key while it is published: %v", err)
	}
	fake.Retire()
	fake.Rotate()
	if _, err := iss.VerifyToken(ctx, fake.Token(valid(nil))); err != nil {
		t.Fatalf("a token of the third key: %v", err)
	}
	// go-oidc swaps in the refetched keys just after the fetch's waiters
	// resume, so the retired key may pass once more in that instant.
	for i := 0; ; i++ {
		if _, err := iss.VerifyToken(ctx, fake.SignWith(oldKid, oldKey, valid(nil))); err != nil {
			break
		}
		if i == 100 {
			t.Fatal("a token of a retired key is still accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTeamPattern(t *testing.T) {
	fake, iss := newIssuer(t)
	for _, c := range []struct {
		groups any
		team   string
	}{
		{[]any{"staff"}, ""},
		{"tidygate-team-ops", "ops"},
		{[]any{42, "tidygate-team-", "tidygate-team-blue"}, "blue"},
		{nil, ""},
	} {
		id, err := iss.VerifyToken(context.Background(), fake.Token(valid(map[string]any{"groups": c.groups})))
		if err != nil {
			t.Fatal(err)
		}
		if id.Team != c.team {
			t.Errorf("groups %v: team %q, want %q", c.groups, id.Team, c.team)
		}
	}
	// Without a capturing group the whole value is the team.
	whole := oidc.NewIssuer(oidc.Options{IssuerURL: fake.URL, Audience: audience,
		Claims: oidc.Claims{User: "email", Team: "groups", TeamPattern: regexp.MustCompile(`^tidygate-team-`)}})
	if err := whole.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	id, err := whole.VerifyToken(context.Background(), fake.Token(valid(nil)))
	if err != nil || id.Team != "tidygate-team-risk" {
		t.Fatalf("team %q, %v", id.Team, err)
	}
}

func TestBeforeDiscovery(t *testing.T) {
	iss := oidc.NewIssuer(oidc.Options{IssuerURL: "http://127.0.0.1:1", Audience: audience})
	if err := iss.Discover(context.Background()); err == nil {
		t.Fatal("discovery of a closed port succeeded")
	}
	_, err := iss.VerifyToken(context.Background(), "eyJ.a.b")
	if domain.KindOf(err) != domain.KindUnavailable || iss.Ready() {
		t.Fatalf("before discovery: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	iss.Run(ctx) // returns at once when ctx has ended
}

func TestDiscoveryFindsTheIssuerLate(t *testing.T) {
	fake := oidctest.New(t)
	iss := oidc.NewIssuer(oidc.Options{IssuerURL: fake.URL + "/", Audience: audience})
	if err := iss.Discover(context.Background()); err == nil {
		t.Fatal("a discovery document naming another issuer was accepted")
	}
}

func TestSignIn(t *testing.T) {
	fake, iss := newIssuer(t)
	fake.Claims = map[string]any{"sub": "u-9", "email": "bob@example.com", "groups": []any{"tidygate-team-ops"},
		"realm_access": map[string]any{"roles": []any{"tidygate-auditor"}}}
	ctx := context.Background()
	authURL, s, err := iss.StartSignIn()
	if err != nil {
		t.Fatal(err)
	}
	state, code := fake.Authorize(authURL)
	if state != s.State || s.Nonce == "" || s.Verifier == "" {
		t.Fatalf("sign-in %+v, state %q", s, state)
	}
	id, err := iss.FinishSignIn(ctx, s, state, code)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u-9" || id.User != "bob@example.com" || id.Team != "ops" || !slices.Equal(id.Roles, []string{"tidygate-auditor"}) {
		t.Fatalf("identity %+v", id)
	}

	// A state from another browser, a code used twice, a wrong verifier,
	// and an ID token for another nonce are refused.
	authURL, s, _ = iss.StartSignIn()
	state, code = fake.Authorize(authURL)
	if _, err := iss.FinishSignIn(ctx, s, state+"x", code); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("wrong state: %v", err)
	}
	bad := s
	bad.Verifier = "wrong-verifier-wrong-verifier-wrong-verifier-0000"
	if _, err := iss.FinishSignIn(ctx, bad, state, code); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("wrong PKCE verifier: %v", err)
	}
	authURL, s, _ = iss.StartSignIn()
	state, code = fake.Authorize(authURL)
	other := s
	other.Nonce = "another-sign-in"
	if _, err := iss.FinishSignIn(ctx, other, state, code); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("wrong nonce: %v", err)
	}
	if _, err := iss.FinishSignIn(ctx, s, state, code); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("a code used twice: %v", err)
	}
}

func TestSignInNeedsAClient(t *testing.T) {
	fake := oidctest.New(t)
	iss := oidc.NewIssuer(oidc.Options{IssuerURL: fake.URL, Audience: audience})
	if err := iss.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := iss.StartSignIn(); domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("StartSignIn without a client: %v", err)
	}
}
