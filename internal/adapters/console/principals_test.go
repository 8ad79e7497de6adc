package console_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

func (s *store) Principal(_ context.Context, scope domain.ScopeKind, id string) (domain.Principal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.principals[string(scope)+":"+id]; ok {
		return p, nil
	}
	return domain.Principal{Scope: scope, ID: id}, nil
}

// ChangePrincipal makes c as the PostgreSQL store does: under If-Match,
// with one audit entry holding the state before and after.
func (s *store) ChangePrincipal(ctx context.Context, scope domain.ScopeKind, id string, c domain.PrincipalChange, ifMatch string, e domain.AuditEntry) (domain.Principal, error) {
	before, _ := s.Principal(ctx, scope, id)
	if err := domain.CheckPrincipalVersion(before, ifMatch); err != nil {
		return domain.Principal{}, err
	}
	after := before
	after.Budgets = nil
	for _, b := range before.Budgets {
		kept := true
		for _, ch := range c.Budgets {
			kept = kept && !ch.SameCounter(b)
		}
		if kept {
			after.Budgets = append(after.Budgets, b)
		}
	}
	for _, b := range c.Budgets {
		if b.Limit > 0 {
			after.Budgets = append(after.Budgets, b)
		}
	}
	after.Limits = c.Limits.Apply(before.Limits)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.principals == nil {
		s.principals = map[string]domain.Principal{}
	}
	s.principals[string(scope)+":"+id] = after
	e.ID, e.Target, e.Before, e.After = int64(len(s.entries)+1), string(scope)+":"+id, &before, &after
	s.entries = append(s.entries, e)
	return after, nil
}

// limitsForm is the limits form with rpm 60, no tpm limit and four calls
// in flight.
func limitsForm(version, reason string) url.Values {
	return url.Values{"version": {version}, "audit_reason": {reason}, "rpm": {"60"}, "tpm_none": {"1"}, "max_concurrency": {"4"}}
}

// TestPrincipalForms checks a user's and a team's page: the limits and
// budget forms set and remove, each change is one audit entry, a stale
// form changes nothing, and a bad value shows the form again with the
// problem tied to its field.
func TestPrincipalForms(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(writerKey)
	p := b.get("/console/users/alice")
	for _, want := range []string{"User alice", "Rate and concurrency limits", "Set a budget", "<fieldset>", "<legend>Requests per minute</legend>",
		`id="limits_rpm_none" name="rpm_none" type="checkbox" value="1" checked`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("alice's page lacks %q", want)
		}
	}
	if p.status != 200 || strings.Contains(p.body, "Remove budgets") {
		t.Errorf("alice's page: %d, offering to remove budgets she has not got\n%s", p.status, p.body)
	}
	checkAccessible(t, "/console/users/alice", p.body)
	first := versionRE.FindStringSubmatch(p.body)[1]

	// Bad values: 400, the page again with the values sent, the problem
	// beside its field; nothing changes.
	for name, c := range map[string]struct {
		set   map[string]string
		field string
	}{
		"a negative rpm":          {map[string]string{"rpm": "-1"}, "limits_rpm"},
		"a fraction":              {map[string]string{"max_concurrency": "1.5"}, "limits_max_concurrency"},
		"a number and no limit":   {map[string]string{"rpm_none": "1"}, "limits_rpm"},
		"neither":                 {map[string]string{"tpm_none": ""}, "limits_tpm"},
		"a short reason":          {map[string]string{"audit_reason": "abc"}, "limits_reason"},
		"a limit over 2147483647": {map[string]string{"rpm": "2147483648"}, "limits_rpm"},
	} {
		fm := limitsForm(first, "alice's share")
		for k, v := range c.set {
			fm.Set(k, v)
		}
		p := b.post("/console/users/alice/limits", fm)
		if p.status != 400 || !strings.Contains(p.body, `id="`+c.field+`_error"`) || !strings.Contains(p.body, `role="alert"`) ||
			!strings.Contains(p.body, c.field+`_error" aria-invalid="true"`) {
			t.Errorf("%s: %d, want 400 with the problem tied to %s\n%s", name, p.status, c.field, p.body)
		}
		checkAccessible(t, name, p.body)
	}
	if _, n := f.store.count(); n != 0 {
		t.Fatalf("refused forms left %d audit entries", n)
	}

	p = b.post("/console/users/alice/limits", limitsForm(first, "alice's share"))
	if p.status != 303 || p.header.Get("Location") != "/console/users/alice" {
		t.Fatalf("set alice's limits: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
	}
	alice, _ := f.store.Principal(context.Background(), domain.ScopeUser, "alice")
	if alice.Limits != (domain.Limits{RPM: 60, MaxConcurrent: 4}) {
		t.Errorf("alice's limits: %+v", alice.Limits)
	}
	p = b.get("/console/users/alice")
	for _, want := range []string{"60 requests per minute", "no limit of tokens per minute", "4 calls in flight", `name="rpm" type="number" min="1" step="1" inputmode="numeric" value="60"`,
		"user.update", "alice&#39;s share", "limits: 60 requests per minute, 4 calls in flight; budgets: none"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("alice's page after the change lacks %q", want)
		}
	}
	// A form shown before the change is stale.
	if p := b.post("/console/users/alice/limits", limitsForm(first, "again")); p.status != 412 {
		t.Errorf("a stale limits form: %d", p.status)
	}
	// Removing a limit is ticking "no limit".
	fm := limitsForm(versionRE.FindStringSubmatch(p.body)[1], "lift alice's rate")
	fm.Del("rpm")
	fm.Set("rpm_none", "1")
	if p := b.post("/console/users/alice/limits", fm); p.status != 303 {
		t.Fatalf("remove alice's rpm: %d\n%s", p.status, p.body)
	}
	if alice, _ = f.store.Principal(context.Background(), domain.ScopeUser, "alice"); alice.Limits != (domain.Limits{MaxConcurrent: 4}) {
		t.Errorf("alice's limits after removing her rpm: %+v", alice.Limits)
	}

	// A team's budgets: a bad period is shown again, then set, then removed.
	p = b.get("/console/teams/risk")
	version := versionRE.FindStringSubmatch(p.body)[1]
	budget := url.Values{"version": {version}, "audit_reason": {"Q3 plan"}, "period": {"fortnight"}, "model": {"gpt-4o"}, "limit_usd": {"500"}}
	p = b.post("/console/teams/risk/budgets", budget)
	if p.status != 400 || !strings.Contains(p.body, `id="budget_period_error"`) || !strings.Contains(p.body, `value="fortnight"`) {
		t.Errorf("a bad period: %d\n%s", p.status, p.body)
	}
	budget.Set("limit_usd", "0")
	budget.Set("period", "month")
	if p := b.post("/console/teams/risk/budgets", budget); p.status != 400 || !strings.Contains(p.body, `id="budget_limit_usd_error"`) {
		t.Errorf("a zero budget: %d\n%s", p.status, p.body)
	}
	budget.Set("limit_usd", "500")
	if p := b.post("/console/teams/risk/budgets", budget); p.status != 303 || p.header.Get("Location") != "/console/teams/risk" {
		t.Fatalf("set risk's budget: %d\n%s", p.status, p.body)
	}
	p = b.get("/console/teams/risk")
	if !strings.Contains(p.body, "team risk on gpt-4o: $500.000000 per month") || !strings.Contains(p.body, `value="month@gpt-4o"`) {
		t.Errorf("risk's page does not show its budget\n%s", p.body)
	}
	checkAccessible(t, "/console/teams/risk", p.body)
	remove := url.Values{"version": {versionRE.FindStringSubmatch(p.body)[1]}, "audit_reason": {"plan cut"}}
	if p := b.post("/console/teams/risk/budgets/remove", remove); p.status != 400 || !strings.Contains(p.body, `id="remove_budgets_error"`) {
		t.Errorf("removing no budget: %d\n%s", p.status, p.body)
	}
	remove.Set("remove", "month@gpt-4o")
	if p := b.post("/console/teams/risk/budgets/remove", remove); p.status != 303 {
		t.Fatalf("remove risk's budget: %d\n%s", p.status, p.body)
	}
	if risk, _ := f.store.Principal(context.Background(), domain.ScopeTeam, "risk"); len(risk.Budgets) != 0 {
		t.Errorf("risk's budgets after the removal: %v", risk.Budgets)
	}
	if _, n := f.store.count(); n != 4 {
		t.Errorf("four changes left %d audit entries", n)
	}
}

// TestPrincipalFormsNeedScopeReasonAndToken checks that a reader sees a
// user's page without forms and is refused if they post one, and that a
// form without the session's CSRF token changes nothing.
func TestPrincipalFormsNeedScopeReasonAndToken(t *testing.T) {
	f := newFixture(t)
	r := f.browser()
	r.signIn(readerKey)
	p := r.get("/console/teams/risk")
	if p.status != 200 || strings.Contains(p.body, "<form method=\"post\" action=\"/console/teams/risk") {
		t.Errorf("the reader's team page: %d\n%s", p.status, p.body)
	}
	if p := r.post("/console/teams/risk/limits", limitsForm("", "just trying")); p.status != 403 {
		t.Errorf("the reader sets limits: %d", p.status)
	}
	w := f.browser()
	w.signIn(writerKey)
	w.get("/console/teams/risk")
	fm := limitsForm("", "a good reason")
	fm.Set("csrf_token", "")
	if p := w.post("/console/teams/risk/limits", fm); p.status != 403 || !strings.Contains(p.body, "CSRF") {
		t.Errorf("a limits form without its token: %d", p.status)
	}
	if p := w.post("/console/teams/risk/budgets", url.Values{"period": {"day"}, "limit_usd": {"5"}}); p.status != 400 ||
		!strings.Contains(p.body, `id="budget_reason_error"`) {
		t.Errorf("a budget form without a reason: %d\n%s", p.status, p.body)
	}
	if _, n := f.store.count(); n != 0 {
		t.Errorf("refused forms left %d audit entries", n)
	}
}
