package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// keyView is a key as the pages show it.
type keyView struct {
	domain.APIKey
	State   string // active, expired or revoked: spelled out, never a colour only
	Version string
}

// newKeyView returns k as the pages show it at now.
func newKeyView(k domain.APIKey, now time.Time) keyView {
	v := keyView{APIKey: k, State: "active", Version: domain.KeyVersion(k)}
	switch {
	case k.RevokedAt != nil:
		v.State = "revoked"
	case k.Caller.CheckKeyActive(now) != nil:
		v.State = "expired"
	}
	return v
}

// keysData fills the keys page: the filter, the keys it selects, and the
// create form's last values.
type keysData struct {
	User, Team, State string
	Keys              []keyView
}

// keysPage lists keys, filtered by user, team and state.
func (h *handler) keysPage(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	d := keysData{User: q.Get("user"), Team: q.Get("team"), State: q.Get("state")}
	if d.State != "" && d.State != "active" && d.State != "expired" && d.State != "revoked" {
		h.fail(w, r, s, domain.InvalidParam("state", "The state must be active, expired or revoked."))
		return
	}
	keys, err := h.allKeys(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	for _, k := range keys {
		if (d.User == "" || k.Caller.User == d.User) && (d.Team == "" || k.Caller.Team == d.Team) && (d.State == "" || k.State == d.State) {
			d.Keys = append(d.Keys, k)
		}
	}
	h.render(w, r, s, http.StatusOK, "keys", "Keys", d)
}

// keyData fills a key's page: the key and its audit trail.
type keyData struct {
	Key   keyView
	Audit []auditView
}

// keyPage shows one key, its forms and its audit entries.
func (h *handler) keyPage(w http.ResponseWriter, r *http.Request, s session) {
	k, err := h.svc.Key(r.Context(), s.actor(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	entries, err := h.svc.Audit(r.Context(), s.actor(), domain.AuditQuery{Target: k.ID, Limit: auditPageSize})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "key", "Key "+k.ID, keyData{Key: newKeyView(k, h.sessions.now()), Audit: auditViews(entries)})
}

// secretData fills the page that shows a new secret, once.
type secretData struct {
	Key    keyView
	Secret string
	Action string // created or rotated
}

// createKey creates a key from the keys page's form and shows its secret.
func (h *handler) createKey(w http.ResponseWriter, r *http.Request, s session) {
	f := form{r: r}
	nk := domain.NewKey{
		User: strings.TrimSpace(r.PostFormValue("user")), Team: strings.TrimSpace(r.PostFormValue("team")),
		AllowedModels: f.list("allowed_models"), RPM: f.count("rpm"), TPM: f.count("tpm"), MaxConcurrent: f.count("max_concurrent"),
		ExpiresAt:   f.time("expires_at"),
		DailyBudget: f.usd("daily_budget_usd"), MonthlyBudget: f.usd("monthly_budget_usd"),
		TeamDailyBudget: f.usd("team_daily_budget_usd"), TeamMonthlyBudget: f.usd("team_monthly_budget_usd"),
		ReplaceBudgets: r.PostFormValue("replace_budget") != "",
	}
	if f.err != nil {
		h.fail(w, r, s, f.err)
		return
	}
	k, secret, err := h.svc.CreateKey(r.Context(), s.actor(), r.PostFormValue("audit_reason"), nk)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusCreated, "secret", "Key created", secretData{Key: newKeyView(k, h.sessions.now()), Secret: secret, Action: "created"})
}

// revokeKey revokes the key, if it has not changed since its page was shown.
func (h *handler) revokeKey(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if _, err := h.svc.RevokeKey(r.Context(), s.actor(), r.PostFormValue("audit_reason"), id, r.PostFormValue("version")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"/keys/"+id, http.StatusSeeOther)
}

// rotateKey gives the key a new secret and shows it, once.
func (h *handler) rotateKey(w http.ResponseWriter, r *http.Request, s session) {
	f := form{r: r}
	grace := f.duration("grace")
	if f.err != nil {
		h.fail(w, r, s, f.err)
		return
	}
	k, secret, err := h.svc.RotateKey(r.Context(), s.actor(), r.PostFormValue("audit_reason"), r.PathValue("id"), grace, r.PostFormValue("version"))
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, s, http.StatusOK, "secret", "Key rotated", secretData{Key: newKeyView(k, h.sessions.now()), Secret: secret, Action: "rotated"})
}

// setExpiry sets or removes the key's expiry.
func (h *handler) setExpiry(w http.ResponseWriter, r *http.Request, s session) {
	f := form{r: r}
	at := f.time("expires_at")
	if f.err == nil && at.IsZero() && r.PostFormValue("never") == "" {
		f.err = domain.InvalidParam("expires_at", "Give an expiry, or tick “never expires” to remove it.")
	}
	if f.err != nil {
		h.fail(w, r, s, f.err)
		return
	}
	id := r.PathValue("id")
	if _, err := h.svc.SetKeyExpiry(r.Context(), s.actor(), r.PostFormValue("audit_reason"), id, at, r.PostFormValue("version")); err != nil {
		h.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"/keys/"+id, http.StatusSeeOther)
}

// form reads a posted form's typed fields, keeping the first problem.
type form struct {
	r   *http.Request
	err error
}

func (f *form) value(name string) string { return strings.TrimSpace(f.r.PostFormValue(name)) }

func (f *form) problem(name, format string, args ...any) {
	if f.err == nil {
		f.err = domain.InvalidParam(name, format, args...)
	}
}

// list reads a comma-separated list; empty: none.
func (f *form) list(name string) []string {
	var out []string
	for _, p := range strings.Split(f.value(name), ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// count reads a whole number of zero or more; empty: zero.
func (f *form) count(name string) int {
	v := f.value(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		f.problem(name, "%s must be a whole number of 0 or more (0: no limit), not %q.", name, v)
	}
	return n
}

// usd reads a budget's amount of dollars (domain.ParseBudgetUSD: 0 is
// refused); empty: zero (no budget set).
func (f *form) usd(name string) domain.Micros {
	v := f.value(name)
	if v == "" {
		return 0
	}
	m, err := domain.ParseBudgetUSD(v)
	if err != nil {
		f.problem(name, "%s: %v", name, err)
	}
	return m
}

// time reads a UTC time as the datetime-local input sends it
// (2026-01-31T17:00), or in RFC 3339; empty: the zero time.
func (f *form) time(name string) time.Time {
	v := f.value(name)
	if v == "" {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t.UTC()
		}
	}
	f.problem(name, "%s must be a UTC date and time such as 2026-01-31T17:00, not %q.", name, v)
	return time.Time{}
}

// duration reads a Go duration such as 24h; empty: zero.
func (f *form) duration(name string) time.Duration {
	v := f.value(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f.problem(name, "%s must be a duration such as 0s, 30m or 24h, not %q.", name, v)
	}
	return d
}
