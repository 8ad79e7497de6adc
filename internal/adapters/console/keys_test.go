package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

func createForm(reason string) url.Values {
	return url.Values{"user": {"alice"}, "team": {"risk"}, "allowed_models": {"mock-chat, gpt-4o"}, "rpm": {"60"},
		"daily_budget_usd": {"5"}, "team_monthly_budget_usd": {"300"}, "expires_at": {"2099-01-31T17:00"}, "audit_reason": {reason}}
}

var versionRE = regexp.MustCompile(`name="version" value="([0-9a-f]+)"`)

// TestKeys creates, lists, rotates, expires and revokes a key through the
// forms: each change leaves exactly one audit entry with its reason, a
// secret is shown once (on the page that made it) and never again, and a
// form based on a stale page changes nothing.
func TestKeys(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	keys := b.get("/console/keys")
	if keys.status != 200 || !strings.Contains(keys.body, "Create a key") || !strings.Contains(keys.body, `<label for="create_reason">`) || !strings.Contains(keys.body, `minlength="5" maxlength="1000"`) {
		t.Fatalf("keys page: %d\n%s", keys.status, keys.body)
	}
	p := b.post("/console/keys", createForm("onboarding alice"))
	if p.status != 201 || !strings.Contains(p.body, `value="tg-secret-of-key_1"`) || !strings.Contains(p.body, "shown only this once") {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	k, _ := f.store.Key(t.Context(), "key_1")
	if k.Caller.User != "alice" || k.Caller.RPM != 60 || len(k.Caller.AllowedModels) != 2 || len(k.Caller.Budgets) != 2 || k.Caller.KeyExpiresAt.Year() != 2099 {
		t.Errorf("the created key: %+v", k)
	}
	if _, n := f.store.count(); n != 1 || f.store.entries[0].Reason != "onboarding alice" || f.store.entries[0].Actor.ID != "adm_writer" {
		t.Fatalf("after create: %d audit entries %+v", n, f.store.entries)
	}
	list := b.get("/console/keys?user=alice&state=active")
	if !strings.Contains(list.body, `href="/console/keys/key_1"`) || strings.Contains(list.body, "tg-secret-of-key_1") || !strings.Contains(list.body, "$5.000000") {
		t.Errorf("the list does not show the key, or shows its secret:\n%s", list.body)
	}
	if p := b.get("/console/keys?state=revoked"); strings.Contains(p.body, `href="/console/keys/key_1"`) {
		t.Error("an active key is listed as revoked")
	}

	page := b.get("/console/keys/key_1")
	m := versionRE.FindStringSubmatch(page.body)
	if page.status != 200 || m == nil || strings.Contains(page.body, "tg-secret-of-key_1") || !strings.Contains(page.body, "onboarding alice") {
		t.Fatalf("key page: %d\n%s", page.status, page.body)
	}
	version := m[1]

	p = b.post("/console/keys/key_1/rotate", url.Values{"grace": {"1h"}, "version": {version}, "audit_reason": {"quarterly rotation"}})
	if p.status != 200 || !strings.Contains(p.body, `value="tg-rotated-key_1"`) {
		t.Fatalf("rotate: %d\n%s", p.status, p.body)
	}
	// The page the rotation was based on is stale now.
	p = b.post("/console/keys/key_1/revoke", url.Values{"version": {version}, "audit_reason": {"alice left"}})
	if p.status != 412 {
		t.Errorf("revoke from a stale page: %d, want 412", p.status)
	}
	if _, n := f.store.count(); n != 2 {
		t.Fatalf("after create, rotate and a stale revoke: %d audit entries, want 2", n)
	}
	if p := b.post("/console/keys/key_1/rotate", url.Values{"grace": {"forever"}, "audit_reason": {"quarterly rotation"}}); p.status != 400 || !strings.Contains(p.body, "grace") {
		t.Errorf("rotate with a bad grace: %d", p.status)
	}
	if p := b.post("/console/keys/key_1/expiry", url.Values{"audit_reason": {"no date given"}}); p.status != 400 {
		t.Errorf("expiry without a date or never: %d", p.status)
	}
	p = b.post("/console/keys/key_1/expiry", url.Values{"never": {"1"}, "audit_reason": {"permanent now"}})
	if p.status != 303 || p.header.Get("Location") != "/console/keys/key_1" {
		t.Fatalf("remove the expiry: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
	}
	if k, _ := f.store.Key(t.Context(), "key_1"); !k.Caller.KeyExpiresAt.IsZero() {
		t.Errorf("the expiry was not removed: %v", k.Caller.KeyExpiresAt)
	}
	page = b.get("/console/keys/key_1")
	version = versionRE.FindStringSubmatch(page.body)[1]
	p = b.post("/console/keys/key_1/revoke", url.Values{"version": {version}, "audit_reason": {"alice left"}})
	if p.status != 303 {
		t.Fatalf("revoke: %d\n%s", p.status, p.body)
	}
	page = b.get("/console/keys/key_1")
	if !strings.Contains(page.body, `class="state state-revoked">revoked`) || strings.Contains(page.body, "Revoke the key") {
		t.Errorf("the revoked key's page:\n%s", page.body)
	}
	audit := b.get("/console/audit?target=key_1")
	for _, want := range []string{"key.create", "key.rotate", "key.set_expiry", "key.revoke", "alice left", "revoked", "expiry removed", "new key for user alice, team risk"} {
		if !strings.Contains(audit.body, want) {
			t.Errorf("the audit page lacks %q", want)
		}
	}
	if _, n := f.store.count(); n != 4 {
		t.Errorf("four changes left %d audit entries", n)
	}
	for _, sec := range []string{"tg-secret-of-key_1", "tg-rotated-key_1", writerKey} {
		if strings.Contains(audit.body, sec) {
			t.Errorf("the audit page shows a secret")
		}
	}
}

// TestChangesNeedReasonAndToken checks that every form that changes
// something is refused, changing nothing, without an audit reason of the
// minimum length, without the session's CSRF token, with another session's
// token, and when the session is gone.
func TestChangesNeedReasonAndToken(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	b.get("/console/keys")
	b.post("/console/keys", createForm("onboarding alice"))
	other := f.browser()
	other.signIn(writerKey)
	other.get("/console/keys")
	forms := map[string]url.Values{
		"/console/keys":              createForm(""),
		"/console/keys/key_1/revoke": {},
		"/console/keys/key_1/rotate": {"grace": {"1h"}},
		"/console/keys/key_1/expiry": {"never": {"1"}},
	}
	for path, form := range forms {
		for name, reason := range map[string][]string{"no reason": nil, "a short reason": {" abc  "}} {
			fm := url.Values{}
			for k, v := range form {
				fm[k] = v
			}
			fm["audit_reason"] = reason
			if p := b.post(path, fm); p.status != 400 || !strings.Contains(p.body, "audit reason of at least 5 visible characters") {
				t.Errorf("%s with %s: %d\n%s", path, name, p.status, p.body)
			}
		}
		withReason := func(token string) url.Values {
			fm := url.Values{"audit_reason": {"a good reason"}, "csrf_token": {token}}
			for k, v := range form {
				fm[k] = v
			}
			return fm
		}
		for name, token := range map[string]string{"no token": "", "a forged token": "Zm9yZ2Vk", "another session's token": other.csrf} {
			if p := b.post(path, withReason(token)); p.status != 403 || !strings.Contains(p.body, "CSRF") {
				t.Errorf("%s with %s: %d", path, name, p.status)
			}
		}
		signedOut := f.browser()
		signedOut.get("/console/sign-in")
		if p := signedOut.post(path, withReason(signedOut.csrf)); p.status != 401 {
			t.Errorf("%s signed out: %d", path, p.status)
		}
	}
	if keys, entries := f.store.count(); keys != 1 || entries != 1 {
		t.Errorf("refused forms changed something: %d keys, %d audit entries", keys, entries)
	}
}

// TestReadScope checks that an administrator with the read scope sees the
// pages but no forms that change, and is refused if they post one anyway.
func TestReadScope(t *testing.T) {
	f := newFixture(t)
	w := f.browser()
	w.signIn(writerKey)
	w.get("/console/keys")
	w.post("/console/keys", createForm("onboarding alice"))
	r := f.browser()
	r.signIn(readerKey)
	p := r.get("/console/keys")
	if p.status != 200 || strings.Contains(p.body, "Create a key") || !strings.Contains(p.body, "(read only)") {
		t.Errorf("the reader's keys page: %d\n%s", p.status, p.body)
	}
	if p := r.get("/console/keys/key_1"); strings.Contains(p.body, "Revoke the key") {
		t.Error("the reader is offered to revoke")
	}
	if p := r.post("/console/keys/key_1/revoke", url.Values{"audit_reason": {"just trying"}}); p.status != 403 {
		t.Errorf("the reader revokes: %d", p.status)
	}
	if _, n := f.store.count(); n != 1 {
		t.Errorf("the reader changed something: %d audit entries", n)
	}
}

// TestSessionFollowsItsAdminKey checks that a console session has the
// scopes its admin key has now: narrowed scopes refuse its forms at once,
// and revoking the key ends the session, for pages and forms alike.
func TestSessionFollowsItsAdminKey(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	if p := b.get("/console/keys"); p.status != 200 || !strings.Contains(p.body, "Create a key") {
		t.Fatalf("the writer's keys page: %d\n%s", p.status, p.body)
	}
	f.store.changeAdminKey(writerKey, func(k *domain.AdminKey) { k.Scopes = []domain.AdminScope{domain.AdminRead} })
	if p := b.post("/console/keys", createForm("onboarding alice")); p.status != 403 {
		t.Errorf("a form posted after the key lost its write scope: %d, want 403", p.status)
	}
	if p := b.get("/console/keys"); p.status != 200 || strings.Contains(p.body, "Create a key") {
		t.Errorf("the keys page after the key lost its write scope still offers the form: %d", p.status)
	}
	revoked := f.now
	f.store.changeAdminKey(writerKey, func(k *domain.AdminKey) { k.RevokedAt = &revoked })
	if p := b.get("/console/keys"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/sign-in" {
		t.Errorf("a page after the key was revoked: %d %s, want a redirect to sign in", p.status, p.header.Get("Location"))
	}
	if p := b.post("/console/keys", createForm("onboarding bob")); p.status != 401 {
		t.Errorf("a form after the key was revoked: %d, want 401", p.status)
	}
	if keys, entries := f.store.count(); keys != 0 || entries != 0 {
		t.Errorf("the session changed something after losing its scope: %d keys, %d audit entries", keys, entries)
	}
}

// TestBadInput checks that bad form values and filters get 400 naming the
// field, and unknown keys and pages 404, all as pages with a way back.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	b.get("/console/keys")
	for field, value := range map[string]string{"rpm": "-1", "tpm": "many", "daily_budget_usd": "five", "expires_at": "tomorrow"} {
		fm := createForm("onboarding alice")
		fm.Set(field, value)
		if p := b.post("/console/keys", fm); p.status != 400 || !strings.Contains(p.body, field) || !strings.Contains(p.body, `href="/console/keys"`) {
			t.Errorf("%s=%s: %d\n%s", field, value, p.status, p.body)
		}
	}
	for path, want := range map[string]int{
		"/console/keys?state=sideways": 400, "/console/audit?before=x": 400,
		"/console/keys/key_404": 404, "/console/nothing": 404,
	} {
		if p := b.get(path); p.status != want || !strings.Contains(p.body, `role="alert"`) {
			t.Errorf("GET %s: %d, want %d", path, p.status, want)
		}
	}
	if p := b.post("/console/keys/key_404/revoke", url.Values{"audit_reason": {"a good reason"}}); p.status != 404 {
		t.Errorf("revoke an unknown key: %d", p.status)
	}
	big := url.Values{"audit_reason": {strings.Repeat("x", 70<<10)}}
	if p := b.post("/console/keys", big); p.status != 400 {
		t.Errorf("a form over 64 KiB: %d", p.status)
	}
	if keys, _ := f.store.count(); keys != 0 {
		t.Errorf("bad forms created %d keys", keys)
	}
	if p := b.get("/console/static/console.css"); p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/css") {
		t.Errorf("the stylesheet: %d %s", p.status, p.header.Get("Content-Type"))
	}
	if p := b.get("/console"); p.status != http.StatusSeeOther {
		t.Errorf("/console: %d", p.status)
	}
}

// TestCreateKeyReplacesABudgetOnlyWhenTicked: a key whose budget would
// replace one its user has is refused, naming the budget and creating
// nothing, unless the form's replace_budget box is ticked, as the admin
// API's replace_budget and the command line's --replace-budget.
func TestCreateKeyReplacesABudgetOnlyWhenTicked(t *testing.T) {
	f := newFixture(t)
	f.store.principals = map[string]domain.Principal{}
	f.store.principals["user:alice"] = domain.Principal{Scope: domain.ScopeUser, ID: "alice",
		Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 3 * domain.MicrosPerUSD}}}
	b := f.browser()
	b.signIn(writerKey)
	if page := b.get("/console/keys"); !strings.Contains(page.body, `name="replace_budget"`) {
		t.Fatalf("the create form has no replace_budget box:\n%s", page.body)
	}
	p := b.post("/console/keys", createForm("onboarding alice"))
	if p.status != 400 || !strings.Contains(p.body, "daily_budget_usd") || !strings.Contains(p.body, "replace_budget") {
		t.Fatalf("a budget replaced unasked: %d\n%s", p.status, p.body)
	}
	if keys, n := f.store.count(); keys != 0 || n != 0 {
		t.Fatalf("a refused key left %d keys and %d audit entries", keys, n)
	}
	form := createForm("onboarding alice")
	form.Set("replace_budget", "1")
	if p := b.post("/console/keys", form); p.status != 201 {
		t.Fatalf("a budget replaced when ticked: %d\n%s", p.status, p.body)
	}
}

// TestCreateKeyRefusesABudgetOfZero: a budget of 0 typed in the create
// form is refused naming its field, and no key is made, where the key was
// made without the budget (0 reads as none); the command line and the
// admin API refuse it by the same rule (domain.ParseBudgetUSD).
func TestCreateKeyRefusesABudgetOfZero(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	b.get("/console/keys")
	form := createForm("onboarding alice")
	form.Set("daily_budget_usd", "0")
	if p := b.post("/console/keys", form); p.status != 400 || !strings.Contains(p.body, "daily_budget_usd") || !strings.Contains(p.body, "would allow nothing") {
		t.Fatalf("daily_budget_usd=0: %d\n%s", p.status, p.body)
	}
	if keys, n := f.store.count(); keys != 0 || n != 0 {
		t.Fatalf("a refused key left %d keys and %d audit entries", keys, n)
	}
}
