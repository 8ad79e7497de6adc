package httpapi

import (
	"net/http"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

// TestEveryKindHasItsOwnStatus fails when a domain error kind is added
// without a row in the kind → status table: every kind but internal must be
// answered with a 4xx or a non-500 5xx, in the OpenAI error shape.
func TestEveryKindHasItsOwnStatus(t *testing.T) {
	for _, k := range domain.Kinds() {
		p := problemOf(&domain.Error{Kind: k, Message: "m"}, "req-1")
		if k == domain.KindInternal {
			if p.status != http.StatusInternalServerError {
				t.Errorf("internal → %d, want 500", p.status)
			}
			continue
		}
		if p.status == http.StatusInternalServerError || p.status < 400 || p.status > 599 {
			t.Errorf("kind %v → status %d: add a case for it to problemOf's table (a 4xx, or 502/503 for failures that are not the client's)", k, p.status)
		}
		if p.kind != k || p.typ == "" {
			t.Errorf("kind %v → %+v: the table must keep the kind and give an error type", k, p)
		}
	}
}
