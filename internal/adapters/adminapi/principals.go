package adminapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

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
	Version    string       `json:"version"`
}

func toPrincipalJSON(p domain.Principal) principalJSON {
	return principalJSON{Object: "admin." + string(p.Scope), ID: p.ID, Keys: p.Keys, ActiveKeys: p.ActiveKeys,
		Budgets: toBudgetsJSON(p.Budgets), Version: domain.PrincipalVersion(p)}
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
	x, err := p.h.svc.Principal(r.Context(), actorOf(r), p.scope, chi.URLParam(r, "id"))
	p.write(w, r, x, err)
}

// updatePrincipalRequest is the body of PATCH /users/{id} or /teams/{id}.
type updatePrincipalRequest struct {
	Budgets []budgetChangeJSON `json:"budgets"`
}

// update serves PATCH /users/{id} or /teams/{id}: budgets set or removed;
// with If-Match, only if they have not changed since (412 otherwise).
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
	x, err := p.h.svc.ChangeBudgets(r.Context(), actorOf(r), r.Header.Get(reasonHeader), p.scope, chi.URLParam(r, "id"), budgets, ifMatch(r))
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
