package console

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// home is the landing page: what the console holds, and who is signed in.
func (h *handler) home(w http.ResponseWriter, r *http.Request, s session) {
	h.render(w, r, s, http.StatusOK, "home", "Console", nil)
}

// groupView is a team or a user on the teams or users page.
type groupView struct {
	Name              string
	Members           []string // a team's users, or a user's teams, as its keys name them
	Keys, ActiveKeys  int
	Budgets           []domain.Budget
	FilterParam, Link string
	Page              string // the user's or team's own page
}

// groupsPageSize is how many users or teams a page lists.
const groupsPageSize = 100

// groupsData fills the teams or users page: a page of them, and the link
// to the next.
type groupsData struct {
	Rows []groupView
	More string // the next page's URL; empty on the last
}

// groupsPage lists the users or teams of scope that the service knows
// (those a key or a budget names), by name, a page after the one the
// after parameter names; member gives, for a key, the other side's name
// (a team's user, a user's team).
func (h *handler) groupsPage(w http.ResponseWriter, r *http.Request, s session, scope domain.ScopeKind, title string, member func(domain.Caller) (string, string)) {
	list, more, err := h.svc.Principals(r.Context(), s.actor(), domain.PrincipalQuery{Scope: scope, After: r.URL.Query().Get("after"), Limit: groupsPageSize})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	keys, err := h.svc.Keys(r.Context(), s.actor())
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	members := map[string][]string{}
	for _, k := range keys {
		if n, m := member(k.Caller); !slices.Contains(members[n], m) {
			members[n] = append(members[n], m)
		}
	}
	param, path := string(scope), Prefix+"/"+string(scope)+"s"
	var d groupsData
	for _, p := range list {
		slices.Sort(members[p.ID])
		d.Rows = append(d.Rows, groupView{Name: p.ID, Members: members[p.ID], Keys: p.Keys, ActiveKeys: p.ActiveKeys, Budgets: p.Budgets,
			FilterParam: param, Link: Prefix + "/keys?" + url.Values{param: {p.ID}}.Encode(), Page: path + "/" + url.PathEscape(p.ID)})
	}
	if more && len(list) > 0 {
		d.More = path + "?" + url.Values{"after": {list[len(list)-1].ID}}.Encode()
	}
	h.render(w, r, s, http.StatusOK, param+"s", title, d)
}

// allKeys returns every key as the pages show it.
func (h *handler) allKeys(r *http.Request, s session) ([]keyView, error) {
	keys, err := h.svc.Keys(r.Context(), s.actor())
	if err != nil {
		return nil, err
	}
	now := h.sessions.now()
	out := make([]keyView, len(keys))
	for i, k := range keys {
		out[i] = newKeyView(k, now)
	}
	return out, nil
}

// teamsPage lists the teams, with their users and budgets.
func (h *handler) teamsPage(w http.ResponseWriter, r *http.Request, s session) {
	h.groupsPage(w, r, s, domain.ScopeTeam, "Teams", func(c domain.Caller) (string, string) { return c.Team, c.User })
}

// usersPage lists the users, with their teams and budgets.
func (h *handler) usersPage(w http.ResponseWriter, r *http.Request, s session) {
	h.groupsPage(w, r, s, domain.ScopeUser, "Users", func(c domain.Caller) (string, string) { return c.User, c.Team })
}

// budgetsData fills the budgets page: every budget any key counts against,
// once, and the limits of the keys that still work.
type budgetsData struct {
	Budgets []domain.Budget
	Limits  []keyView
}

// budgetsPage shows budgets and limits.
func (h *handler) budgetsPage(w http.ResponseWriter, r *http.Request, s session) {
	keys, err := h.allKeys(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	var d budgetsData
	for _, k := range keys {
		for _, b := range k.Caller.Budgets {
			if !slices.Contains(d.Budgets, b) {
				d.Budgets = append(d.Budgets, b)
			}
		}
		if k.State == "active" {
			d.Limits = append(d.Limits, k)
		}
	}
	slices.SortFunc(d.Budgets, func(a, b domain.Budget) int {
		return cmp.Or(strings.Compare(string(a.Scope), string(b.Scope)), strings.Compare(a.ScopeID, b.ScopeID),
			strings.Compare(a.Model, b.Model), strings.Compare(string(a.Period), string(b.Period)))
	})
	h.render(w, r, s, http.StatusOK, "budgets", "Budgets and limits", d)
}

// auditPageSize is how many audit entries a page shows.
const auditPageSize = 50

// auditView is an audit entry as the pages show it.
type auditView struct {
	domain.AuditEntry
	Change string // what changed, in words
}

func auditViews(entries []domain.AuditEntry) []auditView {
	out := make([]auditView, len(entries))
	for i, e := range entries {
		out[i] = auditView{AuditEntry: e, Change: describeChange(e.Before, e.After)}
	}
	return out
}

// describeChange says in words what an entry changed, from the target's
// states before and after (never a secret: the states hold none).
func describeChange(before, after any) string {
	switch a := after.(type) {
	case *domain.APIKey:
		b, _ := before.(*domain.APIKey)
		if b == nil {
			return fmt.Sprintf("new key for user %s, team %s", a.Caller.User, a.Caller.Team)
		}
		var parts []string
		if b.RevokedAt == nil && a.RevokedAt != nil {
			parts = append(parts, "revoked")
		}
		if a.RotatedAt != nil && (b.RotatedAt == nil || !a.RotatedAt.Equal(*b.RotatedAt)) {
			p := "new secret"
			if a.PreviousValidUntil != nil {
				p += "; the old one works until " + a.PreviousValidUntil.UTC().Format("2006-01-02 15:04:05 UTC")
			}
			parts = append(parts, p)
		}
		if !a.Caller.KeyExpiresAt.Equal(b.Caller.KeyExpiresAt) {
			if a.Caller.KeyExpiresAt.IsZero() {
				parts = append(parts, "expiry removed")
			} else {
				parts = append(parts, "expires "+a.Caller.KeyExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC"))
			}
		}
		if len(parts) == 0 {
			return "changed"
		}
		return strings.Join(parts, "; ")
	case *domain.Principal:
		budgets := make([]string, len(a.Budgets))
		for i, b := range a.Budgets {
			budgets[i] = b.Limit.String() + " per " + string(b.Period)
			if b.Model != "" {
				budgets[i] += " on " + b.Model
			}
		}
		if len(budgets) == 0 {
			budgets = []string{"none"}
		}
		return "limits: " + describeLimits(a.Limits) + "; budgets: " + strings.Join(budgets, ", ")
	case *domain.LimitsOf:
		return "limits: " + describeLimits(a.Limits)
	case *domain.AdminKey:
		scopes := make([]string, len(a.Scopes))
		for i, sc := range a.Scopes {
			scopes[i] = string(sc)
		}
		return fmt.Sprintf("admin key %q, scopes %s", a.Name, strings.Join(scopes, ","))
	}
	return ""
}

// describeLimits says a user's or team's limits in words.
func describeLimits(l domain.Limits) string {
	var parts []string
	for _, f := range []struct {
		v    int
		unit string
	}{{l.RPM, "requests per minute"}, {l.TPM, "tokens per minute"}, {l.MaxConcurrent, "calls in flight"}} {
		if f.v > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", f.v, f.unit))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// auditData fills the audit page: the filter, a page of entries and the
// link to the next.
type auditData struct {
	Target, Action string
	Entries        []auditView
	Older          string // the next page's URL; empty on the last
}

// auditPage lists audit entries, newest first, filtered by target
// and action, a page older than the entry ID before.
func (h *handler) auditPage(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	d := auditData{Target: q.Get("target"), Action: q.Get("action")}
	var before int64
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			h.fail(w, r, s, domain.InvalidParam("before", "before must be an audit entry's number, not %q.", v))
			return
		}
		before = n
	}
	entries, err := h.svc.Audit(r.Context(), s.actor(), domain.AuditQuery{Target: d.Target, Action: d.Action, BeforeID: before, Limit: auditPageSize + 1})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	if len(entries) > auditPageSize {
		entries = entries[:auditPageSize]
		next := url.Values{"before": {strconv.FormatInt(entries[auditPageSize-1].ID, 10)}}
		if d.Target != "" {
			next.Set("target", d.Target)
		}
		if d.Action != "" {
			next.Set("action", d.Action)
		}
		d.Older = Prefix + "/audit?" + next.Encode()
	}
	d.Entries = auditViews(entries)
	h.render(w, r, s, http.StatusOK, "audit", "Audit log", d)
}
