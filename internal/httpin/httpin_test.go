package httpin_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/httpin"
)

// TestHeaderText: a header value that is not UTF-8 is read as ISO-8859-1, as fetch
// clients (Node's, so the OpenAI and Anthropic SDKs for JavaScript) send a
// string's characters U+0080 to U+00FF: one byte each.
func TestHeaderText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ticket 1234", "ticket 1234"},
		{"Prüfung für Ärzte", "Prüfung für Ärzte"},          // UTF-8 stays as it is
		{"Pr\xfcfung f\xfcr \xc4rzte", "Prüfung für Ärzte"}, // ISO-8859-1
		{"\xc4\xd6\xdc", "ÄÖÜ"},                             // three visible characters, not three invalid bytes
		{"caf\xe9 \xa0\xbfqu\xe9?", "café \u00a0¿qué?"},     // the whole upper half
		{"", ""},
	} {
		if got := httpin.HeaderText(tc.in); got != tc.want {
			t.Errorf("HeaderText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if err := domain.CheckAuditReason(httpin.HeaderText("\xc4\xd6\xdc"), 3, 1000); err != nil {
		t.Errorf("a reason of three Latin-1 letters: %v", err)
	}
}

// TestPathValue: a route's parameter, read through PathValue, is the
// name the client meant, however it escaped it: an escaped "/" keeps the
// name one segment, an escaped "@" or ":" is the character, and an escaped
// "%" stays a "%" (decoded once, never twice).
func TestPathValue(t *testing.T) {
	var got string
	r := chi.NewRouter()
	r.Get("/teams/{id}", func(_ http.ResponseWriter, r *http.Request) { got = httpin.PathValue(r, chi.URLParam(r, "id")) })
	for path, want := range map[string]string{
		"/teams/risk":                "risk",
		"/teams/risk%2Femea":         "risk/emea",
		"/teams/risk%2femea":         "risk/emea",
		"/teams/bob%40example.com":   "bob@example.com",
		"/teams/bob@example.com":     "bob@example.com",
		"/teams/llama3.1%3A8b":       "llama3.1:8b",
		"/teams/100%25":              "100%",
		"/teams/a%2541":              "a%41",
		"/teams/a%2F%2541":           "a/%41",
		"/teams/Pr%C3%BCfung%20Team": "Prüfung Team",
	} {
		got = "(not routed)"
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if got != want {
			t.Errorf("%s: parameter %q, want %q (status %d)", path, got, want, rec.Code)
		}
	}
}

// TestSingleHeaders: a header sent twice is a 400 duplicate_header naming
// it; once, or not at all, is no error.
func TestSingleHeaders(t *testing.T) {
	h := http.Header{}
	h.Add("Authorization", "Bearer a")
	h.Add("X-Audit-Reason", "one")
	h.Add("X-Audit-Reason", "two")
	err := httpin.SingleHeaders(h, "Authorization", "X-Api-Key", "X-Audit-Reason")
	if de, ok := errors.AsType[*domain.Error](err); !ok || de.Kind != domain.KindInvalid || de.Code != "duplicate_header" || !strings.Contains(de.Message, "X-Audit-Reason") {
		t.Errorf("a reason sent twice: %v", err)
	}
	if err := httpin.SingleHeaders(h, "Authorization", "X-Api-Key"); err != nil {
		t.Errorf("headers sent once or not at all: %v", err)
	}
}
