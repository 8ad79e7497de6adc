//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/oidctest"
	"github.com/tidygate/tidygate/internal/pgtest"
	"github.com/tidygate/tidygate/internal/redistest"
)

// dialectCall sends one call of a dialect (chat completions, Anthropic
// Messages with x-api-key, Responses) with the credential cred.
func dialectCall(s *service, dialect, cred string) (*reply, []byte) {
	switch dialect {
	case "messages":
		return s.do(http.MethodPost, "/v1/messages", `{"model":"mock-chat","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			"Authorization", "", "x-api-key", cred, "anthropic-version", "2023-06-01")
	case "responses":
		return s.do(http.MethodPost, "/v1/responses", `{"model":"mock-chat","input":"hi","store":false}`, "Authorization", "Bearer "+cred)
	}
	return s.do(http.MethodPost, "/v1/chat/completions", chatBody, "Authorization", "Bearer "+cred)
}

// checkDialectShape checks that body is a refusal in dialect's error
// shape containing want.
func checkDialectShape(t *testing.T, dialect string, status int, header http.Header, body []byte, want string) {
	t.Helper()
	b := string(body)
	shaped := strings.Contains(b, `"error":{`) && strings.Contains(b, `"code":`)
	if dialect == "messages" {
		shaped = strings.Contains(b, `"type":"error"`) && strings.Contains(b, `"rate_limit_error"`)
	}
	if status != http.StatusTooManyRequests || header.Get("Retry-After") == "" || !shaped || !strings.Contains(b, want) {
		t.Errorf("%s: %d %s (Retry-After %q), want 429 in the dialect's shape with Retry-After, saying %s",
			dialect, status, b, header.Get("Retry-After"), want)
	}
}

// Two replicas share one count of an address's failed authentications
// through Redis: AUTH_FAILURE_LIMIT failures spread over both get 401,
// then every request from the address is 429 with Retry-After on both, in
// each dialect's shape, a valid key's too; a success between the
// failures gives no more.
func TestFailedAuthenticationsThrottledAcrossReplicas(t *testing.T) {
	dsn, redisURL := pgtest.New(t), redistest.Start(t).URL
	var procs []*service
	var env []string
	for range 2 {
		e := append(baseEnv(t, dsn), "REDIS_URL="+redisURL, "RATE_LIMIT_WINDOW="+window.String(), "REPLICAS=2", "AUTH_FAILURE_LIMIT=5")
		procs = append(procs, start(t, e))
		env = e
	}
	key := createKey(t, env, "--user", "honest", "--team", "throttle")
	inOneWindow()
	dialects := []string{"chat", "messages", "responses"}
	for i := range 5 {
		s := procs[i%2]
		if r, b := dialectCall(s, dialects[i%3], "tg-a-wrong-guess-0000000000000000"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s, want 401", i+1, r.StatusCode, b)
		}
		if r, b := dialectCall(s, "chat", key); r.StatusCode != http.StatusOK {
			t.Fatalf("the valid key after failure %d: %d %s", i+1, r.StatusCode, b)
		}
	}
	// The sixth failure, on either replica, is one too many; from then on
	// the address is refused before its key is looked at.
	for i, s := range procs {
		r, b := dialectCall(s, dialects[i], "tg-a-wrong-guess-0000000000000000")
		checkDialectShape(t, dialects[i], r.StatusCode, r.Header, b, "too many failed authentications")
		for _, d := range dialects {
			r, b := dialectCall(s, d, key)
			checkDialectShape(t, d, r.StatusCode, r.Header, b, "too many failed authentications")
		}
	}
}

// TestSingleSignOnCallerLimits: a user limited to 3 requests per window
// (set for their keys) gets exactly 3 calls between their key and their
// token, then a 429 naming the user for the token in each dialect's
// shape: the token's calls and the key's share the user's count.
func TestSingleSignOnCallerLimits(t *testing.T) {
	fake := oidctest.New(t)
	env := append(signOnEnv(t, pgtest.New(t), fake), "RATE_LIMIT_WINDOW="+window.String())
	s := start(t, env)
	key := createKey(t, env, "--user", "lim@example.com", "--team", "ops", "--user-rpm", "3")
	tok := person(fake, "sub-lim", "lim@example.com", []any{"tidygate-team-ops"}, nil)
	// Discovery takes a call of its own: wait for it, then start afresh
	// in a new window.
	waitDiscovered(t, func() int {
		r, _ := s.do(http.MethodGet, "/v1/models", "", "Authorization", "Bearer "+tok)
		return r.StatusCode
	})
	inOneWindow()
	dialects := []string{"chat", "messages", "responses"}
	if r, b := dialectCall(s, "chat", key); r.StatusCode != http.StatusOK {
		t.Fatalf("the user's key: %d %s", r.StatusCode, b)
	}
	for _, d := range dialects[:2] {
		if r, b := dialectCall(s, d, tok); r.StatusCode != http.StatusOK {
			t.Fatalf("%s with a token within the user's limit: %d %s", d, r.StatusCode, b)
		}
	}
	for _, d := range dialects {
		r, b := dialectCall(s, d, tok)
		checkDialectShape(t, d, r.StatusCode, r.Header, b, `user \"lim@example.com\"`)
	}
}

// TestTrustedProxiesCountEachClientApart: behind a trusted proxy (the
// test's own loopback connections, TRUSTED_PROXIES=127.0.0.1) failures
// count against the client X-Forwarded-For names, so one client guessing
// is throttled while another behind the same proxy is answered; a client
// cannot pick its address by writing the header itself, since only the
// proxy's last entry counts.
func TestTrustedProxiesCountEachClientApart(t *testing.T) {
	env := append(baseEnv(t, pgtest.New(t)), "RATE_LIMIT_WINDOW="+window.String(), "AUTH_FAILURE_LIMIT=3", "TRUSTED_PROXIES=127.0.0.1,::1")
	s := start(t, env)
	key := createKey(t, env, "--user", "honest", "--team", "proxied")
	inOneWindow()
	call := func(xff, cred string) (*reply, []byte) {
		return s.do(http.MethodPost, "/v1/chat/completions", chatBody, "Authorization", "Bearer "+cred, "X-Forwarded-For", xff)
	}
	for i := range 3 {
		// The guesser writes a fresh address of its own left of the
		// proxy's entry each time: it still counts as 198.51.100.7.
		if r, b := call(fmt.Sprintf("203.0.113.%d, 198.51.100.7", i+1), "tg-a-wrong-guess-0000000000000000"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s, want 401", i+1, r.StatusCode, b)
		}
	}
	r, b := call("198.51.100.7", "tg-a-wrong-guess-0000000000000000")
	checkDialectShape(t, "chat", r.StatusCode, r.Header, b, "too many failed authentications")
	if r, b := call("198.51.100.7", key); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the throttled client's valid key: %d %s, want 429", r.StatusCode, b)
	}
	if r, b := call("198.51.100.8", key); r.StatusCode != http.StatusOK {
		t.Errorf("another client behind the same proxy: %d %s, want 200", r.StatusCode, b)
	}
}

// TestAdminAuthFailureLimitIsTheAdminSidesOwn: ADMIN_AUTH_FAILURE_LIMIT
// sets the admin API's throttle, counted apart from the model endpoints':
// its failures get 401 up to the limit, then 429 with the throttle's code
// even for a valid admin key, while the same address's valid API key is
// still answered on the model endpoints.
func TestAdminAuthFailureLimitIsTheAdminSidesOwn(t *testing.T) {
	env := append(baseEnv(t, pgtest.New(t)), "RATE_LIMIT_WINDOW="+window.String(), "ADMIN_AUTH_FAILURE_LIMIT=2", "AUTH_FAILURE_LIMIT=50")
	s := start(t, env)
	adminKey := runAdminKey(t, env, "throttle", "read")
	inOneWindow()
	admin := func(cred string) (*reply, []byte) {
		return s.do(http.MethodGet, "/admin/v1/audit", "", "Authorization", "Bearer "+cred)
	}
	for i := range 2 {
		if r, b := admin("tga-not-an-admin-key-000000000000"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s, want 401", i+1, r.StatusCode, b)
		}
	}
	for _, cred := range []string{"tga-not-an-admin-key-000000000000", adminKey} {
		r, b := admin(cred)
		if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "too_many_failed_authentications") {
			t.Errorf("past ADMIN_AUTH_FAILURE_LIMIT=2: %d %s (Retry-After %q), want 429 too_many_failed_authentications", r.StatusCode, b, r.Header.Get("Retry-After"))
		}
	}
	if r, b := dialectCall(s, "chat", s.Key); r.StatusCode != http.StatusOK {
		t.Errorf("the model endpoints from the same address: %d %s, want 200", r.StatusCode, b)
	}
}
