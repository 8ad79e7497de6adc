package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
)

// anthropicModels sends GET path as an Anthropic SDK does: the key in
// x-api-key and the anthropic-version header.
func anthropicModels(r *rig, path string) (status int, page struct {
	Data    []json.RawMessage
	HasMore bool    `json:"has_more"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
}, body string, requestID string) {
	rec := r.do("GET", path, "", "Authorization", "", "X-Api-Key", goodKey, "Anthropic-Version", "2023-06-01")
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	return rec.Code, page, rec.Body.String(), rec.Header().Get("request-id")
}

func TestModelsInAnthropicsDialect(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	ids := func(path string) string {
		t.Helper()
		status, page, body, requestID := anthropicModels(r, path)
		if status != 200 || requestID == "" {
			t.Fatalf("GET %s: %d (request-id %q) %s", path, status, requestID, body)
		}
		var s []string
		for _, m := range page.Data {
			var id struct{ ID string }
			_ = json.Unmarshal(m, &id)
			if want := `{"type":"model","id":"` + id.ID + `","display_name":"` + id.ID + `","created_at":"1970-01-01T00:00:00Z"}`; string(m) != want {
				t.Errorf("GET %s: model %s, want %s", path, m, want)
			}
			s = append(s, id.ID)
		}
		if len(s) > 0 && (str(page.FirstID) != s[0] || str(page.LastID) != s[len(s)-1]) {
			t.Errorf("GET %s: first_id %s, last_id %s for %v", path, str(page.FirstID), str(page.LastID), s)
		}
		if len(s) == 0 && (page.FirstID != nil || page.LastID != nil) {
			t.Errorf("GET %s: an empty page names ids: %s", path, body)
		}
		more := map[bool]string{true: " +more"}[page.HasMore]
		return strings.Join(s, ",") + more
	}
	for path, want := range map[string]string{
		"/v1/models":                              "mock-chat,mock,mock-embed",
		"/v1/models?limit=1":                      "mock-chat +more",
		"/v1/models?limit=2&after_id=mock-chat":   "mock,mock-embed",
		"/v1/models?limit=1&after_id=mock-chat":   "mock +more",
		"/v1/models?after_id=mock-embed":          "",
		"/v1/models?limit=1&before_id=mock":       "mock-chat",
		"/v1/models?limit=1&before_id=mock-embed": "mock +more",
	} {
		if got := ids(path); got != want {
			t.Errorf("GET %s = %q, want %q", path, got, want)
		}
	}

	rec := r.do("GET", "/v1/models/mock", "", "Authorization", "", "X-Api-Key", goodKey, "Anthropic-Version", "2023-06-01")
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 ||
		got != `{"type":"model","id":"mock","display_name":"mock","created_at":"1970-01-01T00:00:00Z"}` {
		t.Errorf("GET /v1/models/mock = %d %s", rec.Code, got)
	}
	rec = r.do("GET", "/v1/models/gpt-nope", "", "Authorization", "", "X-Api-Key", goodKey, "Anthropic-Version", "2023-06-01")
	if msg := anthropicErrorOf(t, rec, 404, "not_found_error"); !strings.Contains(msg, "gpt-nope") {
		t.Errorf("unknown model: %s", msg)
	}
	for _, path := range []string{"/v1/models?limit=0", "/v1/models?limit=1001", "/v1/models?limit=x",
		"/v1/models?after_id=gpt-nope", "/v1/models?before_id=gpt-nope", "/v1/models?after_id=mock&before_id=mock"} {
		rec := r.do("GET", path, "", "Authorization", "", "X-Api-Key", goodKey, "Anthropic-Version", "2023-06-01")
		anthropicErrorOf(t, rec, 400, "invalid_request_error")
	}
	rec = r.do("GET", "/v1/models", "", "Authorization", "", "X-Api-Key", "tg-wrong", "Anthropic-Version", "2023-06-01")
	anthropicErrorOf(t, rec, 401, "authentication_error")

	// Without anthropic-version the list is OpenAI's, with OpenAI's key header.
	rec = r.do("GET", "/v1/models", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"object":"list"`) {
		t.Errorf("the OpenAI list: %d %s", rec.Code, rec.Body)
	}
}
