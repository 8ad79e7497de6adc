package adminapi_test

import (
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

// TestDuplicateCredentialAndReasonHeadersAreRefused checks that the admin
// API, like the model endpoints (docs/SECURITY.md, "Every request"),
// refuses two Authorization or two X-Audit-Reason headers with 400
// duplicate_header and changes nothing, rather than letting the first
// admin key act or the first reason be audited.
func TestDuplicateCredentialAndReasonHeadersAreRefused(t *testing.T) {
	var created int
	h, err := adminapi.NewHandler(admin.NewService(createStore{created: &created}, admin.Options{}),
		adminapi.Options{Throttle: auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 10, nil)})
	if err != nil {
		t.Fatal(err)
	}
	key := "Bearer " + domain.AdminKeyPrefix + "ops-secret"
	for name, headers := range map[string]map[string][]string{
		"two admin keys": {"Authorization": {key, "Bearer " + domain.AdminKeyPrefix + "other"}, "X-Audit-Reason": {"onboarding alice"}},
		"two reasons":    {"Authorization": {key}, "X-Audit-Reason": {"onboarding alice", "something else"}},
	} {
		req := httptest.NewRequest(http.MethodPost, adminapi.Prefix+"/keys", strings.NewReader(`{"user":"alice","team":"risk"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, vs := range headers {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var e struct{ Error struct{ Code string } }
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != http.StatusBadRequest || e.Error.Code != "duplicate_header" {
			t.Errorf("%s: %d %s, want 400 duplicate_header", name, w.Code, w.Body)
		}
	}
	if created != 0 {
		t.Errorf("%d keys were created", created)
	}
}
