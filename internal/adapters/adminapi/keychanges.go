package adminapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/domain"
)

// budgetChangeJSON sets or removes one budget. limit_usd is required: a
// positive decimal string sets the budget, null removes it.
type budgetChangeJSON struct {
	Scope    string          `json:"scope"` // key, user or team; on /teams and /users, absent or that scope
	Period   string          `json:"period"`
	Model    string          `json:"model"`
	LimitUSD json.RawMessage `json:"limit_usd"`
}

// budget converts one change, whose scope must be one of scopes, into a
// budget whose zero limit means removal.
func (c budgetChangeJSON) budget(scopes ...domain.ScopeKind) (domain.Budget, error) {
	b := domain.Budget{Scope: domain.ScopeKind(c.Scope), Model: c.Model}
	if c.Scope == "" && len(scopes) == 1 {
		b.Scope = scopes[0]
	}
	known := false
	for _, s := range scopes {
		known = known || b.Scope == s
	}
	if !known {
		return domain.Budget{}, domain.InvalidParam("budgets", "a budget's scope here must be one of %v, not %q", scopes, c.Scope)
	}
	p, err := domain.ParsePeriod(c.Period)
	if err != nil {
		return domain.Budget{}, domain.InvalidParam("budgets", "period: %v", err)
	}
	b.Period = p
	if len(c.LimitUSD) == 0 {
		return domain.Budget{}, domain.InvalidParam("budgets", "limit_usd is required: a decimal string such as \"5\" sets the budget, null removes it")
	}
	var limit *string
	if err := json.Unmarshal(c.LimitUSD, &limit); err != nil {
		return domain.Budget{}, domain.InvalidParam("budgets", "limit_usd must be a decimal string or null")
	}
	if limit != nil {
		m, err := domain.ParseBudgetUSD(*limit)
		if err != nil {
			return domain.Budget{}, domain.InvalidParam("budgets", "limit_usd: %v (null removes it)", err)
		}
		b.Limit = m
	}
	return b, nil
}

// budgetChanges converts a request's budget changes.
func budgetChanges(changes []budgetChangeJSON, scopes ...domain.ScopeKind) ([]domain.Budget, error) {
	out := make([]domain.Budget, 0, len(changes))
	for _, c := range changes {
		b, err := c.budget(scopes...)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// updateKeyRequest is the body of PATCH /keys/{id}: each field present
// replaces the key's value.
type updateKeyRequest struct {
	AllowedModels *[]string          `json:"allowed_models"`
	RPM           *int               `json:"rpm"`
	TPM           *int               `json:"tpm"`
	MaxConcurrent *int               `json:"max_concurrent"`
	Budgets       []budgetChangeJSON `json:"budgets"`
}

// updateKey serves PATCH /keys/{id}; with If-Match, only if the key has
// not changed since (412 otherwise).
func (h *handler) updateKey(w http.ResponseWriter, r *http.Request) {
	var req updateKeyRequest
	if err := decodeBody(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	budgets, err := budgetChanges(req.Budgets, domain.ScopeKey, domain.ScopeUser, domain.ScopeTeam)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	u := domain.KeyUpdate{AllowedModels: req.AllowedModels, RPM: req.RPM, TPM: req.TPM, MaxConcurrent: req.MaxConcurrent, Budgets: budgets}
	key, err := h.svc.UpdateKey(r.Context(), actorOf(r), reasonOf(r), pathID(r), u, ifMatch(r))
	h.writeKey(w, r, key, err)
}

// writeKey answers with the changed key and its ETag, or the error.
func (h *handler) writeKey(w http.ResponseWriter, r *http.Request, key domain.APIKey, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(key))
	h.writeJSON(w, http.StatusOK, toKeyJSON(key))
}

// rotateKeyRequest is the optional body of POST /keys/{id}/rotate.
type rotateKeyRequest struct {
	GraceSeconds int64 `json:"grace_seconds"` // how long the replaced secret keeps working; 0: it stops at once
}

// rotateKey serves POST /keys/{id}/rotate: a new secret, shown once in the
// answer, and the old one working for the grace period.
func (h *handler) rotateKey(w http.ResponseWriter, r *http.Request) {
	var req rotateKeyRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	if req.GraceSeconds < 0 || req.GraceSeconds > int64(admin.MaxRotationGrace/time.Second) {
		h.writeError(w, r, domain.InvalidParam("grace_seconds", "grace_seconds must be between 0 and %d", int64(admin.MaxRotationGrace/time.Second)))
		return
	}
	key, secret, err := h.svc.RotateKey(r.Context(), actorOf(r), reasonOf(r), pathID(r),
		time.Duration(req.GraceSeconds)*time.Second, ifMatch(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(key))
	h.writeJSON(w, http.StatusOK, createdKeyJSON{Key: toKeyJSON(key), Secret: secret})
}

// expiryRequest is the body of POST /keys/{id}/expiry.
type expiryRequest struct {
	ExpiresAt json.RawMessage `json:"expires_at"` // an RFC 3339 time, or null: never
}

// setExpiry serves POST /keys/{id}/expiry.
func (h *handler) setExpiry(w http.ResponseWriter, r *http.Request) {
	var req expiryRequest
	if err := decodeBody(w, r, &req); err != nil {
		h.writeError(w, r, err)
		return
	}
	var at *time.Time
	var text string
	switch {
	case len(req.ExpiresAt) == 0:
		h.writeError(w, r, domain.InvalidParam("expires_at", "expires_at is required: an RFC 3339 time such as 2027-01-31T00:00:00Z, or null for never"))
		return
	case json.Unmarshal(req.ExpiresAt, &at) == nil:
	case json.Unmarshal(req.ExpiresAt, &text) == nil:
		h.writeError(w, r, domain.InvalidParam("expires_at", "expires_at %q is not a valid RFC 3339 time: write one such as 2027-01-31T00:00:00Z, or null for never", text))
		return
	default:
		h.writeError(w, r, domain.InvalidParam("expires_at", "expires_at must be an RFC 3339 time as a string, such as \"2027-01-31T00:00:00Z\", or null for never"))
		return
	}
	var expires time.Time
	if at != nil {
		expires = at.UTC()
	}
	key, err := h.svc.SetKeyExpiry(r.Context(), actorOf(r), reasonOf(r), pathID(r), expires, ifMatch(r))
	h.writeKey(w, r, key, err)
}

// toAdminKeyJSON is an admin key on the wire, without its secret.
func toAdminKeyJSON(k domain.AdminKey) adminKeyJSON {
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	return adminKeyJSON{Object: "admin.admin_key", ID: k.ID, Name: k.Name, Scopes: scopes,
		CreatedAt: timeString(k.CreatedAt), RevokedAt: timePtr(k.RevokedAt)}
}

// listAdminKeys serves GET /admin-keys.
func (h *handler) listAdminKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := h.svc.AdminKeys(r.Context(), actorOf(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page := listJSON[adminKeyJSON]{Object: "list", Data: []adminKeyJSON{}}
	for _, k := range keys {
		page.Data = append(page.Data, toAdminKeyJSON(k))
	}
	h.writeJSON(w, http.StatusOK, page)
}

// revokeAdminKey serves POST /admin-keys/{id}/revoke.
func (h *handler) revokeAdminKey(w http.ResponseWriter, r *http.Request) {
	key, err := h.svc.RevokeAdminKey(r.Context(), actorOf(r), reasonOf(r), pathID(r))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, toAdminKeyJSON(key))
}
