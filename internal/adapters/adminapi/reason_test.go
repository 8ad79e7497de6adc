package adminapi

import (
	"net/http/httptest"
	"testing"
)

// TestReasonIsTheTextWritten: a change's reason is read as the API's
// callers' reasons are (httpin.HeaderText): UTF-8, or ISO-8859-1 as a fetch
// client (a script in Node or a browser) sends it.
func TestReasonIsTheTextWritten(t *testing.T) {
	for header, want := range map[string]string{
		"":                           "",
		"onboarding alice":           "onboarding alice",
		"Prüfung (UTF-8)":            "Prüfung (UTF-8)",
		"Pr\xfcfung f\xfcr \xc4rzte": "Prüfung für Ärzte",
	} {
		r := httptest.NewRequest("POST", "/admin/v1/keys", nil)
		if header != "" {
			r.Header.Set("X-Audit-Reason", header)
		}
		if got := reasonOf(r); got != want {
			t.Errorf("X-Audit-Reason %q: got %q, want %q", header, got, want)
		}
	}
}
