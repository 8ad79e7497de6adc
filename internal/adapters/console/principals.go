package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// principalPages serves the pages of one user or team of a scope: what it
// holds, and the forms that set or remove its budgets and its rate and
// concurrency limits.
type principalPages struct {
	h     *handler
	scope domain.ScopeKind // domain.ScopeUser or domain.ScopeTeam
	path  string           // /console/users or /console/teams
}

// routePrincipals adds the pages of users and teams to mux.
func (h *handler) routePrincipals(mux *http.ServeMux) {
	for _, scope := range []domain.ScopeKind{domain.ScopeUser, domain.ScopeTeam} {
		p := principalPages{h: h, scope: scope, path: Prefix + "/" + string(scope) + "s"}
		mux.HandleFunc("GET "+p.path+"/{id}", h.signedIn(p.page))
		mux.HandleFunc("POST "+p.path+"/{id}/limits", h.changing(p.setLimits))
		mux.HandleFunc("POST "+p.path+"/{id}/budgets", h.changing(p.setBudget))
		mux.HandleFunc("POST "+p.path+"/{id}/budgets/remove", h.changing(p.removeBudgets))
	}
}

// principalData fills a user's or team's page.
type principalData struct {
	domain.Principal
	Version string // the version the forms were based on
	Path    string // the page's own path
	KeysURL string // its keys on the keys page
	Limits  []limitField
	Budget  budgetFields
	Budgets []budgetOption // its budgets, each a choice of the remove form
	// Problem is what was wrong with the last form, shown as an alert;
	// Errors are its problems by field ID, each shown beside its field.
	Problem string
	Errors  map[string]string
	Audit   []auditView
}

// limitField is one limit in the limits form.
type limitField struct {
	Name  string // rpm, tpm or max_concurrency, as the admin API names it
	Label string
	Value string // the limit; empty when there is none
	None  bool   // "no limit" ticked
}

// budgetFields are the values of the form that sets a budget.
type budgetFields struct{ Period, Model, LimitUSD string }

// budgetOption is one budget in the remove form: its value names it as
// PERIOD@MODEL (a period and a model never hold an @).
type budgetOption struct {
	domain.Budget
	Value string
}

// limitFields shows l in the limits form.
func limitFields(l domain.Limits) []limitField {
	out := []limitField{{Name: "rpm", Label: "Requests per minute"}, {Name: "tpm", Label: "Tokens per minute"},
		{Name: "max_concurrency", Label: "Calls in flight at once"}}
	for i, v := range []int{l.RPM, l.TPM, l.MaxConcurrent} {
		if v == 0 {
			out[i].None = true
		} else {
			out[i].Value = strconv.Itoa(v)
		}
	}
	return out
}

// page shows one user or team, its forms and its audit entries.
func (p principalPages) page(w http.ResponseWriter, r *http.Request, s session) {
	p.show(w, r, s, http.StatusOK, nil, nil)
}

// show renders the page with status; with a form's problem (a domain error
// with the form's field names) and the values the form was sent with,
// when given, in place of the stored ones.
func (p principalPages) show(w http.ResponseWriter, r *http.Request, s session, status int, problem *formProblem, sent func(*principalData)) {
	id := r.PathValue("id")
	x, err := p.h.svc.Principal(r.Context(), s.actor(), p.scope, id)
	if err != nil {
		p.h.fail(w, r, s, err)
		return
	}
	entries, err := p.h.svc.Audit(r.Context(), s.actor(), domain.AuditQuery{Target: string(p.scope) + ":" + id, Limit: auditPageSize})
	if err != nil {
		p.h.fail(w, r, s, err)
		return
	}
	d := principalData{Principal: x, Version: domain.PrincipalVersion(x), Path: p.path + "/" + url.PathEscape(id),
		KeysURL: Prefix + "/keys?" + url.Values{string(p.scope): {id}}.Encode(),
		Limits:  limitFields(x.Limits), Audit: auditViews(entries)}
	for _, b := range x.Budgets {
		d.Budgets = append(d.Budgets, budgetOption{Budget: b, Value: string(b.Period) + "@" + b.Model})
	}
	if problem != nil {
		d.Problem, d.Errors = problem.message, map[string]string{problem.field: problem.message}
		d.Version = r.PostFormValue("version")
	}
	if sent != nil {
		sent(&d)
	}
	title := strings.ToUpper(string(p.scope[:1])) + string(p.scope[1:]) + " " + id
	p.h.render(w, r, s, status, "principal", title, d)
}

// formProblem is a refused form's problem and the ID of the field it is
// about ("" when it is about no one field).
type formProblem struct{ field, message string }

// refused answers a form that err refused: an invalid value shows the
// page again, with the values sent and the problem beside its field
// (form_param: "limits_rpm", "budget_reason"); any other refusal (a stale
// form, a missing scope, …) is the error page.
func (p principalPages) refused(w http.ResponseWriter, r *http.Request, s session, form string, err error, sent func(*principalData)) {
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Code == domain.CodeVersionMismatch {
		p.h.fail(w, r, s, err)
		return
	}
	param := strings.TrimPrefix(de.Param, "limits.")
	if param == "audit_reason" {
		param = "reason"
	}
	p.show(w, r, s, http.StatusBadRequest, &formProblem{field: form + "_" + param, message: de.Message}, sent)
}

// apply makes the change c that the form named (limits, budget or remove)
// asks for, based on the version the page was shown with, unless the form
// had a problem; then it sends the browser back to the page, which shows
// the change, or shows the page again with the problem and the values
// sent.
func (p principalPages) apply(w http.ResponseWriter, r *http.Request, s session, name string, f form, c domain.PrincipalChange, sent func(*principalData)) {
	if f.err == nil {
		_, f.err = p.h.svc.ChangePrincipal(r.Context(), s.actor(), r.PostFormValue("audit_reason"), p.scope, r.PathValue("id"), c, r.PostFormValue("version"))
	}
	if f.err != nil {
		p.refused(w, r, s, name, f.err, sent)
		return
	}
	http.Redirect(w, r, p.path+"/"+url.PathEscape(r.PathValue("id")), http.StatusSeeOther)
}

// setLimits replaces the three limits by the form's: a whole number sets
// one, "no limit" removes it.
func (p principalPages) setLimits(w http.ResponseWriter, r *http.Request, s session) {
	f := form{r: r}
	fields := limitFields(domain.Limits{})
	var c domain.LimitsChange
	for i, to := range []**int{&c.RPM, &c.TPM, &c.MaxConcurrent} {
		name := fields[i].Name
		v, none := f.value(name), f.value(name+"_none") != ""
		fields[i].Value, fields[i].None = v, none
		n, err := strconv.Atoi(v)
		switch {
		case none && v != "":
			f.problem("limits."+name, "%s: give a number or tick “no limit”, not both.", fields[i].Label)
		case none:
			n = 0
		case err != nil || n < 1 || n > domain.MaxLimit:
			f.problem("limits."+name, "%s must be a whole number from 1 to %d, or tick “no limit”; not %q.", fields[i].Label, domain.MaxLimit, v)
		}
		*to = &n
	}
	p.apply(w, r, s, "limits", f, domain.PrincipalChange{Limits: c}, func(d *principalData) { d.Limits = fields })
}

// setBudget sets one budget: its period, the model or group it counts
// (none: every model) and its limit, replacing the limit it had.
func (p principalPages) setBudget(w http.ResponseWriter, r *http.Request, s session) {
	f := form{r: r}
	sent := budgetFields{Period: f.value("period"), Model: f.value("model"), LimitUSD: f.value("limit_usd")}
	period, err := domain.ParsePeriod(sent.Period)
	if err != nil {
		f.problem("period", "The period must be day, week, month or rolling:DURATION (rolling:24h, rolling:30d): %v.", err)
	}
	limit := f.usd("limit_usd")
	if f.err == nil && limit == 0 {
		f.problem("limit_usd", "Give the budget's limit in dollars, more than 0; to remove a budget, use the form below.")
	}
	p.apply(w, r, s, "budget", f, domain.PrincipalChange{Budgets: []domain.Budget{{Period: period, Model: sent.Model, Limit: limit}}},
		func(d *principalData) { d.Budget = sent })
}

// removeBudgets removes the budgets ticked in the form.
func (p principalPages) removeBudgets(w http.ResponseWriter, r *http.Request, s session) {
	f := form{r: r}
	var budgets []domain.Budget
	for _, v := range r.PostForm["remove"] {
		spec, model, _ := strings.Cut(v, "@")
		period, err := domain.ParsePeriod(spec)
		if err != nil {
			f.problem("budgets", "%q names no budget: %v.", v, err)
		}
		budgets = append(budgets, domain.Budget{Period: period, Model: model})
	}
	if f.err == nil && len(budgets) == 0 {
		f.problem("budgets", "Tick the budgets to remove.")
	}
	p.apply(w, r, s, "remove", f, domain.PrincipalChange{Budgets: budgets}, nil)
}
