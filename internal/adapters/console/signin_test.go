package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSignIn walks the sign-in: pages need a session, the cookie's
// attributes, a wrong key, a missing CSRF token, the right key (a new
// session, not the anonymous one), and signing out.
func TestSignIn(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	for _, path := range []string{"/console/", "/console/keys", "/console/keys/key_1", "/console/teams", "/console/users", "/console/budgets", "/console/audit"} {
		if p := b.get(path); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/sign-in" {
			t.Errorf("GET %s signed out: %d %q, want 303 to the sign-in page", path, p.status, p.header.Get("Location"))
		}
	}
	p := b.get("/console/sign-in")
	c := cookieOf(p)
	if p.status != 200 || c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/console" || c.MaxAge <= 0 {
		t.Fatalf("sign-in page: %d, cookie %+v", p.status, c)
	}
	if !strings.Contains(p.body, `<label for="admin_key">`) || b.csrf == "" {
		t.Fatalf("sign-in page has no labelled key field or no CSRF token:\n%s", p.body)
	}
	anonymous := c.Value

	if p := b.post("/console/sign-in", url.Values{"admin_key": {"tga-wrong-0123456789abcdef"}}); p.status != 401 || !strings.Contains(p.body, "not valid") || !strings.Contains(p.body, `role="alert"`) {
		t.Errorf("a wrong key: %d\n%s", p.status, p.body)
	}
	if p := b.post("/console/sign-in", url.Values{"admin_key": {writerKey}, "csrf_token": {""}}); p.status != 403 || cookieOf(p) != nil {
		t.Errorf("the right key without the CSRF token: %d, cookie %v", p.status, cookieOf(p))
	}
	if p := b.post("/console/sign-in", url.Values{"admin_key": {" "}}); p.status != 400 {
		t.Errorf("no key: %d", p.status)
	}
	p = b.post("/console/sign-in", url.Values{"admin_key": {writerKey}})
	signed := cookieOf(p)
	if p.status != 303 || signed == nil || signed.Value == anonymous || !signed.HttpOnly || signed.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign in: %d, cookie %+v", p.status, signed)
	}
	if strings.Contains(signed.Value, writerKey) || strings.Contains(p.body, writerKey) {
		t.Error("the admin key is echoed in the session or the answer")
	}
	home := b.get("/console/")
	if home.status != 200 || !strings.Contains(home.body, "admin_key:adm_writer") {
		t.Fatalf("home after sign-in: %d\n%s", home.status, home.body)
	}
	if p := b.get("/console/sign-in"); p.status != 303 {
		t.Errorf("the sign-in page while signed in: %d, want 303 home", p.status)
	}

	// Signing out needs the token too, then ends the session.
	if p := b.post("/console/sign-out", url.Values{"csrf_token": {"forged"}}); p.status != 403 {
		t.Errorf("sign out with a forged token: %d", p.status)
	}
	if p := b.post("/console/sign-out", url.Values{}); p.status != 303 || cookieOf(p) == nil || cookieOf(p).MaxAge >= 0 {
		t.Errorf("sign out: %d, cookie %+v", p.status, cookieOf(p))
	}
	if p := b.get("/console/keys"); p.status != 303 {
		t.Errorf("after signing out: %d", p.status)
	}
}

// TestSessionCookie checks that the cookie is Secure behind HTTPS, that a
// tampered or expired session counts as none, and that a session made with
// another secret is refused.
func TestSessionCookie(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/console/sign-in", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	if c := cookieOf(b.do(req)); c == nil || !c.Secure {
		t.Errorf("behind HTTPS the cookie is not Secure: %+v", c)
	}

	b = f.browser()
	b.signIn(writerKey)
	u, _ := url.Parse(f.srv.URL + "/console/")
	good := b.client.Jar.Cookies(u)[0].Value
	payload, sig, _ := strings.Cut(good, ".")
	for name, v := range map[string]string{
		"no signature":      payload,
		"another signature": payload + "." + strings.Repeat("A", len(sig)),
		"another payload":   "eyJrIjoiYWRtaW5fa2V5IiwiaWQiOiJhZG1fd3JpdGVyIiwicyI6WyJyZWFkIiwid3JpdGUiXSwiZXhwIjo5OTk5OTk5OTk5LCJuIjoieCJ9." + sig,
		"garbage":           "%%%",
	} {
		forged := f.browser()
		forged.client.Jar.SetCookies(u, []*http.Cookie{{Name: "tidygate_console", Value: v, Path: "/console"}})
		if p := forged.get("/console/keys"); p.status != 303 {
			t.Errorf("%s: %d, want 303 to sign in", name, p.status)
		}
	}
	if p := b.get("/console/keys"); p.status != 200 {
		t.Fatalf("the real session: %d", p.status)
	}
	f.advance(time.Hour)
	if p := b.get("/console/keys"); p.status != 303 {
		t.Errorf("after the session's hour: %d, want 303 to sign in", p.status)
	}
}

// TestSignInThrottle checks that failed sign-ins are counted per address:
// the failure past the limit is refused, and after it even the right key
// waits, with Retry-After, until the window ends.
func TestSignInThrottle(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.get("/console/sign-in")
	for i := range 3 {
		if p := b.post("/console/sign-in", url.Values{"admin_key": {"tga-wrong-0123456789abcdef"}}); p.status != 401 {
			t.Fatalf("wrong key %d: %d", i, p.status)
		}
	}
	p := b.post("/console/sign-in", url.Values{"admin_key": {"tga-wrong-0123456789abcdef"}})
	if p.status != 429 || p.header.Get("Retry-After") != "60" || !strings.Contains(p.body, "Too many failed sign-ins") {
		t.Fatalf("the fourth failure: %d, Retry-After %q\n%s", p.status, p.header.Get("Retry-After"), p.body)
	}
	p = b.post("/console/sign-in", url.Values{"admin_key": {writerKey}})
	if p.status != 429 || p.header.Get("Retry-After") != "60" {
		t.Fatalf("the right key after 4 failures: %d, Retry-After %q", p.status, p.header.Get("Retry-After"))
	}
	f.advance(time.Minute)
	b.signIn(writerKey)
}
