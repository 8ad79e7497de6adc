package adminapi

import (
	"net/http/httptest"
	"testing"
)

func TestIfMatchNamesOneVersionOrNone(t *testing.T) {
	for header, want := range map[string]string{
		"":                         "",
		"*":                        "", // any current version: the change is unconditional
		` * `:                      "", // spaces around it
		`"0123456789abcdef0123"`:   "0123456789abcdef0123",
		`W/"0123456789abcdef0123"`: "0123456789abcdef0123",
		`0123456789abcdef0123`:     "0123456789abcdef0123", // unquoted, as curl users type it
		`"*"`:                      "*",                    // an entity tag that reads *, not the wildcard: it matches no version
		`"stale"`:                  "stale",
	} {
		r := httptest.NewRequest("PATCH", "/admin/v1/keys/k", nil)
		if header != "" {
			r.Header.Set("If-Match", header)
		}
		if got := ifMatch(r); got != want {
			t.Errorf("If-Match %q: got %q, want %q", header, got, want)
		}
	}
}
