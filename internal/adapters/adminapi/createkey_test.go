package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/adminapi"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
)

// createStore is a key store that knows one admin key with both scopes and
// counts the keys it is asked to create.
type createStore struct {
	admin.KeyAdmin
	created *int
	have    map[string][]domain.Budget // the budgets of each "scope:id"
}

func (s createStore) Principal(_ context.Context, scope domain.ScopeKind, id string) (domain.Principal, error) {
	return domain.Principal{Scope: scope, ID: id, Budgets: s.have[string(scope)+":"+id]}, nil
}

func (s createStore) AdminKeyByHash(context.Context, string) (domain.AdminKey, error) {
	return domain.AdminKey{ID: "adm_ops", Name: "ops", Scopes: []domain.AdminScope{domain.AdminRead, domain.AdminWrite}}, nil
}

func (s createStore) CreateKey(_ context.Context, nk domain.NewKey, _ domain.AuditEntry) (domain.APIKey, string, error) {
	*s.created++
	return domain.APIKey{ID: "key_new", Caller: domain.Caller{User: nk.User, Team: nk.Team}}, "tg-secret", nil
}

// TestCreateKeyRefusesABudgetOfZero checks that POST /keys refuses a
// budget of "0" with a 400 naming the field, and creates nothing: a
// domain.NewKey reads 0 as no budget, so the key would otherwise be made
// without the budget the request asked for (the command line and PATCH
// refuse 0 too).
func TestCreateKeyRefusesABudgetOfZero(t *testing.T) {
	var created int
	post := createServer(t, createStore{created: &created})
	for _, field := range []string{"daily_budget_usd", "monthly_budget_usd", "team_daily_budget_usd", "team_monthly_budget_usd"} {
		for _, zero := range []string{"0", "0.000000", "$0"} {
			status, e := post(`{"user":"alice","team":"risk","` + field + `":"` + zero + `"}`)
			if status != http.StatusBadRequest || e.Param != field {
				t.Errorf("%s %q: %d with param %q, want 400 naming %s", field, zero, status, e.Param, field)
			}
		}
	}
	if created != 0 {
		t.Errorf("%d keys were created for budgets of 0", created)
	}
	if status, _ := post(`{"user":"alice","team":"risk","daily_budget_usd":"5"}`); status != http.StatusCreated || created != 1 {
		t.Errorf("a budget of 5: %d, %d keys created; want 201 and one key", status, created)
	}
}

// TestCreateKeyRefusesToReplaceABudgetUnasked checks that POST /keys for a
// user whose daily budget is $5 with daily_budget_usd "10" is refused with
// a 400 budget_exists naming the field and the $5, and creates nothing, as
// tidygate keys create without --replace-budget is; with replace_budget it
// is created, and the same budget again needs no replace_budget.
func TestCreateKeyRefusesToReplaceABudgetUnasked(t *testing.T) {
	var created int
	post := createServer(t, createStore{created: &created, have: map[string][]domain.Budget{
		"user:alice": {{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 5_000_000}}}})
	status, e := post(`{"user":"alice","team":"risk","daily_budget_usd":"10"}`)
	if status != http.StatusBadRequest || e.Param != "daily_budget_usd" || e.Code != domain.CodeBudgetExists ||
		!strings.Contains(e.Message, "$5.000000") || !strings.Contains(e.Message, "replace_budget") || created != 0 {
		t.Errorf("replacing alice's $5 unasked: %d %+v, %d keys created; want 400 budget_exists naming daily_budget_usd and $5, none created", status, e, created)
	}
	if status, e := post(`{"user":"alice","team":"risk","daily_budget_usd":"5"}`); status != http.StatusCreated {
		t.Errorf("the budget alice has: %d %+v, want 201", status, e)
	}
	if status, e := post(`{"user":"alice","team":"risk","daily_budget_usd":"10","replace_budget":true}`); status != http.StatusCreated || created != 2 {
		t.Errorf("replace_budget: %d %+v, %d keys created; want 201", status, e, created)
	}
}

// createError is the error object of an answer.
type createError struct {
	Message, Param, Code string
}

// createServer serves the admin API on store and returns a function that
// posts a body to /keys with an admin key and a reason, and returns the
// status and the error object, if any.
func createServer(t *testing.T, store createStore) func(body string) (int, createError) {
	call := adminServer(t, store)
	return func(body string) (int, createError) { return call(http.MethodPost, "/keys", body) }
}

// adminServer serves the admin API on store and returns a function that
// sends a request with a JSON body, an admin key and a reason, and returns
// the status and the error object, if any.
func adminServer(t *testing.T, store createStore) func(method, path, body string) (int, createError) {
	srv := serveAdmin(t, store)
	return func(method, path, body string) (int, createError) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+adminapi.Prefix+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+domain.AdminKeyPrefix+"ops-secret")
		req.Header.Set("X-Audit-Reason", "onboarding alice")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error struct {
				Message     string
				Param, Code *string
			}
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		out := createError{Message: e.Error.Message}
		if e.Error.Param != nil {
			out.Param = *e.Error.Param
		}
		if e.Error.Code != nil {
			out.Code = *e.Error.Code
		}
		return resp.StatusCode, out
	}
}

// serveAdmin serves the admin API, with the administration service on
// store, until the test ends.
func serveAdmin(t *testing.T, store admin.KeyAdmin) *httptest.Server {
	t.Helper()
	h, err := adminapi.NewHandler(admin.NewService(store, admin.Options{}),
		adminapi.Options{Throttle: auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 10, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
