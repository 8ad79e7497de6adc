//go:build integration

package integration

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/oidctest"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// signOnEnv is tidygate's environment with single sign-on through fake.
func signOnEnv(t *testing.T, dsn string, fake *oidctest.Issuer) []string {
	return append(baseEnv(t, dsn), "OIDC_ISSUER_URL="+fake.URL, "OIDC_AUDIENCE=tidygate",
		"OIDC_ADMIN_ROLES=tidygate-admin=write,tidygate-auditor=read", "OIDC_TEAM_PATTERN=^tidygate-team-(.+)$")
}

// person returns a token of fake for a person with these groups and roles.
func person(fake *oidctest.Issuer, sub, email string, groups, roles []any) string {
	return fake.Token(map[string]any{"sub": sub, "aud": "tidygate", "email": email, "groups": groups, "roles": roles})
}

// TestSingleSignOnAdmins: administrators sign in with the identity
// provider's tokens; their roles decide their scopes, their changes are
// audited under their subject, and bad tokens are refused and throttled.
func TestSingleSignOnAdmins(t *testing.T) {
	fake := oidctest.New(t)
	dsn := pgtest.New(t)
	s := start(t, signOnEnv(t, dsn, fake))
	c := newAdminClient(t, s.URL)
	admin := person(fake, "sub-admin-1", "ann@example.com", nil, []any{"tidygate-admin"})
	auditor := person(fake, "sub-auditor-2", "aud@example.com", nil, []any{"staff", "tidygate-auditor"})
	nobody := person(fake, "sub-staff-3", "sam@example.com", nil, []any{"staff"})

	waitDiscovered(t, func() int { st, _, _ := c.call("GET", "/keys", auditor, "", ""); return st })
	if st, e, _ := c.call("POST", "/keys", auditor, "onboarding", `{"user":"alice","team":"risk"}`); st != 403 {
		t.Errorf("an auditor creates a key: %d %v", st, e)
	}
	if st, e, _ := c.call("GET", "/keys", nobody, "", ""); st != 403 {
		t.Errorf("a subject without a mapped role lists keys: %d %v", st, e)
	}
	st, made, _ := c.call("POST", "/keys", admin, "onboarding alice", `{"user":"alice","team":"risk"}`)
	if st != 201 {
		t.Fatalf("an admin creates a key: %d %v", st, made)
	}
	st, page, _ := c.call("GET", "/audit?limit=1", auditor, "", "")
	if st != 200 {
		t.Fatalf("audit: %d %v", st, page)
	}
	entry := page["data"].([]any)[0].(map[string]any)
	actor := entry["actor"].(map[string]any)
	if actor["kind"] != "oidc" || actor["id"] != "sub-admin-1" || entry["action"] != "key.create" {
		t.Fatalf("the audit entry names %v for %v, want oidc sub-admin-1 for key.create", actor, entry["action"])
	}

	_, oldKey := fake.CurrentKey()
	fake.Rotate()
	if st, e, _ := c.call("GET", "/keys", person(fake, "sub-auditor-2", "aud@example.com", nil, []any{"tidygate-auditor"}), "", ""); st != 200 {
		t.Fatalf("a token of the provider's new key: %d %v", st, e)
	}
	refused := []string{
		fake.Token(map[string]any{"sub": "x", "aud": "tidygate", "roles": []any{"tidygate-admin"}, "exp": time.Now().Add(-time.Minute).Unix()}),
		fake.Token(map[string]any{"sub": "x", "aud": "another-app", "roles": []any{"tidygate-admin"}}),
		fake.Token(map[string]any{"sub": "x", "aud": "tidygate", "iss": "https://elsewhere.example", "roles": []any{"tidygate-admin"}}),
		fake.SignWith("unknown-kid", oldKey, map[string]any{"sub": "x", "aud": "tidygate", "roles": []any{"tidygate-admin"}}),
	}
	for i, tok := range refused {
		if st, e, _ := c.call("GET", "/keys", tok, "", ""); st != 401 {
			t.Errorf("bad token %d: %d %v, want 401", i, st, e)
		}
	}
	// Failed authentications with tokens count towards the throttle: ten
	// per window (those above among them), the next is refused, and after
	// it even a good token.
	throttleWithin11(t, func(int) (int, map[string]any, http.Header) { return c.call("GET", "/keys", refused[0], "", "") })
	if st, e, h := c.call("GET", "/keys", admin, "", ""); st != 429 || h.Get("Retry-After") == "" {
		t.Errorf("a good token after the refused failure: %d %v, want 429 with Retry-After", st, e)
	}
}

// TestSingleSignOnCallers: a caller's token is accepted on the model
// endpoints of every dialect in place of a key; the user and team come
// from its claims, and the team's budget applies.
func TestSingleSignOnCallers(t *testing.T) {
	fake := oidctest.New(t)
	dsn := pgtest.New(t)
	env := signOnEnv(t, dsn, fake)
	s := start(t, env)
	// The team "broke" has a budget no call fits in; "ops" has none.
	createKey(t, env, "--user", "keeper", "--team", "broke", "--budget", "team:day=0.000001", "--reason", "a tiny team budget")
	bob := person(fake, "sub-bob", "bob@example.com", []any{"staff", "tidygate-team-ops"}, nil)
	poor := person(fake, "sub-pat", "pat@example.com", []any{"tidygate-team-broke"}, nil)
	teamless := person(fake, "sub-tim", "tim@example.com", []any{"staff"}, nil)

	openai := func(tok, path, body string) (*reply, []byte) {
		return s.do(http.MethodPost, path, body, "Authorization", "Bearer "+tok)
	}
	anthropic := func(tok string) (*reply, []byte) {
		return s.do(http.MethodPost, "/v1/messages", `{"model":"mock-chat","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			"Authorization", "", "x-api-key", tok, "anthropic-version", "2023-06-01")
	}
	waitDiscovered(t, func() int { r, _ := openai(bob, "/v1/chat/completions", chatBody); return r.StatusCode })
	if r, b := openai(bob, "/v1/responses", `{"model":"mock-chat","input":"hi","store":false}`); r.StatusCode != 200 {
		t.Errorf("Responses API with a token: %d %s", r.StatusCode, b)
	}
	if r, b := anthropic(bob); r.StatusCode != 200 {
		t.Errorf("Messages API with a token in x-api-key: %d %s", r.StatusCode, b)
	}
	var usage struct{ Data []map[string]any }
	if r, b := s.do(http.MethodGet, "/v1/usage", "", "Authorization", "Bearer "+bob); r.StatusCode != 200 || json.Unmarshal(b, &usage) != nil {
		t.Errorf("usage with a token: %d %s", r.StatusCode, b)
	}
	var calls int
	var team string
	queryRow(t, dsn, `SELECT coalesce(sum(requests), 0)::int, coalesce(max(team_id), '') FROM tidygate_usage
		WHERE key_id = 'oidc:bob@example.com' AND user_id = 'bob@example.com'`, &calls, &team)
	if calls != 3 || team != "ops" {
		t.Errorf("bob's usage rows: %d calls of team %q, want 3 of ops", calls, team)
	}

	// The team's budget applies, in each dialect's shape.
	if r, b := openai(poor, "/v1/chat/completions", chatBody); r.StatusCode != 429 || !strings.Contains(string(b), "budget_exceeded") {
		t.Errorf("a call over the team's budget: %d %s, want 429 budget_exceeded", r.StatusCode, b)
	}
	if r, b := anthropic(poor); r.StatusCode != 429 || !strings.Contains(string(b), `"type":"error"`) {
		t.Errorf("a Messages call over the team's budget: %d %s, want 429 in Anthropic's shape", r.StatusCode, b)
	}

	// No team: 403 with a message that says why, in each dialect's shape.
	if r, b := openai(teamless, "/v1/chat/completions", chatBody); r.StatusCode != 403 || !strings.Contains(string(b), `"code":"no_team"`) ||
		!strings.Contains(string(b), "team pattern") {
		t.Errorf("a token without a team: %d %s, want 403 no_team", r.StatusCode, b)
	}
	if r, b := anthropic(teamless); r.StatusCode != 403 || !strings.Contains(string(b), `"permission_error"`) || !strings.Contains(string(b), `"type":"error"`) {
		t.Errorf("a Messages call without a team: %d %s, want 403 in Anthropic's shape", r.StatusCode, b)
	}
	// A forged token and an expired one are 401; keys still work.
	_, stranger := fake.CurrentKey()
	fake.Rotate()
	forged := fake.SignWith("kid-of-nobody", stranger, map[string]any{"sub": "x", "aud": "tidygate", "email": "x@example.com", "groups": []any{"tidygate-team-ops"}})
	expired := fake.Token(map[string]any{"sub": "x", "aud": "tidygate", "email": "x@example.com", "groups": []any{"tidygate-team-ops"}, "exp": time.Now().Add(-time.Hour).Unix()})
	for name, tok := range map[string]string{"forged": forged, "expired": expired} {
		if r, b := openai(tok, "/v1/chat/completions", chatBody); r.StatusCode != 401 {
			t.Errorf("a %s token: %d %s, want 401", name, r.StatusCode, b)
		}
	}
	if r, b := s.do(http.MethodPost, "/v1/chat/completions", chatBody); r.StatusCode != 200 {
		t.Errorf("the dev key beside sign-on: %d %s", r.StatusCode, b)
	}
}

// waitDiscovered polls until the service has discovered the fake provider:
// until then tokens get 503.
func waitDiscovered(t *testing.T, status func() int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := status()
		if st != http.StatusServiceUnavailable {
			if st != http.StatusOK {
				t.Fatalf("the first call with a token answered %d, want 200", st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the identity provider was not discovered within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
