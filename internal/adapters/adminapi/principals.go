package adminapi

import (
	"encoding/json"
	"net/http"

	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
)

// principalJSON is a user or a team on the wire.
type principalJSON struct {
	Object     string       `json:"object"` // admin.user or admin.team
	ID         string       `json:"id"`
	Keys       int          `json:"keys"`
	ActiveKeys int          `json:"active_keys"`
	Budgets    []budgetJSON `json:"budgets"`
	Limits     limitsJSON   `json:"limits"`
	Version    string       `json:"version"`
}

// limitsJSON is a user's or team's rate and concurrency limits on the
// wire: null is no limit.
type limitsJSON struct {
	RPM            *int `json:"rpm"`
	TPM            *int `json:"tpm"`
	MaxConcurrency *int `json:"max_concurrency"`
}

// toLimitsJSON shows each limit of l, null for none.
func toLimitsJSON(l domain.Limits) limitsJSON {
	set := func(v int) *int {
		if v == 0 {
			return nil
		}
		return &v
	}
	return limitsJSON{RPM: set(l.RPM), TPM: set(l.TPM), MaxConcurrency: set(l.MaxConcurrent)}
}

func toPrincipalJSON(p domain.Principal) principalJSON {
	return principalJSON{Object: "admin." + string(p.Scope), ID: p.ID, Keys: p.Keys, ActiveKeys: p.ActiveKeys,
		Budgets: toBudgetsJSON(p.Budgets), Limits: toLimitsJSON(p.Limits), Version: domain.PrincipalVersion(p)}
}

// principals serves the /users or /teams endpoints of one scope.
type principals struct {
	h     *handler
	scope domain.ScopeKind
}

// list serves GET /users or /teams: a page of limit by ID, after the ID
// after.
func (p principals) list(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 100, admin.MaxPage)
	if err != nil {
		p.h.writeError(w, r, err)
		return
	}
	list, more, err := p.h.svc.Principals(r.Context(), actorOf(r), domain.PrincipalQuery{Scope: p.scope, After: r.URL.Query().Get("after"), Limit: int(limit)})
	if err != nil {
		p.h.writeError(w, r, err)
		return
	}
	page := listJSON[principalJSON]{Object: "list", Data: []principalJSON{}, HasMore: more}
	for _, x := range list {
		page.Data = append(page.Data, toPrincipalJSON(x))
	}
	if more {
		page.LastID = page.Data[len(page.Data)-1].ID
	}
	p.h.writeJSON(w, http.StatusOK, page)
}

// get serves GET /users/{id} or /teams/{id}, with its ETag.
func (p principals) get(w http.ResponseWriter, r *http.Request) {
	x, err := p.h.svc.Principal(r.Context(), actorOf(r), p.scope, pathID(r))
	p.write(w, r, x, err)
}

// updatePrincipalRequest is the body of PATCH /users/{id} or /teams/{id}.
type updatePrincipalRequest struct {
	Budgets []budgetChangeJSON `json:"budgets"`
	Limits  *limitsChangeJSON  `json:"limits"`
}

// limitsChangeJSON sets or removes limits: a field left out leaves that
// limit as it is, a positive whole number sets it, null removes it.
type limitsChangeJSON struct {
	RPM            json.RawMessage `json:"rpm"`
	TPM            json.RawMessage `json:"tpm"`
	MaxConcurrency json.RawMessage `json:"max_concurrency"`
}

// change converts the request's limits into a domain.LimitsChange, whose
// zero means removal; 0 itself is refused, so that removing a limit is
// always said with null.
func (c *limitsChangeJSON) change() (domain.LimitsChange, error) {
	var out domain.LimitsChange
	if c == nil {
		return out, nil
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		to   **int
	}{{"rpm", c.RPM, &out.RPM}, {"tpm", c.TPM, &out.TPM}, {"max_concurrency", c.MaxConcurrency, &out.MaxConcurrent}} {
		if len(f.raw) == 0 {
			continue
		}
		var v *int
		if err := json.Unmarshal(f.raw, &v); err != nil || v != nil && (*v < 1 || *v > domain.MaxLimit) {
			return out, domain.InvalidParam("limits."+f.name,
				"limits.%s must be a whole number from 1 to %d, or null to remove the limit", f.name, domain.MaxLimit)
		}
		if v == nil {
			v = new(int)
		}
		*f.to = v
	}
	if out.IsZero() {
		return out, domain.InvalidParam("limits", "limits names no limit: give rpm, tpm or max_concurrency (null removes one)")
	}
	return out, nil
}

// update serves PATCH /users/{id} or /teams/{id}: budgets and limits set
// or removed, in one change with one audit entry; with If-Match, only if
// they have not changed since (412 otherwise).
func (p principals) update(w http.ResponseWriter, r *http.Request) {
	var req updatePrincipalRequest
	if err := decodeBody(w, r, &req); err != nil {
		p.h.writeError(w, r, err)
		return
	}
	budgets, err := budgetChanges(req.Budgets, p.scope)
	if err != nil {
		p.h.writeError(w, r, err)
		return
	}
	limits, err := req.Limits.change()
	if err != nil {
		p.h.writeError(w, r, err)
		return
	}
	x, err := p.h.svc.ChangePrincipal(r.Context(), actorOf(r), reasonOf(r), p.scope, pathID(r),
		domain.PrincipalChange{Budgets: budgets, Limits: limits}, ifMatch(r))
	p.write(w, r, x, err)
}

func (p principals) write(w http.ResponseWriter, r *http.Request, x domain.Principal, err error) {
	if err != nil {
		p.h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", quoted(domain.PrincipalVersion(x)))
	p.h.writeJSON(w, http.StatusOK, toPrincipalJSON(x))
}

// modelJSON is a catalogue model's limits on the wire, read only: they are
// changed in the catalogue file.
type modelJSON struct {
	Object string     `json:"object"` // admin.model
	ID     string     `json:"id"`
	Group  *string    `json:"group"`
	Limits limitsJSON `json:"limits"`
}

// listModels serves GET /models: every model of the catalogue in use, with
// its limits.
func (h *handler) listModels(w http.ResponseWriter, r *http.Request) {
	models, err := h.svc.Models(r.Context(), actorOf(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page := listJSON[modelJSON]{Object: "list", Data: []modelJSON{}}
	for _, m := range models {
		page.Data = append(page.Data, modelJSON{Object: "admin.model", ID: m.Name, Group: nullable(m.Group), Limits: toLimitsJSON(m.Limits)})
	}
	h.writeJSON(w, http.StatusOK, page)
}
