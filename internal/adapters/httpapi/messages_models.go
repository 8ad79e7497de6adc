package httpapi

import (
	"net/http"
	"slices"

	"github.com/tidygate/tidygate/internal/domain"
)

// GET /v1/models is both APIs' path. A request that carries
// anthropic-version, as every Anthropic SDK's does, speaks the Anthropic
// dialect (dialectOf): its key may come in x-api-key, its errors have
// Anthropic's shape, and the list below answers it.

// anthModelJSON is the Anthropic dialect's model object (ModelInfo).
// tidygate does not know when a model was released, so created_at is the
// epoch, which Anthropic's API gives for an unknown date too.
type anthModelJSON struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// anthModelListJSON is a page of the Anthropic dialect's models list.
type anthModelListJSON struct {
	Data    []anthModelJSON `json:"data"`
	HasMore bool            `json:"has_more"`
	FirstID *string         `json:"first_id"`
	LastID  *string         `json:"last_id"`
}

// anthModelsPages is how the Anthropic dialect's models list is paged, as
// Anthropic's is.
var anthModelsPages = pager{defaultLimit: 20, maxLimit: 1000, after: "after_id", before: "before_id"}

func toAnthModel(m modelJSON) anthModelJSON {
	return anthModelJSON{Type: "model", ID: m.ID, DisplayName: m.ID, CreatedAt: "1970-01-01T00:00:00Z"}
}

// anthModels serves the Anthropic dialect's GET /v1/models: the caller's
// models in the order of the OpenAI list, a page of limit (default 20) at
// a time, the page after after_id or before before_id, as Anthropic pages.
func (h *handler) anthModels(w http.ResponseWriter, r *http.Request) {
	all := h.visibleModels(exchangeOf(r).caller)
	from, to, more, err := anthModelsPages.page(r.URL.Query(), len(all), func(param, id string) (int, error) {
		return listed(all, param, id)
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	page := anthModelListJSON{Data: make([]anthModelJSON, 0, to-from), HasMore: more}
	for _, m := range all[from:to] {
		page.Data = append(page.Data, toAnthModel(m))
	}
	if len(page.Data) > 0 {
		page.FirstID, page.LastID = &page.Data[0].ID, &page.Data[len(page.Data)-1].ID
	}
	h.writeJSON(w, http.StatusOK, page)
}

// listed returns the position of the model id in list, or an error naming
// param when the list has no such model.
func listed(list []modelJSON, param, id string) (int, error) {
	i := slices.IndexFunc(list, func(m modelJSON) bool { return m.ID == id })
	if i < 0 {
		return 0, domain.InvalidParam(param, "%s: this key's models list has no model %q", param, id)
	}
	return i, nil
}
