// Package httpin reads a request's fields as every inbound HTTP adapter
// must read them alike (the model endpoints, the admin API), one rule each,
// since those adapters may not import each other: a header's text, a
// header that may be sent once only, and a value taken from the path.
package httpin

import (
	"fmt"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/tidygate/tidygate/internal/domain"
)

// HeaderText is the text of header value v: v itself when it is valid
// UTF-8, else its bytes read as ISO-8859-1, the charset HTTP fields
// historically carried (RFC 9110, section 5.5) and the one fetch clients
// (Node's, and so the OpenAI and Anthropic SDKs for JavaScript; browsers)
// send a string's characters U+0080 to U+00FF in, one byte each. An audit
// reason written "Prüfung" in JavaScript so reaches the audit trail as
// "Prüfung", rather than as invalid UTF-8 that the trail would keep as
// "Pr\uFFFDfung" and that would count fewer visible characters than the
// caller typed.
func HeaderText(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	b := make([]rune, len(v))
	for i := range len(v) {
		b[i] = rune(v[i])
	}
	return string(b)
}

// SingleHeaders refuses a request that sends any of the named headers more
// than once (400 duplicate_header): which of two keys or two audit reasons
// counts would otherwise be a rule of this server's choosing that the
// client cannot see.
func SingleHeaders(h http.Header, names ...string) error {
	for _, name := range names {
		if n := len(h.Values(name)); n > 1 {
			return &domain.Error{Kind: domain.KindInvalid, Code: "duplicate_header",
				Message: fmt.Sprintf("the %s header appears %d times; send it once", name, n)}
		}
	}
	return nil
}

// PathValue is v, a value the router took from r's path (a route
// parameter), as the client meant it. chi routes by the path as the client
// escaped it whenever that differs from Go's own escaping (r.URL.RawPath),
// so that a name holding a "/" sent as %2F (as the SDKs send "org/model",
// and encodeURIComponent a team "risk/emea") stays one segment, and then
// hands the parameter over still escaped: it is unescaped here. When the
// router took it from the decoded path (no RawPath), v is the name
// already, and unescaping it again would turn a literal "%41" into "A".
func PathValue(r *http.Request, v string) string {
	if r.URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
