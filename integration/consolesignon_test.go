//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/oidctest"
	"github.com/tidygate/tidygate/internal/pgtest"
)

// TestConsoleSignOn: the built binary's console signs an administrator in
// at the identity provider, as a browser does (the fake's authorization
// endpoint and the redirects followed with a cookie jar), with the
// redirect URI made of CONSOLE_BASE_URL; its usage page then shows a
// settled call with the numbers the admin API's usage report has for it
// in PostgreSQL.
func TestConsoleSignOn(t *testing.T) {
	fake := oidctest.New(t)
	fake.Claims = map[string]any{"sub": "sub-admin-1", "email": "ann@example.com", "roles": []any{"tidygate-admin"}}
	dsn := pgtest.New(t)
	env := signOnEnv(t, dsn, fake)
	var base string
	for _, kv := range env {
		if addr, ok := strings.CutPrefix(kv, "HTTP_ADDR="); ok {
			base = "http://" + addr
		}
	}
	env = append(env, "OIDC_CLIENT_ID="+fake.ClientID, "OIDC_CLIENT_SECRET="+fake.ClientSecret, "CONSOLE_BASE_URL="+base)
	s := start(t, env)
	if resp, b := s.do("POST", "/v1/chat/completions", chatBody); resp.StatusCode != http.StatusOK {
		t.Fatalf("a call with the dev key: %d %s", resp.StatusCode, b)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) (int, string, *url.URL) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+path, nil)
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Request.URL
	}
	issuer, _ := url.Parse(fake.URL)
	if st, body, _ := get("/console/sign-in"); st != http.StatusOK || !strings.Contains(body, "Sign in with "+issuer.Host) {
		t.Fatalf("the sign-in page: %d\n%s", st, body)
	}
	// Until the provider is discovered, the button answers 503.
	deadline := time.Now().Add(30 * time.Second)
	st, body, at := get("/console/auth/start")
	for st == http.StatusServiceUnavailable && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		st, body, at = get("/console/auth/start")
	}
	if st != http.StatusOK || at.String() != base+"/console/auth/callback?"+at.RawQuery || !strings.Contains(body, "oidc:sub-admin-1") {
		t.Fatalf("the sign-in ended with %d at %s\n%s", st, at, body)
	}
	if st, body, _ := get("/console/"); st != http.StatusOK || !strings.Contains(body, "Signed in as <strong>oidc:sub-admin-1</strong>") {
		t.Fatalf("the console after signing in: %d\n%s", st, body)
	}

	// The usage page shows what the admin API's report shows, once the
	// call is settled.
	admin := newAdminClient(t, s.URL)
	token := person(fake, "sub-admin-1", "ann@example.com", nil, []any{"tidygate-admin"})
	today := time.Now().UTC().Format(time.DateOnly)
	var line map[string]any
	for deadline := time.Now().Add(15 * time.Second); line == nil; time.Sleep(100 * time.Millisecond) {
		st, rep, _ := admin.call("GET", "/usage?group_by=day&from="+today+"&to="+today, token, "", "")
		if rows, _ := rep["data"].([]any); st == http.StatusOK && len(rows) == 1 {
			line = rows[0].(map[string]any)
		} else if time.Now().After(deadline) {
			t.Fatalf("the usage report: %d %v", st, rep)
		}
	}
	want := fmt.Sprintf(`<th scope="row">%s</th><td class="num">%v</td><td class="num">%v</td><td class="num">%v</td><td class="num">$%s</td></tr>`,
		today, line["requests"], line["prompt_tokens"], line["completion_tokens"], line["cost_usd"])
	if st, body, _ := get("/console/usage?from=" + today + "&to=" + today); st != http.StatusOK || !strings.Contains(body, want) {
		t.Fatalf("the usage page lacks %s: %d\n%s", want, st, body)
	}
}
