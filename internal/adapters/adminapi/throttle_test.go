package adminapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/adminapi"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestFailedAuthenticationsAreThrottled checks the admin API's answers to
// an address that fails too often: limit failures answered 401, the one
// past it 429 with Retry-After and the throttle's code in an error object,
// and then the right key 429 too, until the window ends; another address
// is answered.
func TestFailedAuthenticationsAreThrottled(t *testing.T) {
	now := time.Date(2026, 12, 6, 14, 0, 15, 0, time.UTC)
	h, err := adminapi.NewHandler(admin.NewService(auditStore{}, admin.Options{}),
		adminapi.Options{Throttle: auththrottle.New(ratelimit.New(), domain.LimitAdminAddress, 3, func() time.Time { return now })})
	if err != nil {
		t.Fatal(err)
	}
	call := func(from, secret string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, adminapi.Prefix+"/audit", nil)
		req.RemoteAddr = from + ":40000"
		req.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	good := domain.AdminKeyPrefix + "auditor-secret"
	for i := range 3 {
		if w := call("192.0.2.66", "not-an-admin-key"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s, want 401", i+1, w.Code, w.Body)
		}
	}
	for _, secret := range []string{"not-an-admin-key", good} {
		w := call("192.0.2.66", secret)
		var body struct{ Error struct{ Code, Type string } }
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "45" ||
			json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != auththrottle.CodeTooManyFailures {
			t.Fatalf("%q after 3 failures: %d, Retry-After %q, %s; want 429 %s, Retry-After 45",
				secret, w.Code, w.Header().Get("Retry-After"), w.Body, auththrottle.CodeTooManyFailures)
		}
	}
	if w := call("192.0.2.67", good); w.Code != http.StatusOK {
		t.Fatalf("another address: %d %s", w.Code, w.Body)
	}
	now = now.Add(45 * time.Second)
	if w := call("192.0.2.66", good); w.Code != http.StatusOK {
		t.Fatalf("the next window: %d %s", w.Code, w.Body)
	}
}
