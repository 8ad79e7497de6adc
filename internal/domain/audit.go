package domain

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// VisibleLength counts the characters of s that a reader sees: every rune
// except spaces, control and format characters (zero-width spaces, joiners,
// the byte-order mark, soft hyphens), combining marks and variation
// selectors (which change the character before them rather than add one),
// and the fillers that render as blanks. "e" plus a combining accent counts
// once, as "é" does; three zero-width spaces count zero.
func VisibleLength(s string) int {
	n := 0
	for _, r := range s {
		if visible(r) {
			n++
		}
	}
	return n
}

// visible reports whether r shows as a character of its own.
func visible(r rune) bool {
	switch r {
	case '\u115F', '\u1160', '\u3164', '\uFFA0', '\u2800': // Hangul fillers, Braille blank
		return false
	}
	return !unicode.IsSpace(r) && !unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zs, unicode.M) &&
		r != utf8.RuneError
}

// CheckAuditReason checks a call's audit reason: at least minLen visible
// characters (VisibleLength) and at most maxLen characters in all, so that
// the audit trail keeps it whole. A failure is a KindInvalid error with
// param audit_reason and the code audit_reason_required or
// audit_reason_too_long.
func CheckAuditReason(reason string, minLen, maxLen int) *Error {
	if n := utf8.RuneCountInString(reason); n > maxLen {
		return &Error{Kind: KindInvalid, Code: "audit_reason_too_long", Param: "audit_reason",
			Message: fmt.Sprintf("the audit reason has %d characters; at most %d are allowed", n, maxLen)}
	}
	if VisibleLength(reason) < minLen {
		return &Error{Kind: KindInvalid, Code: "audit_reason_required", Param: "audit_reason",
			Message: fmt.Sprintf("an audit reason of at least %d visible characters is required", minLen)}
	}
	return nil
}
