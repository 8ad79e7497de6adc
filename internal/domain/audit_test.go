package domain_test

import (
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestVisibleLength(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"abc", 3},
		{"  review  ", 6},
		{"éé", 2},             // precomposed
		{"e\u0301e\u0301", 2}, // e + combining acute: two visible characters
		{"👍", 1},
		{"👍\uFE0F", 1},                  // with a variation selector
		{"\u200B\u200B\u200B", 0},       // zero-width spaces
		{"\u200D\u2060\uFEFF\u00AD", 0}, // joiner, word joiner, BOM, soft hyphen
		{"\u3164\u2800\u115F", 0},       // Hangul filler, Braille blank, Hangul choseong filler
		{"\t\n\u00A0\u3000", 0},         // spaces of every kind
		{"a\u200Bb", 2},
	} {
		if got := domain.VisibleLength(tc.in); got != tc.want {
			t.Errorf("VisibleLength(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCheckAuditReason(t *testing.T) {
	for _, tc := range []struct {
		reason string
		code   string // "" means accepted
	}{
		{"quarterly review", ""},
		{"ééé", ""},
		{"👍", "audit_reason_required"},
		{"éé", "audit_reason_required"},
		{"\u200B\u200B\u200B", "audit_reason_required"},
		{strings.Repeat("a", 20), ""},
		{strings.Repeat("a", 21), "audit_reason_too_long"},
		{strings.Repeat("é", 21), "audit_reason_too_long"},
	} {
		err := domain.CheckAuditReason(tc.reason, 3, 20)
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%q: %v, want accepted", tc.reason, err)
		case tc.code != "" && (err == nil || err.Code != tc.code || err.Kind != domain.KindInvalid || err.Param != "audit_reason"):
			t.Errorf("%q: %+v, want %s", tc.reason, err, tc.code)
		}
	}
}

// TestHeaderText: a header value that is not UTF-8 is read as ISO-8859-1,
// as fetch clients (Node's, so the OpenAI and Anthropic SDKs for
// JavaScript) send a string's characters U+0080 to U+00FF: one byte each.
func TestHeaderText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ticket 1234", "ticket 1234"},
		{"Prüfung für Ärzte", "Prüfung für Ärzte"},          // UTF-8 stays as it is
		{"Pr\xfcfung f\xfcr \xc4rzte", "Prüfung für Ärzte"}, // ISO-8859-1
		{"\xc4\xd6\xdc", "ÄÖÜ"},                             // three visible characters, not three invalid bytes
		{"caf\xe9 \xa0\xbfqu\xe9?", "café \u00a0¿qué?"},     // the whole upper half
		{"", ""},
	} {
		got := domain.HeaderText(tc.in)
		if got != tc.want {
			t.Errorf("HeaderText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if err := domain.CheckAuditReason(domain.HeaderText("\xc4\xd6\xdc"), 3, 1000); err != nil {
		t.Errorf("a reason of three Latin-1 letters: %v", err)
	}
}
