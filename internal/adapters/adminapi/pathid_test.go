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

// idStore is a key store that knows one admin key with both scopes and
// records the IDs it is asked about.
type idStore struct {
	admin.KeyAdmin
	asked *[]string
}

func (s idStore) AdminKeyByHash(context.Context, string) (domain.AdminKey, error) {
	return domain.AdminKey{ID: "adm_ops", Name: "ops", Scopes: []domain.AdminScope{domain.AdminRead, domain.AdminWrite}}, nil
}

func (s idStore) Principal(_ context.Context, scope domain.ScopeKind, id string) (domain.Principal, error) {
	*s.asked = append(*s.asked, id)
	return domain.Principal{Scope: scope, ID: id}, nil
}

func (s idStore) ChangePrincipal(_ context.Context, scope domain.ScopeKind, id string, _ domain.PrincipalChange, _ string, _ domain.AuditEntry) (domain.Principal, error) {
	*s.asked = append(*s.asked, id)
	return domain.Principal{Scope: scope, ID: id}, nil
}

func (s idStore) Key(_ context.Context, id string) (domain.APIKey, error) {
	*s.asked = append(*s.asked, id)
	return domain.APIKey{ID: id}, nil
}

// TestPathIDsArePercentDecoded checks that a user, team or key named in
// the path reaches the service as its name, whatever the client escaped:
// bob%40example.com is the user bob@example.com (as JavaScript's
// encodeURIComponent and Python's quote escape it), and risk%2Femea is the
// one team risk/emea, not a phantom principal named by the escapes.
func TestPathIDsArePercentDecoded(t *testing.T) {
	var asked []string
	h, err := adminapi.NewHandler(admin.NewService(idStore{asked: &asked}, admin.Options{}),
		adminapi.Options{Throttle: auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 10, nil)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, c := range []struct{ method, path, body, want string }{
		{http.MethodGet, "/users/bob%40example.com", "", "bob@example.com"},
		{http.MethodGet, "/users/bob@example.com", "", "bob@example.com"},
		{http.MethodGet, "/users/bob%2Btest%40example.com", "", "bob+test@example.com"},
		{http.MethodGet, "/teams/risk%2Femea", "", "risk/emea"},
		{http.MethodGet, "/teams/%C3%A9quipe", "", "équipe"},
		{http.MethodPatch, "/teams/risk%2Femea", `{"limits":{"rpm":5}}`, "risk/emea"},
		{http.MethodGet, "/keys/key%5Fabc", "", "key_abc"},
	} {
		asked = nil
		req, err := http.NewRequest(c.method, srv.URL+adminapi.Prefix+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+domain.AdminKeyPrefix+"ops-secret")
		req.Header.Set("X-Audit-Reason", "path decoding")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ ID string }
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %v", c.method, c.path, resp.StatusCode, err)
		}
		if len(asked) != 1 || asked[0] != c.want || got.ID != c.want {
			t.Errorf("%s %s: the store was asked about %q and the answer names %q, want %q", c.method, c.path, asked, got.ID, c.want)
		}
	}
}
