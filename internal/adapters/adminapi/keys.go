package adminapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
)

// keyJSON is an API key on the wire; the secret is never part of it.
type keyJSON struct {
	Object        string       `json:"object"`
	ID            string       `json:"id"`
	User          string       `json:"user"`
	Team          string       `json:"team"`
	AllowedModels []string     `json:"allowed_models"`
	RPM           int          `json:"rpm"`
	TPM           int          `json:"tpm"`
	MaxConcurrent int          `json:"max_concurrent"`
	Budgets       []budgetJSON `json:"budgets"`
	CreatedAt     string       `json:"created_at"`
	RevokedAt     *string      `json:"revoked_at"`
	ExpiresAt     *string      `json:"expires_at"`
	RotatedAt     *string      `json:"rotated_at"`
	GraceUntil    *string      `json:"previous_valid_until"` // the end of the last rotation's grace period
	LastUsedAt    *string      `json:"last_used_at"`
	Version       string       `json:"version"`
}

type budgetJSON struct {
	Scope    string `json:"scope"`
	ScopeID  string `json:"scope_id"`
	Period   string `json:"period"`
	LimitUSD string `json:"limit_usd"`
	Model    string `json:"model,omitempty"` // a model's name or group:NAME; absent: every model
}

// adminKeyJSON is an admin key on the wire, as the audit log shows it.
type adminKeyJSON struct {
	Object    string   `json:"object"`
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	CreatedAt string   `json:"created_at"`
	RevokedAt *string  `json:"revoked_at"`
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func timePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timeString(*t)
	return &s
}

// usd renders an amount as a plain decimal string such as "5.000000".
func usd(m domain.Micros) string { return strings.TrimPrefix(m.String(), "$") }

func toKeyJSON(k domain.APIKey) keyJSON {
	j := keyJSON{Object: "admin.key", ID: k.ID, User: k.Caller.User, Team: k.Caller.Team,
		AllowedModels: k.Caller.AllowedModels, RPM: k.Caller.RPM, TPM: k.Caller.TPM, MaxConcurrent: k.Caller.MaxConcurrent,
		Budgets: toBudgetsJSON(k.Caller.Budgets), CreatedAt: timeString(k.CreatedAt), RevokedAt: timePtr(k.RevokedAt),
		RotatedAt: timePtr(k.RotatedAt), GraceUntil: timePtr(k.PreviousValidUntil), LastUsedAt: timePtr(k.LastUsedAt), Version: domain.KeyVersion(k)}
	if !k.Caller.KeyExpiresAt.IsZero() {
		j.ExpiresAt = timePtr(&k.Caller.KeyExpiresAt)
	}
	if j.AllowedModels == nil {
		j.AllowedModels = []string{}
	}
	return j
}

func toBudgetsJSON(budgets []domain.Budget) []budgetJSON {
	out := []budgetJSON{}
	for _, b := range budgets {
		out = append(out, budgetJSON{Scope: string(b.Scope), ScopeID: b.ScopeID, Period: string(b.Period), LimitUSD: usd(b.Limit), Model: b.Model})
	}
	return out
}

// etag is the key's version as an HTTP entity tag.
func etag(k domain.APIKey) string { return quoted(domain.KeyVersion(k)) }

// quoted makes a version an HTTP entity tag.
func quoted(version string) string { return `"` + version + `"` }

// ifMatch returns the version the request's If-Match names, or "" when it
// names none. "*" names none too: it asks only that the target exist
// (RFC 9110, section 13.1.1), which every change checks anyway.
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "*" {
		return ""
	}
	return strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
}

// listJSON is a page of a list.
type listJSON[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
	LastID  any    `json:"last_id"` // the cursor of the next page, null on the last one
}

// listKeys serves GET /keys: keys oldest first, filtered by user, team and
// state (active or revoked), a page of limit after the key named by after,
// read and filtered in SQL.
func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryInt(r, "limit", 100, admin.MaxPage)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	keys, more, err := h.svc.KeyPage(r.Context(), actorOf(r), domain.KeyQuery{
		User: q.Get("user"), Team: q.Get("team"), State: q.Get("state"), After: q.Get("after"), Limit: int(limit)})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page := listJSON[keyJSON]{Object: "list", Data: []keyJSON{}, HasMore: more}
	for _, k := range keys {
		page.Data = append(page.Data, toKeyJSON(k))
	}
	if more {
		page.LastID = page.Data[len(page.Data)-1].ID
	}
	h.writeJSON(w, http.StatusOK, page)
}

// createKeyRequest is the body of POST /keys. Budgets are decimal dollar
// strings; an absent budget is left as it is.
type createKeyRequest struct {
	User                 string   `json:"user"`
	Team                 string   `json:"team"`
	AllowedModels        []string `json:"allowed_models"`
	RPM                  int      `json:"rpm"`
	TPM                  int      `json:"tpm"`
	MaxConcurrent        int      `json:"max_concurrent"`
	DailyBudgetUSD       string   `json:"daily_budget_usd"`
	MonthlyBudgetUSD     string   `json:"monthly_budget_usd"`
	TeamDailyBudgetUSD   string   `json:"team_daily_budget_usd"`
	TeamMonthlyBudgetUSD string   `json:"team_monthly_budget_usd"`
	// ReplaceBudget lets a budget of the user or team that differs from
	// the one they have replace it (tidygate keys create
	// --replace-budget); without it such a key is refused.
	ReplaceBudget bool `json:"replace_budget"`
}

// createdKeyJSON answers POST /keys: the key, and its secret, shown once.
type createdKeyJSON struct {
	Key    keyJSON `json:"key"`
	Secret string  `json:"secret"`
}

func (h *handler) createKey(w http.ResponseWriter, r *http.Request) {
	var req createKeyRequest
	if err := decodeBody(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	nk := domain.NewKey{User: req.User, Team: req.Team, AllowedModels: req.AllowedModels, RPM: req.RPM, TPM: req.TPM, MaxConcurrent: req.MaxConcurrent,
		ReplaceBudgets: req.ReplaceBudget}
	for _, b := range []struct {
		param, value string
		into         *domain.Micros
	}{
		{"daily_budget_usd", req.DailyBudgetUSD, &nk.DailyBudget},
		{"monthly_budget_usd", req.MonthlyBudgetUSD, &nk.MonthlyBudget},
		{"team_daily_budget_usd", req.TeamDailyBudgetUSD, &nk.TeamDailyBudget},
		{"team_monthly_budget_usd", req.TeamMonthlyBudgetUSD, &nk.TeamMonthlyBudget},
	} {
		if b.value == "" {
			continue
		}
		m, err := domain.ParseBudgetUSD(b.value)
		if err != nil {
			h.writeError(w, r, domain.InvalidParam(b.param, "%s: %v", b.param, err))
			return
		}
		*b.into = m
	}
	key, secret, err := h.svc.CreateKey(r.Context(), actorOf(r), reasonOf(r), nk)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(key))
	w.Header().Set("Location", Prefix+"/keys/"+key.ID)
	h.writeJSON(w, http.StatusCreated, createdKeyJSON{Key: toKeyJSON(key), Secret: secret})
}

func (h *handler) getKey(w http.ResponseWriter, r *http.Request) {
	key, err := h.svc.Key(r.Context(), actorOf(r), pathID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(key))
	h.writeJSON(w, http.StatusOK, toKeyJSON(key))
}

// revokeKey serves POST /keys/{id}/revoke. With If-Match, the key must still
// be at that version (412 otherwise).
func (h *handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	key, err := h.svc.RevokeKey(r.Context(), actorOf(r), reasonOf(r), pathID(r), ifMatch(r))
	h.writeKey(w, r, key, err)
}

// auditJSON is one audit entry on the wire.
type auditJSON struct {
	Object string    `json:"object"`
	ID     int64     `json:"id"`
	At     string    `json:"at"`
	Actor  actorJSON `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Reason string    `json:"reason"`
	Before any       `json:"before"`
	After  any       `json:"after"`
	// TraceID is the entry's MLflow trace in the admin experiment, null
	// until the entry has been exported.
	TraceID *string `json:"trace_id"`
	// ExportRefused is why MLflow's database refused the entry's trace,
	// null unless it did.
	ExportRefused *string `json:"export_refused"`
}

type actorJSON struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// limitsStateJSON is a user's or team's rate and concurrency limits as the audit
// log shows them; 0 is no limit.
type limitsStateJSON struct {
	Object        string `json:"object"`
	Scope         string `json:"scope"`
	ID            string `json:"id"`
	RPM           int    `json:"rpm"`
	TPM           int    `json:"tpm"`
	MaxConcurrent int    `json:"max_concurrent"`
}

func stateJSON(v any) any {
	switch t := v.(type) {
	case *domain.LimitsOf:
		return limitsStateJSON{Object: "admin.limits", Scope: string(t.Scope), ID: t.ID,
			RPM: t.Limits.RPM, TPM: t.Limits.TPM, MaxConcurrent: t.Limits.MaxConcurrent}
	case *domain.APIKey:
		return toKeyJSON(*t)
	case *domain.AdminKey:
		return toAdminKeyJSON(*t)
	case *domain.Principal:
		return toPrincipalJSON(*t)
	}
	return nil
}

// listAudit serves GET /audit: entries newest first, filtered by target and
// action, a page of limit older than the entry ID before.
func (h *handler) listAudit(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 100, admin.MaxAuditPage-1)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	before, err := queryInt(r, "before", 0, 1<<62)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	entries, err := h.svc.Audit(r.Context(), actorOf(r), domain.AuditQuery{
		Target: q.Get("target"), Action: q.Get("action"), BeforeID: before, Limit: int(limit) + 1})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page := listJSON[auditJSON]{Object: "list", Data: []auditJSON{}}
	for i, e := range entries {
		if i == int(limit) {
			page.HasMore = true
			page.LastID = strconv.FormatInt(page.Data[i-1].ID, 10)
			break
		}
		page.Data = append(page.Data, auditJSON{Object: "admin.audit_entry", ID: e.ID, At: timeString(e.At),
			Actor: actorJSON{Kind: string(e.Actor.Kind), ID: e.Actor.ID}, Action: e.Action, Target: e.Target,
			Reason: e.Reason, Before: stateJSON(e.Before), After: stateJSON(e.After)})
		if e.TraceID != "" {
			page.Data[i].TraceID = &e.TraceID
		}
		if e.ExportRefused != "" {
			page.Data[i].ExportRefused = &e.ExportRefused
		}
	}
	h.writeJSON(w, http.StatusOK, page)
}
