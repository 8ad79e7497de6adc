// Package headertext reads a header's value as the text its sender wrote,
// one rule for every inbound adapter, which may not import each other.
package headertext

import "unicode/utf8"

// Of is the text of header value v: v itself when it is valid UTF-8, else
// its bytes read as ISO-8859-1, the charset HTTP fields historically
// carried (RFC 9110, section 5.5) and the one fetch clients (Node's, and so
// the OpenAI and Anthropic SDKs for JavaScript; browsers) send a string's
// characters U+0080 to U+00FF in, one byte each. An audit reason written
// "Prüfung" in JavaScript so reaches the audit trail as "Prüfung", rather
// than as invalid UTF-8 that the trail would keep as "Pr\uFFFDfung" and
// that would count fewer visible characters than the caller typed.
func Of(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	b := make([]rune, len(v))
	for i := range len(v) {
		b[i] = rune(v[i])
	}
	return string(b)
}
