package adminapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestExpiryNamesWhatIsWrongWithTheTime checks that POST /keys/{id}/expiry
// with a value that is not an RFC 3339 time says so, naming expires_at and
// the value, where it said that expires_at is required; and that a body
// without it still says it is required.
func TestExpiryNamesWhatIsWrongWithTheTime(t *testing.T) {
	var created int
	call := adminServer(t, createStore{created: &created})
	for body, want := range map[string]string{
		`{"expires_at":"garbage"}`:    `expires_at "garbage" is not a valid RFC 3339 time`,
		`{"expires_at":"2027-01-31"}`: `expires_at "2027-01-31" is not a valid RFC 3339 time`,
		`{"expires_at":5}`:            "expires_at must be an RFC 3339 time as a string",
		`{}`:                          "expires_at is required",
	} {
		status, e := call(http.MethodPost, "/keys/key_1/expiry", body)
		if status != http.StatusBadRequest || e.Param != "expires_at" || !strings.Contains(e.Message, want) {
			t.Errorf("%s: %d %+v; want 400 naming expires_at saying %q", body, status, e, want)
		}
	}
}
