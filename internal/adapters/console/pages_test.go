package console_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

var (
	inputRE = regexp.MustCompile(`<(input|select)\b[^>]*>`)
	idRE    = regexp.MustCompile(`\bid="([^"]+)"`)
)

// checkAccessible checks what can be checked of a page's markup without a
// browser: a language, one h1, a main landmark and the navigation, table
// headers with scope, and a label for every visible form control.
func checkAccessible(t *testing.T, path, body string) {
	t.Helper()
	for _, want := range []string{`<html lang="en">`, `<main id="main"`, `<a class="skip" href="#main">`, `<nav aria-label="Console pages">`} {
		if !strings.Contains(body, want) {
			t.Errorf("%s lacks %s", path, want)
		}
	}
	if n := strings.Count(body, "<h1>"); n != 1 {
		t.Errorf("%s has %d h1 headings", path, n)
	}
	if strings.Contains(body, "<th>") {
		t.Errorf("%s has a table header without scope", path)
	}
	if strings.Contains(body, "<script") || strings.Contains(body, " style=") {
		t.Errorf("%s has inline script or style", path)
	}
	for _, control := range inputRE.FindAllString(body, -1) {
		if strings.Contains(control, `type="hidden"`) {
			continue
		}
		m := idRE.FindStringSubmatch(control)
		if m == nil || !strings.Contains(body, `<label for="`+m[1]+`">`) {
			t.Errorf("%s: a control without a label: %s", path, control)
		}
	}
}

// TestPages renders every page with keys of two users in two teams and
// checks what each shows.
func TestPages(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	b.get("/console/keys")
	b.post("/console/keys", createForm("onboarding alice"))
	bob := createForm("onboarding bob")
	bob.Set("user", "bob")
	bob.Set("team", "ops")
	bob.Set("daily_budget_usd", "2.5")
	b.post("/console/keys", bob)
	b.get("/console/keys/key_2")
	b.post("/console/keys/key_2/revoke", url.Values{"audit_reason": {"bob left"}})

	pages := map[string][]string{
		"/console/":           {"Keys", "audit log"},
		"/console/keys":       {"key_1", "key_2", "alice", "bob", "mock-chat, gpt-4o", ">active<", ">revoked<", "Create a key"},
		"/console/keys/key_1": {"Rotate the secret", "Set the expiry", "Revoke the key", "2099-01-31 17:00:00 UTC", "onboarding alice", "60 requests per minute"},
		"/console/teams":      {`href="/console/keys?team=risk"`, `href="/console/teams/risk"`, `href="/console/keys?team=ops"`, "team risk: $300.000000 per month"},
		"/console/users":      {`href="/console/keys?user=alice"`, "user bob: $2.500000 per day", "user alice: $5.000000 per day"},
		"/console/budgets":    {"$300.000000", "$2.500000", "Limits of the active keys", `href="/console/keys/key_1"`},
		"/console/audit":      {"key.create", "key.revoke", "bob left", "admin_key:adm_writer", `href="/console/keys/key_2"`},
	}
	for path, wants := range pages {
		p := b.get(path)
		if p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s", path, p.status, p.header.Get("Content-Type"))
			continue
		}
		for _, want := range wants {
			if !strings.Contains(p.body, want) {
				t.Errorf("GET %s lacks %q", path, want)
			}
		}
		for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Cache-Control"} {
			if p.header.Get(h) == "" {
				t.Errorf("GET %s without %s", path, h)
			}
		}
		checkAccessible(t, path, p.body)
	}
	// A revoked key's limits are not among the active keys'.
	if p := b.get("/console/budgets"); strings.Contains(p.body, `<th scope="row"><a href="/console/keys/key_2">`) {
		t.Error("the revoked key's limits are listed as active")
	}
	// An entry exported to MLflow shows its trace; one MLflow refused says
	// why; the others say they are not yet recorded there. A limits change
	// says the limits.
	f.store.mu.Lock()
	f.store.entries[0].TraceID = domain.AuditTraceID(f.store.entries[0])
	f.store.entries = append(f.store.entries, domain.AuditEntry{ID: 99, At: f.now, Actor: domain.Actor{Kind: domain.ActorCLI, ID: "ops"},
		Action: "limits.set", Target: "team:risk", Reason: "quota", After: &domain.LimitsOf{Scope: domain.LimitTeam, ID: "risk", Limits: domain.Limits{RPM: 30}}},
		domain.AuditEntry{ID: 100, At: f.now, Actor: domain.Actor{Kind: domain.ActorCLI, ID: "ops"}, Action: "limits.set", Target: "team:ops",
			Reason: "quota", After: &domain.LimitsOf{Scope: domain.LimitTeam, ID: "ops"}, ExportRefused: "a check constraint refused the row"})
	f.store.mu.Unlock()
	p := b.get("/console/audit")
	for _, want := range []string{"<code>" + domain.AuditTraceID(f.store.entries[0]) + "</code>", "not yet recorded", "limits: 30 requests per minute",
		"refused by MLflow's database: a check constraint refused the row"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the audit page lacks %q", want)
		}
	}
	// Navigation marks the current page for assistive technology, not by colour.
	if p := b.get("/console/teams"); !strings.Contains(p.body, `href="/console/teams" aria-current="page"`) {
		t.Error("the navigation does not mark the current page")
	}
}

// TestAuditPaging checks the audit page's link to older entries.
func TestAuditPaging(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	b.get("/console/keys")
	for range 51 {
		b.post("/console/keys", createForm("bulk onboarding"))
	}
	p := b.get("/console/audit")
	if strings.Count(p.body, "<tr><th scope=\"row\">") != 50 || !strings.Contains(p.body, `href="/console/audit?before=2"`) {
		t.Fatalf("first page:\n%s", p.body)
	}
	p = b.get("/console/audit?before=2")
	if strings.Count(p.body, "<tr><th scope=\"row\">") != 1 || strings.Contains(p.body, "Older entries") {
		t.Errorf("second page:\n%s", p.body)
	}
}
