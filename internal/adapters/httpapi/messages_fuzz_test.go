package httpapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
)

// FuzzMessages sends arbitrary bodies to the Anthropic Messages endpoints
// over a gateway that always succeeds: no body may produce a 5xx, and every
// answer is a well-formed message, a complete event stream, a token count or
// an Anthropic error object.
func FuzzMessages(f *testing.F) {
	for _, seed := range []string{
		messagesBody,
		`{"model":"mock","max_tokens":50,"stream":true,"system":"s","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		`{"model":"mock","max_tokens":5000,"thinking":{"type":"enabled","budget_tokens":1024},"tools":[{"name":"f","input_schema":{"type":"object"}}],` +
			`"tool_choice":{"type":"tool","name":"f"},"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},` +
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]}]}]}`,
		`{"model":"mock","max_tokens":5,"output_format":{"type":"json_schema","schema":{"type":"object"}},"messages":[{"role":"user","content":"x"}]}`,
	} {
		f.Add(false, []byte(seed))
		f.Add(true, []byte(seed))
	}
	h := httpapi.NewHandler(&fakeGateway{}, httpapi.Options{MaxAgentBodyBytes: 8192, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, count bool, body []byte) {
		path := "/v1/messages"
		if count {
			path = "/v1/messages/count_tokens"
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
		req.Header.Set("X-Api-Key", goodKey)
		req.Header.Set("X-Audit-Reason", "fuzz")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: status %d: %s", body, rec.Code, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK && rec.Header().Get("Content-Type") == "text/event-stream":
			if !strings.HasSuffix(rec.Body.String(), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
				t.Fatalf("body %q: stream %q", body, rec.Body)
			}
		case rec.Code == http.StatusOK:
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("body %q: response %q", body, rec.Body)
			}
		default:
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Type != "error" || e.Error.Type == "" || e.Error.Message == "" {
				t.Fatalf("body %q: status %d with %q", body, rec.Code, rec.Body)
			}
		}
	})
}
