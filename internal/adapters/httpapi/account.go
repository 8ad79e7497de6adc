package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/httpin"
)

// The caller's view of their account: the models they may use and what they
// have spent.

// modelListJSON is the OpenAI models list.
type modelListJSON struct {
	Object string      `json:"object"`
	Data   []modelJSON `json:"data"`
}

// modelJSON is the OpenAI model object. tidygate does not know when a model
// was created, so created is 0.
type modelJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models serves GET /v1/models: every name the caller may call, a model's
// aliases as entries of their own owned by "tidygate"; in the Anthropic
// dialect, anthModels.
func (h *handler) models(w http.ResponseWriter, r *http.Request) {
	if exchangeOf(r).dialect == dialectAnthropic {
		h.anthModels(w, r)
		return
	}
	h.writeJSON(w, http.StatusOK, modelListJSON{Object: "list", Data: h.visibleModels(exchangeOf(r).caller)})
}

// model serves GET /v1/models/{model}: the entry of the list above with that
// id, in the request's dialect. A model the caller may not use is not found,
// as it is not listed. The SDKs escape an id's slash ("org/model" is %2F):
// httpin.PathValue reads it as the client meant it.
func (h *handler) model(w http.ResponseWriter, r *http.Request) {
	id := httpin.PathValue(r, chi.URLParam(r, "*"))
	for _, m := range h.visibleModels(exchangeOf(r).caller) {
		if m.ID != id {
			continue
		}
		if exchangeOf(r).dialect == dialectAnthropic {
			h.writeJSON(w, http.StatusOK, toAnthModel(m))
		} else {
			h.writeJSON(w, http.StatusOK, m)
		}
		return
	}
	h.writeError(w, r, domain.ModelNotFound(id))
}

// visibleModels is every name the caller may call: each model, and each of
// its aliases as an entry of its own owned by "tidygate".
func (h *handler) visibleModels(caller domain.Caller) []modelJSON {
	list := []modelJSON{}
	for _, m := range h.gw.Models(caller) {
		if caller.MayUse(m, m.Name) {
			list = append(list, modelJSON{ID: m.Name, Object: "model", OwnedBy: m.Provider})
		}
		for _, a := range m.Aliases {
			if caller.MayUse(m, a) {
				list = append(list, modelJSON{ID: a, Object: "model", OwnedBy: "tidygate"})
			}
		}
	}
	return list
}

// usageReportJSON is the body of GET /v1/usage, a tidygate extension.
// Amounts are given twice: as exact decimal dollar strings and as integer
// micro-dollars.
type usageReportJSON struct {
	Object  string         `json:"object"`
	User    string         `json:"user"`
	Team    string         `json:"team"`
	Rows    []usageRowJSON `json:"rows"`
	Budgets []budgetJSON   `json:"budgets"`
}

type usageRowJSON struct {
	Date             string `json:"date"` // YYYY-MM-DD, UTC
	Model            string `json:"model"`
	Requests         int64  `json:"requests"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	TotalTokens      int64  `json:"total_tokens"`
	CostUSD          string `json:"cost_usd"`
	CostMicros       int64  `json:"cost_micros"`
}

type budgetJSON struct {
	Scope           string `json:"scope"`
	ScopeID         string `json:"scope_id"`
	Period          string `json:"period"`
	PeriodStart     string `json:"period_start"` // RFC 3339, UTC
	ResetsAt        string `json:"resets_at"`
	LimitUSD        string `json:"limit_usd"`
	SpentUSD        string `json:"spent_usd"`
	ReservedUSD     string `json:"reserved_usd"`
	RemainingUSD    string `json:"remaining_usd"`
	LimitMicros     int64  `json:"limit_micros"`
	SpentMicros     int64  `json:"spent_micros"`
	ReservedMicros  int64  `json:"reserved_micros"`
	RemainingMicros int64  `json:"remaining_micros"`
}

// usage serves GET /v1/usage: the caller's own usage by day and model this
// month, and how much of each of their budgets is spent, held and left.
func (h *handler) usage(w http.ResponseWriter, r *http.Request) {
	caller := exchangeOf(r).caller
	rep, err := h.gw.Usage(r.Context(), caller)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	now := h.now()
	out := usageReportJSON{Object: "usage_report", User: rep.User, Team: rep.Team,
		Rows: make([]usageRowJSON, len(rep.Rows)), Budgets: make([]budgetJSON, len(rep.Budgets))}
	for i, row := range rep.Rows {
		out.Rows[i] = usageRowJSON{
			Date: row.Day.UTC().Format(time.DateOnly), Model: row.Model, Requests: row.Requests,
			PromptTokens: row.PromptTokens, CompletionTokens: row.CompletionTokens,
			TotalTokens: row.PromptTokens + row.CompletionTokens,
			CostUSD:     usd(row.Cost), CostMicros: int64(row.Cost),
		}
	}
	for i, b := range rep.Budgets {
		out.Budgets[i] = budgetStatusJSON(b, now)
	}
	h.writeJSON(w, http.StatusOK, out)
}

func budgetStatusJSON(s domain.BudgetStatus, now time.Time) budgetJSON {
	left := s.Remaining()
	start, end := s.Start, s.End // the ledger's, in the budget time zone
	if start.IsZero() {
		start, end = s.Budget.Period.Start(now), s.Budget.Period.End(now)
	}
	return budgetJSON{
		Scope: string(s.Budget.Scope), ScopeID: s.Budget.ScopeID, Period: string(s.Budget.Period),
		PeriodStart: start.Format(time.RFC3339), ResetsAt: end.Format(time.RFC3339),
		LimitUSD: usd(s.Budget.Limit), SpentUSD: usd(s.Spent), ReservedUSD: usd(s.Reserved), RemainingUSD: usd(left),
		LimitMicros: int64(s.Budget.Limit), SpentMicros: int64(s.Spent), ReservedMicros: int64(s.Reserved), RemainingMicros: int64(left),
	}
}
