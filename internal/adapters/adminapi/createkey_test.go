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
	h, err := adminapi.NewHandler(admin.NewService(createStore{created: &created}, admin.Options{}),
		adminapi.Options{Throttle: auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 10, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+adminapi.Prefix+"/keys", strings.NewReader(body))
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
		var e struct{ Error struct{ Param *string } }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Error.Param == nil {
			return resp.StatusCode, ""
		}
		return resp.StatusCode, *e.Error.Param
	}
	for _, field := range []string{"daily_budget_usd", "monthly_budget_usd", "team_daily_budget_usd", "team_monthly_budget_usd"} {
		for _, zero := range []string{"0", "0.000000", "$0"} {
			status, param := post(`{"user":"alice","team":"risk","` + field + `":"` + zero + `"}`)
			if status != http.StatusBadRequest || param != field {
				t.Errorf("%s %q: %d with param %q, want 400 naming %s", field, zero, status, param, field)
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
