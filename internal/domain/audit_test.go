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
