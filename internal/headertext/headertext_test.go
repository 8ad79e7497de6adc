package headertext_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/headertext"
)

// TestOf: a header value that is not UTF-8 is read as ISO-8859-1, as fetch
// clients (Node's, so the OpenAI and Anthropic SDKs for JavaScript) send a
// string's characters U+0080 to U+00FF: one byte each.
func TestOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ticket 1234", "ticket 1234"},
		{"Prüfung für Ärzte", "Prüfung für Ärzte"},          // UTF-8 stays as it is
		{"Pr\xfcfung f\xfcr \xc4rzte", "Prüfung für Ärzte"}, // ISO-8859-1
		{"\xc4\xd6\xdc", "ÄÖÜ"},                             // three visible characters, not three invalid bytes
		{"caf\xe9 \xa0\xbfqu\xe9?", "café \u00a0¿qué?"},     // the whole upper half
		{"", ""},
	} {
		if got := headertext.Of(tc.in); got != tc.want {
			t.Errorf("Of(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if err := domain.CheckAuditReason(headertext.Of("\xc4\xd6\xdc"), 3, 1000); err != nil {
		t.Errorf("a reason of three Latin-1 letters: %v", err)
	}
}
