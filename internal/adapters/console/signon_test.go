package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/console"
	"github.com/tidygate/tidygate/internal/adapters/oidc"
	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/oidctest"
)

// newSignOnFixture is a console whose administrators may also sign in at
// a fake identity provider, through the real OpenID Connect adapter, with
// the role tidygate-admin mapped to write and tidygate-auditor to read.
func newSignOnFixture(t *testing.T) (*fixture, *oidctest.Issuer) {
	t.Helper()
	idp := oidctest.New(t)
	f := newFixtureWith(t, func(base string, ao *admin.Options, co *console.Options) {
		iss := oidc.NewIssuer(oidc.Options{IssuerURL: idp.URL, Audience: "tidygate", Claims: oidc.Claims{User: "email", Team: "groups", Role: "roles"},
			ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, RedirectURL: base + console.CallbackPath, Client: idp.Client()})
		if err := iss.Discover(context.Background()); err != nil {
			t.Fatal(err)
		}
		ao.RoleScopes = domain.RoleScopes{"tidygate-admin": domain.AdminWrite, "tidygate-auditor": domain.AdminRead}
		co.SignOn, co.SignOnName = iss, "idp.example.com"
	})
	return f, idp
}

// follow gets rawURL (a console path or an absolute URL) as a browser does,
// following redirects between the console and the identity provider with
// b's cookies, and returns the last answer and where it came from.
func (b *browser) follow(rawURL string) (page, *url.URL) {
	b.f.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = b.f.srv.URL + rawURL
	}
	c := *b.client
	c.CheckRedirect = nil
	resp, err := c.Get(rawURL)
	if err != nil {
		b.f.t.Fatal(err)
	}
	return b.read(resp), resp.Request.URL
}

// signedInAs returns who the console says is signed in on b, or "" when
// it sends b to the sign-in page.
func (b *browser) signedInAs() string {
	b.f.t.Helper()
	p := b.get("/console/")
	if p.status != http.StatusOK {
		return ""
	}
	_, who, _ := strings.Cut(p.body, "Signed in as <strong>")
	who, _, _ = strings.Cut(who, "</strong>")
	return who
}

// TestSignOn walks a sign-in at the identity provider through the
// console's handlers: the button, the redirect with PKCE, the callback,
// the session with the subject and the scopes of its roles, a change
// audited as the subject, and signing out.
func TestSignOn(t *testing.T) {
	f, idp := newSignOnFixture(t)
	idp.Claims = map[string]any{"sub": "u-alice-7", "email": "alice@example.com", "roles": []string{"staff", "tidygate-admin"}}
	b := f.browser()

	p := b.get("/console/sign-in")
	if !strings.Contains(p.body, `<a class="button" href="/console/auth/start">Sign in with idp.example.com</a>`) {
		t.Fatalf("the sign-in page has no button for the identity provider:\n%s", p.body)
	}
	start := b.get("/console/auth/start")
	to, _ := url.Parse(start.header.Get("Location"))
	if start.status != http.StatusSeeOther || !strings.HasPrefix(to.String(), idp.URL+"/authorize?") ||
		to.Query().Get("code_challenge_method") != "S256" || to.Query().Get("redirect_uri") != f.srv.URL+console.CallbackPath {
		t.Fatalf("start: %d to %s", start.status, to)
	}
	var pending *http.Cookie
	for _, c := range (&http.Response{Header: start.header}).Cookies() {
		if c.Name == "tidygate_console_sign_in" {
			pending = c
		}
	}
	if pending == nil || !pending.HttpOnly || pending.SameSite != http.SameSiteLaxMode || pending.Path != "/console/auth" ||
		pending.MaxAge <= 0 || pending.MaxAge > 600 || strings.Contains(pending.Value, to.Query().Get("state")) {
		t.Fatalf("the sign-in in progress is kept in %+v", pending)
	}

	done, at := b.follow(to.String())
	// A page that moves on at once, not a redirect, so that the browser
	// sends the SameSite=Strict session cookie with the next request.
	if at.Path != console.CallbackPath || done.status != http.StatusOK || cookieOf(done) == nil ||
		!strings.Contains(done.body, `<meta http-equiv="refresh" content="0; url=/console/">`) {
		t.Fatalf("the callback: %d at %s", done.status, at)
	}
	if who := b.signedInAs(); who != "oidc:u-alice-7" {
		t.Fatalf("signed in as %q, want oidc:u-alice-7", who)
	}
	// A change is audited as the subject.
	b.get("/console/keys")
	if p := b.post("/console/keys", createForm("onboarding alice")); p.status != http.StatusCreated {
		t.Fatalf("create a key signed in at the identity provider: %d\n%s", p.status, p.body)
	}
	if e := f.store.entries[len(f.store.entries)-1]; e.Actor.Kind != domain.ActorOIDC || e.Actor.ID != "u-alice-7" || e.Action != "key.create" {
		t.Fatalf("the audit entry: %+v", e)
	}
	if p := b.get("/console/audit"); !strings.Contains(p.body, "<td>oidc:u-alice-7</td>") {
		t.Errorf("the audit page does not name the subject:\n%s", p.body)
	}
	// The callback's sign-in was used up: the same callback again is refused.
	if p := b.get(at.RequestURI()); p.status != http.StatusUnauthorized {
		t.Errorf("the callback a second time: %d", p.status)
	}

	b.get("/console/")
	if p := b.post("/console/sign-out", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", p.status)
	}
	if who := b.signedInAs(); who != "" {
		t.Fatalf("still signed in as %q after signing out", who)
	}

	// An auditor's role gives read only.
	idp.Claims["roles"] = []string{"tidygate-auditor"}
	b = f.browser()
	b.follow("/console/auth/start")
	if p := b.get("/console/keys"); p.status != http.StatusOK || !strings.Contains(p.body, "(read only)") || strings.Contains(p.body, `<form method="post" action="/console/keys"`) {
		t.Errorf("an auditor's keys page: %d\n%s", p.status, p.body)
	}
}

// TestSignOnRefused checks that every sign-in the provider or the browser
// gets wrong is refused with a clear page and no session: another
// browser's state, a wrong nonce, audience or expiry in the ID token, no
// mapped role, the provider's refusal, no sign-in in progress, and too
// many failures from one address.
func TestSignOnRefused(t *testing.T) {
	f, idp := newSignOnFixture(t)
	good := map[string]any{"sub": "u-bob-3", "email": "bob@example.com", "roles": []string{"tidygate-admin"}}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for name, value := range good {
			c[name] = value
		}
		c[k] = v
		return c
	}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		refuse string
		flow   func(b *browser) page
		status int
		says   string
	}{
		{name: "another sign-in's state", claims: good, status: 401, says: "does not match the one this browser started",
			flow: func(b *browser) page {
				first := b.get("/console/auth/start").header.Get("Location")
				b.get("/console/auth/start") // the browser now waits for the second
				p, _ := b.follow(first)
				return p
			}},
		{name: "wrong nonce", claims: with("nonce", "another-sign-in"), status: 401, says: "not issued for this sign-in"},
		{name: "wrong audience", claims: with("aud", "another-client"), status: 401, says: "not valid here"},
		{name: "expired", claims: with("exp", time.Now().Add(-time.Minute).Unix()), status: 401, says: "expired"},
		{name: "no mapped role", claims: with("roles", []string{"staff"}), status: 403, says: "signed you in as u-bob-3, but your account holds none of the roles"},
		{name: "no role claim", claims: with("roles", nil), status: 403, says: "none of the roles"},
		{name: "refused at the provider", claims: good, refuse: "access_denied", status: 401, says: "did not sign you in (access_denied)"},
		{name: "no sign-in in progress", claims: good, status: 401, says: "no sign-in in progress",
			flow: func(b *browser) page { return b.get(console.CallbackPath + "?state=s&code=c") }},
		{name: "a sign-in started too long ago", claims: good, status: 401, says: "no sign-in in progress",
			flow: func(b *browser) page {
				to := b.get("/console/auth/start").header.Get("Location")
				f.advance(11 * time.Minute)
				p, _ := b.follow(to)
				return p
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.advance(2 * time.Minute) // a fresh throttle window
			idp.Claims, idp.Refuse = tc.claims, tc.refuse
			b := f.browser()
			var p page
			if tc.flow != nil {
				p = tc.flow(b)
			} else {
				p, _ = b.follow("/console/auth/start")
			}
			if p.status != tc.status || !strings.Contains(p.body, tc.says) || !strings.Contains(p.body, `role="alert"`) || cookieOf(p) != nil {
				t.Errorf("%d, session cookie %v, want %d saying %q:\n%s", p.status, cookieOf(p), tc.status, tc.says, p.body)
			}
			if who := b.signedInAs(); who != "" {
				t.Errorf("signed in as %q", who)
			}
		})
	}

	// Failures count against the address, as wrong admin keys do: the
	// fixture allows three a minute, refuses the fourth, and then even a
	// good sign-in.
	f.advance(2 * time.Minute)
	idp.Claims, idp.Refuse = with("nonce", "another-sign-in"), ""
	for i := range 3 {
		if p, _ := f.browser().follow("/console/auth/start"); p.status != http.StatusUnauthorized {
			t.Errorf("failure %d: %d, want 401", i+1, p.status)
		}
	}
	if p, _ := f.browser().follow("/console/auth/start"); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Errorf("the fourth failure: %d, Retry-After %q", p.status, p.header.Get("Retry-After"))
	}
	idp.Claims = good
	if p, _ := f.browser().follow("/console/auth/start"); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Errorf("a good sign-in after four failures: %d, Retry-After %q", p.status, p.header.Get("Retry-After"))
	}
}

// TestSignOnProviderUnreachable checks that while the identity provider
// has not been discovered the button answers 503 with Retry-After, and
// admin keys still work.
func TestSignOnProviderUnreachable(t *testing.T) {
	f := newFixtureWith(t, func(base string, _ *admin.Options, co *console.Options) {
		co.SignOn = oidc.NewIssuer(oidc.Options{IssuerURL: "http://127.0.0.1:1", Audience: "tidygate", ClientID: "console",
			ClientSecret: "console-secret", RedirectURL: base + console.CallbackPath})
	})
	b := f.browser()
	if p := b.get("/console/sign-in"); !strings.Contains(p.body, "Sign in with the identity provider</a>") {
		t.Errorf("the button without a name for the provider:\n%s", p.body)
	}
	if p := b.get("/console/auth/start"); p.status != http.StatusServiceUnavailable || p.header.Get("Retry-After") == "" ||
		!strings.Contains(p.body, "has not been reached yet") || !strings.Contains(p.body, `role="alert"`) {
		t.Errorf("start while the provider is unreachable: %d, Retry-After %q\n%s", p.status, p.header.Get("Retry-After"), p.body)
	}
	b.signIn(writerKey)
}
